"""When Neptune fails, training goes on: one warning, a complete local run directory, no token leak.

Real failures only: a token neptune rejects, a server on a closed loopback port, a run stopped
under the plugin's feet, options that cannot work. Nothing here reaches another host.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from qa_core import PluginInfo, RunContext, hookimpl
from qa_core.plugins import load_plugins


def plugin_lines(err: str) -> list[str]:
    """stderr lines about the neptune tracker, from the plugin itself or from the core."""
    return [line for line in err.splitlines() if line.startswith("qa: neptune:") or "tracker 'neptune'" in line]


def assert_secret_absent(secret: str, texts: list[str], files: list[Path]) -> None:
    for text in texts:
        assert secret not in text
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


def test_a_rejected_token_switches_neptune_off_with_one_warning(run_qa, helpers, tmp_path: Path, monkeypatch, capsys) -> None:
    token = "qa-test-token-not-valid-4d2b"
    monkeypatch.setenv("NEPTUNE_API_TOKEN", token)
    monkeypatch.chdir(tmp_path)
    run = run_qa("bow", tmp_path / "runs", {"mode": "async", "project": "ws/proj"})
    helpers.assert_run_dir_complete(run)
    session = run.session
    assert session.run is None

    out, err = capsys.readouterr()
    lines = plugin_lines(err)
    assert len(lines) == 1, lines
    assert lines[0].startswith("qa: tracker 'neptune' failed in qa_log_run_start (could not start a Neptune run in async mode (")
    assert "InvalidApiToken" in lines[0] and "switched off for the rest of this run" in lines[0]
    assert_secret_absent(token, [out, err, repr(session.settings)], helpers.files_under(tmp_path))


def test_a_misspelt_option_is_refused_before_training(run_qa, tmp_path: Path) -> None:
    from qa_core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--logger-param neptune.projet: unknown parameter for plugin .neptune.; its parameters: project"):
        run_qa("bow", tmp_path / "runs", {"projet": "ws/proj"})
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    ("options", "expected"),
    [({"mode": "async", "project": "ws/proj"}, "mode async needs a Neptune server token")],
)
def test_unusable_options_switch_neptune_off_with_one_warning(run_qa, helpers, tmp_path: Path, monkeypatch, capsys, options, expected) -> None:
    monkeypatch.delenv("NEPTUNE_API_TOKEN", raising=False)
    run = run_qa("bow", tmp_path / "runs", options)
    helpers.assert_run_dir_complete(run)
    lines = plugin_lines(capsys.readouterr().err)
    assert len(lines) == 1 and f"failed in qa_log_run_start ({expected}" in lines[0]
    assert run.session.run is None


class RunStopper:
    """A tracker that stops the neptune tracker's Neptune run once epoch 1 is fully logged, the
    way a dropped connection or a user's own ``run.stop()`` would: the next append, epoch 2's
    first metric, raises inside the client."""

    @hookimpl
    def qa_describe(self) -> PluginInfo:
        return PluginInfo(kind="tracker", description="test: stops the Neptune run", threaded=False)

    @hookimpl
    def qa_log_summary(self, run: RunContext, values: Any) -> None:
        # Epoch 1 ends with the top-k summary; wait (the neptune tracker works on its own thread)
        # until the Neptune run holds it, then stop that run.
        if "top_epochs/1/epoch" not in values or values["top_epochs/1/epoch"] != 1:
            return
        deadline = time.monotonic() + 60
        while True:
            neptune_run = getattr(run.stash.get("neptune"), "run", None)
            if neptune_run is not None and neptune_run.exists("top_epochs/1/epoch"):
                break
            assert time.monotonic() < deadline, "the neptune tracker never logged epoch 1"
            time.sleep(0.01)
        neptune_run.stop()


def test_a_failing_append_mid_run_switches_neptune_off_and_training_goes_on(run_qa, helpers, tmp_path: Path, capsys) -> None:
    pm = load_plugins()
    assert pm.register(RunStopper(), "stopper").error is None
    run = run_qa("bow", tmp_path / "runs", {"mode": "debug"}, pm=pm, loggers=["neptune", "stopper"], epochs=3)
    helpers.assert_run_dir_complete(run, epochs=3)
    lines = plugin_lines(capsys.readouterr().err)
    # One line, from the core, with the session's one-line reason; nothing more from the plugin.
    assert len(lines) == 1, lines
    assert lines[0].startswith("qa: tracker 'neptune' failed in qa_log_metrics (logging epoch 2: InactiveRunException")


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "qa_core.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    return done, time.monotonic() - started


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEPTUNE_", "QA_"))}
    env.update(extra)
    return env


def latest_run(runs_dir: Path, helpers) -> Any:
    class Result:  # the shape read_run needs
        run_dir = next(p for p in runs_dir.iterdir() if not p.name.startswith("_"))

    return helpers.read_run(Result)


@pytest.fixture
def bow(model_names: list[str]) -> str:
    if "bow" not in model_names:
        pytest.skip("the bow example plugin is not installed")
    return "bow"


def test_an_unreachable_server_never_holds_the_run_for_long(bow: str, data_dir: Path, helpers, tmp_path: Path) -> None:
    # The 1.x client retries a closed port for about a minute before it gives up; the core stops
    # waiting for the tracker after QA_TRACKER_TIMEOUT seconds, so the run ends long before that.
    token = helpers.closed_port_token()
    env = clean_env(NEPTUNE_API_TOKEN=token, NEPTUNE_PROJECT="ws/proj", QA_TRACKER_TIMEOUT="3")
    args = ["run", "--plugin", "bow", "--data", str(data_dir), "--epochs", str(helpers.EPOCHS), "--runs-dir", "runs", "--no-progress", "--logger", "neptune"]
    done, seconds = run_cli(args, env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert seconds < 40, f"the run took {seconds:.1f}s"
    helpers.assert_run_dir_complete(latest_run(tmp_path / "runs", helpers))
    lines = plugin_lines(done.stderr)
    assert len(lines) == 1 and "did not finish within 3s" in lines[0]
    assert_secret_absent(token, [done.stdout, done.stderr], helpers.files_under(tmp_path))
    assert_secret_absent("qa-neptune-test-key-7f3a", [done.stdout, done.stderr], helpers.files_under(tmp_path))


def test_a_token_on_the_command_line_is_refused_and_never_written(bow: str, data_dir: Path, helpers, tmp_path: Path) -> None:
    token = helpers.closed_port_token(api_key="cli-key-91e0")
    env = clean_env()
    args = [
        "run", "--plugin", "bow", "--data", str(data_dir), "--epochs", str(helpers.EPOCHS), "--runs-dir", "runs", "--no-progress",
        "--logger", "neptune", "--logger-param", f"neptune.api_token={token}", "--logger-param", "neptune.mode=offline",
    ]
    done, _ = run_cli(args, env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith("error: --logger-param neptune.api_token: secrets are not taken on the command line")
    assert not (tmp_path / "runs").exists()
    assert_secret_absent(token, [done.stdout, done.stderr], helpers.files_under(tmp_path))


def test_an_offline_run_with_a_token_in_the_environment_never_writes_it(run_qa, helpers, tmp_path: Path, monkeypatch, capsys) -> None:
    token = helpers.closed_port_token(api_key="env-key-5b7c")
    monkeypatch.setenv("NEPTUNE_API_TOKEN", token)
    run = run_qa("bow", tmp_path / "runs", {"mode": "offline", "data_dir": str(tmp_path / "tracking")})
    assert run.session.container_dirs()
    out, err = capsys.readouterr()
    assert "failed" not in err
    files = helpers.files_under(tmp_path)
    assert any(".neptune" in p.parts for p in files)
    assert_secret_absent(token, [out, err], files)
    assert_secret_absent("env-key-5b7c", [out, err], files)
