"""Where a run came from: command line (secrets redacted), git state, machine, versions."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from qa_core.provenance import git_state, module_version, redact_argv


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "experiment"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "notes.txt").write_text("v1\n")
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def run_in(directory: Path, tiny_data: Path, qa, *extra: str) -> dict:
    runs = directory / "runs"
    before = set(p.name for p in runs.iterdir()) if runs.is_dir() else set()
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1", "--no-progress", "--runs-dir", str(runs), *extra, cwd=directory)
    assert result.code == 0, result.err
    (run_dir,) = [p for p in runs.iterdir() if p.name not in before and not p.name.startswith("_")]
    return json.loads((run_dir / "config.json").read_text())


def test_a_run_records_its_command_machine_and_versions(repo: Path, tiny_data: Path, qa) -> None:
    config = run_in(repo, tiny_data, qa, "--tag", "p")
    block = config["provenance"]
    assert block["command"] == f"qa run --plugin bow --data {tiny_data} --epochs 1 --no-progress --runs-dir {repo / 'runs'} --tag p"
    assert block["git"] == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False, "root": str(repo.resolve())}
    assert (block["python"], block["platform"], block["host"]) == (platform.python_version(), platform.platform(), socket.gethostname())
    versions = block["versions"]
    assert versions["qa-core"] == metadata.version("qa-core")
    assert versions["numpy"] == metadata.version("numpy")  # bow's framework
    assert versions["qa-bow-numpy"] == metadata.version("qa-bow-numpy")
    # every tracker gets them as params too
    params = config["resolved_params"]
    assert params["provenance/git_commit"] == block["git"]["commit"] and params["versions/qa-core"] == versions["qa-core"]


def test_an_edited_tracked_file_makes_the_run_dirty(repo: Path, tiny_data: Path, qa) -> None:
    (repo / "notes.txt").write_text("v2\n")
    (repo / "untracked.txt").write_text("new\n")
    assert run_in(repo, tiny_data, qa)["provenance"]["git"]["dirty"] is True
    (repo / "notes.txt").write_text("v1\n")  # untracked files (a run's own output) do not count
    assert run_in(repo, tiny_data, qa)["provenance"]["git"]["dirty"] is False


def test_outside_a_repository_git_is_null_and_the_run_works(tmp_path: Path, tiny_data: Path, qa) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    env_check = subprocess.run(["git", "rev-parse", "HEAD"], cwd=outside, capture_output=True)
    if env_check.returncode == 0:
        pytest.skip("the temporary folder lies inside a git repository")
    assert run_in(outside, tiny_data, qa)["provenance"]["git"] is None


def test_git_missing_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on PATH at all
    assert git_state(tmp_path) is None


def test_secrets_in_the_command_line_are_redacted() -> None:
    argv = ["qa", "run", "--logger-param", "mlflow.tracking_uri=https://me:hunter2@example.org/x", "--logger-param", "neptune.api_token=abc",
            "--api-key", "k123", "--lr", "0.1"]  # fmt: skip
    out = redact_argv(argv)
    text = " ".join(out)
    assert "hunter2" not in text and "abc" not in text and "k123" not in text
    assert out == ["qa", "run", "--logger-param", "mlflow.tracking_uri=https://me:<redacted>@example.org/x", "--logger-param",
                   "neptune.api_token=<redacted>", "--api-key", "<redacted>", "--lr", "0.1"]  # fmt: skip


def test_framework_versions_come_without_importing_the_framework() -> None:
    code = (
        "import sys\n"
        "from qa_core.provenance import module_version\n"
        "print(module_version('torch'), module_version('tensorflow'), module_version('keras'))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'keras')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    versions, imported = result.stdout.splitlines()
    expected = []
    for module, dists in (("torch", ["torch"]), ("tensorflow", ["tensorflow", "tensorflow-cpu"]), ("keras", ["keras"])):
        found = [metadata.version(d) for d in dists if _installed(d)]
        expected.append(found[0] if found else "None")
    assert versions.split() == expected
    assert imported == "[]"
    assert module_version("no_such_module_here") is None


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_a_resume_keeps_the_first_start_and_appends_itself(tiny_data: Path, tmp_path: Path, qa) -> None:
    runs = tmp_path / "runs"
    first = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1", "--no-progress", "--runs-dir", str(runs), "--tag", "x")
    assert first.code == 0, first.err
    (run_dir,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    started = json.loads((run_dir / "config.json").read_text())["provenance"]
    for epochs in ("2", "3"):
        again = qa("run", "--resume", str(run_dir), "--epochs", epochs, "--no-progress")
        assert again.code == 0, again.err
    block = json.loads((run_dir / "config.json").read_text())["provenance"]
    assert {k: v for k, v in block.items() if k != "resumes"} == started
    assert [entry["command"] for entry in block["resumes"]] == [f"qa run --resume {run_dir} --epochs {n} --no-progress" for n in ("2", "3")]
