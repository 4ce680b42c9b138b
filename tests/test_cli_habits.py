"""What a user of any modern CLI expects: --version, -h, shell completion, readable metavars, and
`qa runs` to list what was run."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest


def all_helps() -> dict[tuple[str, ...], str]:
    """The help text of every command, in-process, as `qa` shows it (readable_metavars applied)."""
    import typer.main

    from qa_core.cli import app
    from qa_core.cli_support import readable_metavars

    root = readable_metavars(typer.main.get_command(app))
    out = {}

    def walk(command, path, parent):
        ctx = command.make_context(path[-1] if path else "qa", [], parent=parent, resilient_parsing=True)
        out[tuple(path)] = command.get_help(ctx)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name], ctx)

    walk(root, [], None)
    return out


def test_version(qa) -> None:
    for flag in ("--version", "-V"):
        result = qa(flag)
        assert (result.code, result.out) == (0, f"qa {metadata.version('qa-core')}\n")


def test_h_is_help_everywhere_and_metavars_are_readable(qa) -> None:
    helps = all_helps()
    assert ("runs",) in helps and ("data", "generate") in helps
    for path, text in helps.items():
        # typer's own labels read <list[str]>, <path>, <int>: none may be left
        assert not re.search(r"<[a-zA-Z\[\]]+>", text), (path, text)
        assert "-h, --help" in text, path
    for path in ((), ("run",), ("data", "generate")):  # and the real command line takes -h
        result = qa(*path, "-h")
        assert result.code == 0, (path, result.err)
        assert result.out.startswith(f"Usage: qa {' '.join(path)}".rstrip()), result.out
    run_help = qa("run", "-h").out
    for shown in ("--param KEY=VALUE", "--logger-param TRACKER.KEY=VALUE", "--epochs N", "--config FILE", "--from RUN_DIR", "--format auto|jsonl|babi"):
        assert shown in run_help, shown
    assert "Usage: qa compare [OPTIONS] {RUN_DIR}..." in helps[("compare",)]


def test_shell_completion(qa) -> None:
    assert "--install-completion" in qa("-h").out
    script = qa("--show-completion", "bash")
    assert script.code == 0 and "_QA_COMPLETE=complete_bash" in script.out
    commands = qa(env={"_QA_COMPLETE": "complete_bash", "COMP_WORDS": "qa r", "COMP_CWORD": "1"})
    assert commands.out.split() == ["run", "report", "runs"]
    options = qa(env={"_QA_COMPLETE": "complete_bash", "COMP_WORDS": "qa run --print", "COMP_CWORD": "2"})
    assert options.out.split() == ["--print-config"]
    # --plugin and --logger complete to what is installed, as `qa plugins` lists it
    listed = json.loads(qa("plugins", "--json").out)
    models = sorted(p["name"] for p in listed if p["kind"] == "model" and not p["error"])
    plugins = qa(env={"_QA_COMPLETE": "complete_bash", "COMP_WORDS": "qa run --plugin ", "COMP_CWORD": "3"})
    assert plugins.out.split() == models and "bow" in models
    trackers = qa(env={"_QA_COMPLETE": "complete_bash", "COMP_WORDS": "qa run --logger t", "COMP_CWORD": "3"})
    assert trackers.out.split() == sorted(p["name"] for p in listed if p["kind"] == "tracker" and p["name"].startswith("t") and not p["error"])


@pytest.fixture(scope="module")
def runs_dir(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory, qa) -> Path:
    runs = tmp_path_factory.mktemp("listing") / "runs"
    for extra in (("--tag", "a", "--name", "first"), ("--tag", "b", "--epochs", "2")):
        result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1", "--no-progress", "--runs-dir", str(runs), *extra)
        assert result.code == 0, result.err
    broken = runs / "20200101-000000000-bow-dead"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    return runs


def test_qa_runs_lists_every_run(runs_dir: Path, qa) -> None:
    result = qa("runs", "--runs-dir", str(runs_dir), "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert [row["status"] for row in rows] == ["unreadable", "finished", "finished"]  # oldest first; _data passed over
    first, second = rows[1], rows[2]
    summary = json.loads((Path(first["path"]) / "summary.json").read_text())
    assert first["name"] == "first" and first["plugin"] == "bow" and first["tags"] == ["a"]
    assert (first["epochs_run"], first["epochs"]) == (1, 1) and (second["epochs_run"], second["epochs"]) == (2, 2)
    assert first["best_val_accuracy"] == summary["best"]["accuracy"]
    assert first["test_accuracy"] == summary["test"]["accuracy"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", first["started"])
    table = qa("runs", "--runs-dir", str(runs_dir)).out.splitlines()
    assert table[0].split() == ["id", "name", "plugin", "status", "epochs", "best", "val", "test", "acc", "started"]
    assert first["run_id"] in table[2] and f"{first['best_val_accuracy']:.4f}" in table[2]


def test_qa_runs_filters(runs_dir: Path, qa) -> None:
    def ids(*args: str) -> list[str]:
        result = qa("runs", "--runs-dir", str(runs_dir), "--json", *args)
        assert result.code == 0, result.err
        return [row["name"] for row in json.loads(result.out)]

    assert ids("--tag", "a") == ["first"]
    assert ids("--tag", "a", "--tag", "b") == []
    assert len(ids("--status", "finished")) == 2
    assert ids("--plugin", "transformer") == []
    assert len(ids("--plugin", "bow")) == 2
    missing = qa("runs", "--runs-dir", str(runs_dir / "nope"))
    assert missing.code == 2 and missing.err.strip() == f"error: --runs-dir {runs_dir / 'nope'}: no such directory"


def test_a_killed_run_is_listed_as_died_with_its_logged_epochs(tiny_data: Path, tmp_path: Path, plugin_site, qa) -> None:
    import signal

    plugin_site.add("qa-killedbow", "0.1", "killed_bow", module="killedbow")
    runs = tmp_path / "runs"
    killed = qa("run", "--plugin", "killedbow", "--data", str(tiny_data), "--epochs", "4", "--no-progress", "--runs-dir", str(runs), env=plugin_site.env)
    assert killed.code == -signal.SIGKILL, killed.err
    (row,) = json.loads(qa("runs", "--runs-dir", str(runs), "--json").out)
    assert (row["status"], row["epochs_run"], row["epochs"]) == ("died", 3, 4)  # summary.json still says running
    assert [r["run_id"] for r in json.loads(qa("runs", "--runs-dir", str(runs), "--status", "died", "--json").out)] == [row["run_id"]]
