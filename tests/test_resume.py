"""Interrupt (real signals to a real child process) and resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EPOCHS = 6


def start(plugin_site, data: Path, runs: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, **plugin_site.env, "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "qa_core.cli", "run", "--plugin", "slowbow", "--data", str(data), "--epochs", str(EPOCHS),
            "--runs-dir", str(runs), "--no-progress", "--seed", "5", "--top-k", "2", *extra]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lines(runs: Path, count: int, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for metrics in runs.glob("*/metrics.jsonl"):
            if len(metrics.read_text().splitlines()) >= count:
                return metrics.parent
        time.sleep(0.02)
    raise AssertionError(f"no run reached {count} epochs")


def resumed_after(out: str, run_dir: Path) -> int:
    """The epoch a resumed run says it continues after."""
    match = re.search(rf"resuming {re.escape(run_dir.name)} after epoch (\d+)", out)
    assert match, out
    return int(match[1])


def epochs(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def slow(plugin_site):
    plugin_site.add("qa-slowbow", "0.1", "slow_bow", module="slowbow")
    return plugin_site


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory, make_plugin_site):
    """The uninterrupted run every resumed run must equal."""
    site = make_plugin_site()
    site.add("qa-slowbow", "0.1", "slow_bow", module="slowbow")
    runs = tmp_path_factory.mktemp("reference")
    proc = start(site, tiny_data, runs)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (run_dir,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    return run_dir


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_and_resume_equals_an_uninterrupted_run(slow, tiny_data, tmp_path, qa, reference, sig, code):
    runs = tmp_path / "runs"
    proc = start(slow, tiny_data, runs)
    run_dir = wait_for_lines(runs, 2)
    time.sleep(0.2)  # inside epoch 3
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"Resume with: qa run --resume {run_dir}" in err and "Traceback" not in err
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
    done = len(epochs(run_dir))
    assert done < EPOCHS

    result = qa("run", "--resume", str(run_dir), "--no-progress", env=slow.env)
    assert result.code == 0, result.err
    # resumed from the last finished epoch, not an earlier checkpoint (a deterministic rerun from
    # any earlier point would still end equal to the reference)
    assert resumed_after(result.out, run_dir) == done
    lines = epochs(run_dir)
    assert [line["epoch"] for line in lines] == list(range(1, EPOCHS + 1))
    assert lines == epochs(reference)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["test"] == json.loads((reference / "summary.json").read_text())["test"]
    assert len(list((run_dir / "checkpoints").glob("*-e*.npz"))) <= 2


def test_kill_9_mid_epoch_loses_at_most_that_epoch(slow, tiny_data, tmp_path, qa, reference):
    runs = tmp_path / "runs"
    proc = start(slow, tiny_data, runs)
    run_dir = wait_for_lines(runs, 3)
    time.sleep(0.25)
    proc.kill()
    proc.communicate(timeout=30)
    finished = len(epochs(run_dir))
    result = qa("run", "--resume", str(run_dir), "--no-progress", env=slow.env)
    assert result.code == 0, result.err
    # at most the epoch being written when the process died is lost
    assert finished - 1 <= resumed_after(result.out, run_dir) <= finished
    assert epochs(run_dir) == epochs(reference)
    assert not [p for p in run_dir.rglob("*") if ".tmp" in p.name]


def test_resume_can_extend_a_finished_run_and_refuses_a_run_without_epochs(slow, tiny_data, tmp_path, qa, reference):
    import shutil

    copy = tmp_path / reference.name
    shutil.copytree(reference, copy)
    result = qa("run", "--resume", str(copy), "--epochs", str(EPOCHS + 1), "--no-progress", env=slow.env)
    assert result.code == 0, result.err
    assert [line["epoch"] for line in epochs(copy)] == list(range(1, EPOCHS + 2))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps({"plugin": "slowbow"}))
    refused = qa("run", "--resume", str(empty), env=slow.env)
    assert refused.code == 2 and "no completed epoch was saved" in refused.err
