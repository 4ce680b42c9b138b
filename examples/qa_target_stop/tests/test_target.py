"""The target callback through the real `qa` CLI, found through its installed entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def qa(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "qa_core.cli", *args], capture_output=True, text=True, env=env, timeout=300)


def only_run(runs: Path) -> Path:
    (run_dir,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    return run_dir


def test_it_is_discovered_as_a_callback_plugin():
    listing = json.loads(qa("plugins", "--json").stdout)
    (record,) = [r for r in listing if r["name"] == "target"]
    assert record["kind"] == "callback" and record["distribution"] == "qa-target-stop" and record["error"] is None
    assert {"qa_epoch_metrics", "qa_epoch_end"} <= set(record["hooks"])


def test_it_adds_balanced_accuracy_and_stops_at_the_target(qa_tiny_data: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    result = qa(
        "run", "--plugin", "bow", "--data", str(qa_tiny_data), "--epochs", "8", "--runs-dir", str(runs), "--no-progress",
        "--callback", "target", "--callback-param", "target.metric=metrics/train/loss", "--callback-param", "target.mode=min",
        "--callback-param", "target.value=0.6",
    )
    assert result.returncode == 0, result.stderr
    run_dir = only_run(runs)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:  # the callback's own metric, computed from the confusion counts of the line
        tpr = line["val/confusion/tp"] / (line["val/confusion/tp"] + line["val/confusion/fn"])
        tnr = line["val/confusion/tn"] / (line["val/confusion/tn"] + line["val/confusion/fp"])
        assert abs(line["metrics/val/balanced_accuracy"] - (tpr + tnr) / 2) < 1e-12
    losses = [line["metrics/train/loss"] for line in lines]
    first = next(i for i, loss in enumerate(losses, 1) if loss <= 0.6)  # stopped at the first epoch that reached it
    assert len(lines) == first < 8
    stopped = json.loads((run_dir / "summary.json").read_text())["stopped"]
    assert stopped["epoch"] == first and stopped["by"] == "target" and "metrics/train/loss reached" in stopped["reason"]
    assert f"stopped by callback 'target': {stopped['reason']}" in result.stdout


def test_a_bad_option_is_one_line_before_any_work(qa_tiny_data: Path, tmp_path: Path):
    result = qa("run", "--plugin", "bow", "--data", str(qa_tiny_data), "--runs-dir", str(tmp_path / "runs"), "--callback", "target", "--callback-param", "target.mode=sideways")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: --callback-param target.mode: expected one of max, min")
    assert not (tmp_path / "runs").exists()
