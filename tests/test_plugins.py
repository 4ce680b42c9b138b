"""Discovery, selection and fault isolation, through real entry points and the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from qa_core.plugins import load_plugins
from qa_core.testing import train_run

def _bow_args(data: Path, runs: Path, *extra: str) -> list[str]:
    return ["run", "--plugin", "bow", "--data", str(data), "--runs-dir", str(runs), "--epochs", "2", "--no-progress", *extra]


def test_plugins_lists_installed_plugins_with_versions_and_hooks(qa):
    result = qa("plugins", "--json")
    assert result.code == 0, result.err
    records = {r["name"]: r for r in json.loads(result.out)}
    bow = records["bow"]
    assert bow["kind"] == "model" and bow["distribution"] == "qa-bow-numpy" and bow["version"] == "0.1.0"
    assert {"qa_build", "qa_train_step", "qa_evaluate", "qa_save_checkpoint", "qa_load_checkpoint"} <= set(bow["hooks"])
    assert [p["name"] for p in bow["params"]] == ["lr", "l2", "binary"]
    assert records["local"]["kind"] == "tracker" and records["local"]["builtin"]
    text = qa("plugins")
    assert "bow  [model]  qa-bow-numpy 0.1.0" in text.out


def test_broken_plugin_gives_one_line_and_everything_else_works(qa, plugin_site, tiny_data, tmp_path):
    plugin_site.add("qa-broken", "9.9.1", "broken", module="qa_broken")
    result = qa(*_bow_args(tiny_data, tmp_path / "runs"), env=plugin_site.env)
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if "qa_broken" in line]
    assert lines == ["qa: plugin 'qa_broken' (qa-broken 9.9.1) not loaded: ImportError: needs a library that is not installed"]
    listing = json.loads(qa("plugins", "--json", env=plugin_site.env).out)
    broken = next(r for r in listing if r["name"] == "qa_broken")
    assert broken["error"].startswith("ImportError") and broken["version"] == "9.9.1"
    assert any(r["name"] == "bow" and r["error"] is None for r in listing)


def test_strict_plugins_turns_a_broken_plugin_into_a_failure(qa, plugin_site, tiny_data, tmp_path):
    plugin_site.add("qa-broken", "1.0", "broken", module="qa_broken")
    result = qa(*_bow_args(tiny_data, tmp_path / "runs"), env={**plugin_site.env, "QA_STRICT_PLUGINS": "1"})
    assert result.code == 2
    assert "QA_STRICT_PLUGINS" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "runs").exists()


def test_misspelt_hook_fails_loudly(qa, plugin_site):
    plugin_site.add("qa-typo", "0.2", "typo", module="qa_typo")
    result = qa("plugins", env=plugin_site.env)
    assert "unknown hook qa_biuld (did you mean qa_build?)" in result.out
    run = qa("run", "--plugin", "qa_typo", env=plugin_site.env)
    assert run.code == 2
    assert "qa_typo" in run.err and "unknown hook qa_biuld" in run.err


def test_hook_with_arguments_the_spec_lacks_is_refused(qa, plugin_site):
    plugin_site.add("qa-badargs", "0.1", "badargs", module="qa_badargs")
    listing = json.loads(qa("plugins", "--json", env=plugin_site.env).out)
    bad = next(r for r in listing if r["name"] == "qa_badargs")
    assert "temperature" in bad["error"]


def test_exception_in_a_hook_names_the_plugin_and_the_hook(qa, plugin_site, tiny_data, tmp_path):
    plugin_site.add("qa-raiser", "0.1", "raiser", module="qa_raiser")
    result = qa(
        "run", "--plugin", "qa_raiser", "--data", str(tiny_data), "--runs-dir", str(tmp_path / "runs"), "--no-progress",
        env=plugin_site.env,
    )
    assert result.code == 1
    assert "error: plugin 'qa_raiser' failed in qa_build: RuntimeError: out of memory while building" in result.err
    assert "Traceback" not in result.err
    with_traceback = qa(
        "run", "--plugin", "qa_raiser", "--data", str(tiny_data), "--runs-dir", str(tmp_path / "runs"), "--no-progress", "--traceback",
        env=plugin_site.env,
    )
    assert "Traceback" in with_traceback.err


def test_selecting_a_model_plugin_never_calls_another(fake_plugins, tiny_data, tmp_path, monkeypatch):
    marks = tmp_path / "marks"
    monkeypatch.setenv("SPY_MARKS", str(marks))
    manager = load_plugins()
    assert manager.register(fake_plugins("spy_model"), "qa_spy").error is None
    train_run(manager, "bow", tiny_data, tmp_path / "runs", epochs=2).record.assert_complete(2)
    assert not marks.exists(), "the spy plugin's hooks ran although --plugin bow was selected"
    train_run(manager, "qa_spy", tiny_data, tmp_path / "runs", epochs=1).record.assert_complete(1)
    seen = set(marks.read_text().split())
    assert {"qa_build", "qa_train_step", "qa_evaluate", "qa_save_checkpoint", "qa_load_checkpoint"} == seen


def test_load_and_disable_plugins_by_name(qa, plugin_site):
    plugin_site.add("qa-spy", "0.1", "spy_model", module="qa_spy")
    names = lambda env: {r["name"] for r in json.loads(qa("plugins", "--json", env={**plugin_site.env, **env}).out)}  # noqa: E731
    assert {"bow", "qa_spy"} <= names({})
    assert names({"QA_LOAD_PLUGINS": "qa_spy"}) == {"local", "qa_spy"}
    assert names({"QA_LOAD_PLUGINS": ""}) == {"local"}
    assert "qa_spy" not in names({"QA_DISABLE_PLUGINS": "qa_spy"})


def test_unknown_plugin_lists_the_installed_ones(qa):
    result = qa("run", "--plugin", "nosuch")
    assert result.code == 2
    assert result.err.startswith("error: --plugin nosuch: no such model plugin; installed: ")
    assert "bow" in result.err and "Traceback" not in result.err


def test_unknown_param_lists_the_plugins_parameters(qa, tmp_path):
    result = qa("run", "--plugin", "bow", "--param", "depth=3", "--runs-dir", str(tmp_path))
    assert result.code == 2
    assert "--param depth: unknown parameter for plugin 'bow'; its parameters: lr, l2, binary" in result.err
    bad_value = qa("run", "--plugin", "bow", "--param", "lr=-1", "--runs-dir", str(tmp_path))
    assert bad_value.code == 2 and "--param lr: must be >= 1e-06" in bad_value.err
    assert not any(tmp_path.iterdir()), "nothing may be written before the parameters are valid"


def test_trackers_receive_every_call_and_a_failing_one_is_switched_off(fake_plugins, tiny_data, tmp_path, monkeypatch, capsys):
    log = tmp_path / "tracker.log"
    monkeypatch.setenv("SPY_TRACKER_LOG", str(log))
    manager = load_plugins()
    assert manager.register(fake_plugins("spy_tracker"), "spytracker", "qa-spytracker", "0.1").error is None
    assert manager.register(fake_plugins("flaky_tracker"), "flaky", "qa-flaky", "0.1").error is None
    run = train_run(manager, "bow", tiny_data, tmp_path / "runs", loggers=["spytracker", "flaky"], epochs=2)
    warnings = run.lines_about("flaky")
    assert len(warnings) == 1 and "failed in qa_log_metrics (ConnectionError: tracker server went away); switched off" in warnings[0]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c[0] for c in calls] == ["start", "metrics", "metrics", "end"]
    assert calls[-1] == ["end", "finished"]
    lines = (run.run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and sorted(json.loads(lines[0])) == sorted(["epoch", *calls[1][2]])
    assert "plugins: model bow 0.1.0; trackers local 0.1.0, spytracker 0.1, flaky 0.1" in capsys.readouterr().out


def test_unknown_logger_is_refused_before_any_work(qa, tmp_path):
    result = qa("run", "--plugin", "bow", "--logger", "wandb", "--runs-dir", str(tmp_path))
    assert result.code == 2 and "--logger wandb: no such tracker plugin" in result.err
    assert not any(tmp_path.iterdir())


def test_a_session_tracker_gets_every_call_through_session_hooks(fake_plugins, tiny_data, tmp_path, monkeypatch):
    log = tmp_path / "session.log"
    monkeypatch.setenv("SESSION_LOG", str(log))
    manager = load_plugins()
    assert manager.register(fake_plugins("session_tracker"), "sessiontracker").error is None
    run = train_run(
        manager, "bow", tiny_data, tmp_path / "runs", loggers=["sessiontracker"], logger_params={"sessiontracker": {"loud": "yes"}}, epochs=2
    )
    assert run.failures_of("sessiontracker") == [], run.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    # its own entry-point name, and its options typed with the defaults filled in
    assert calls[0] == ["start", run.run_dir.name, "sessiontracker", {"every": 1, "loud": True}]
    assert calls[-1] == ["end", "finished"]
    kinds = [c[0] for c in calls]
    assert kinds.count("metrics") == 2 and "params" in kinds and "summary" in kinds and "artifact" in kinds
    assert [c[1] for c in calls if c[0] == "metrics"] == [1, 2]
    # a summary belongs to the latest epoch logged: best/top-k after epoch n, the test results after the last
    steps = [c[1] for c in calls if c[0] == "summary"]
    assert steps[0] == 1 and steps[-1] == 2 and steps == sorted(steps)
