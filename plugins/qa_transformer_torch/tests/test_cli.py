"""The plugin through the public command line, as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

#: A tiny model, so one epoch on tiny data takes about a second.
TINY_PARAMS = ["d_model=16", "heads=2", "layers=1", "ff_dim=32", "max_len=64", "device=cpu"]


def qa(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed ``qa`` command (through this interpreter, so the venv is the one tested)."""
    return subprocess.run(
        [sys.executable, "-m", "qa_core.cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    result = qa("data", "generate", "--out", str(out), "--train", "72", "--val", "36", "--test", "36", "--seed", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    return out


def test_qa_plugins_lists_the_transformer_with_its_version_and_parameters():
    result = qa("plugins", "--json")
    assert result.returncode == 0, result.stderr
    records = {record["name"]: record for record in json.loads(result.stdout)}
    plugin = records["transformer"]
    assert plugin["error"] is None
    assert plugin["version"] == version("qa-transformer-torch")
    assert plugin["distribution"] == "qa-transformer-torch"
    assert (plugin["kind"], plugin["framework"], plugin["checkpoint_suffix"]) == ("model", "torch", ".pt")
    params = {param["name"]: param for param in plugin["params"]}
    for name in ("d_model", "heads", "layers", "ff_dim", "dropout", "max_len", "lr", "weight_decay", "grad_clip", "device"):
        assert "default" in params[name] and params[name]["help"], name
    assert params["heads"]["type"] == "int" and params["dropout"]["minimum"] == 0.0


def test_one_epoch_run_writes_the_run_directory_with_grouped_metrics(data_dir, tmp_path):
    runs = tmp_path / "runs"
    params = [arg for value in TINY_PARAMS for arg in ("--param", value)]
    result = qa("run", "--plugin", "transformer", "--data", str(data_dir), "--epochs", "1", "--batch-size", "16",
                "--runs-dir", str(runs), "--no-progress", *params)
    assert result.returncode == 0, result.stderr
    (run_dir,) = [path for path in runs.iterdir() if not path.name.startswith("_")]

    for name in ("config.json", "metrics.jsonl", "summary.json", "vocab.json"):
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["plugin"] == "transformer" and config["plugin_version"] == version("qa-transformer-torch")

    (line,) = [json.loads(text) for text in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert line["epoch"] == 1 and 0.0 <= line["metrics/val/accuracy"] <= 1.0
    categories = {record["category"] for record in map(json.loads, (data_dir / "val.jsonl").read_text().splitlines())}
    nouns = {record["noun_count"] for record in map(json.loads, (data_dir / "val.jsonl").read_text().splitlines())}
    assert categories and nouns
    for category in categories:
        assert f"val/by_category/{category}/accuracy" in line
        assert f"val/by_category/{category}/count" in line
    for noun_count in nouns:
        assert f"val/by_noun_count/{noun_count}/accuracy" in line
    # The per-category counts add up to the whole split: every record was scored once.
    assert sum(line[f"val/by_category/{c}/count"] for c in categories) == line["metrics/val/count"] == 36

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["test"]["count"] == 36
    checkpoints = run_dir / "checkpoints"
    assert (checkpoints / "best.pt").is_file() and (checkpoints / "last.pt").is_file()
    assert list(checkpoints.glob("*-e001.pt")) and (checkpoints / "best.meta.json").is_file()
    assert (run_dir / "eval" / "metrics.json").is_file()

    # The saved model scores a data file through `qa evaluate`, reloaded by the plugin.
    evaluated = qa("evaluate", str(run_dir), "--data", str(data_dir / "test.jsonl"))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "transformer" in evaluated.stdout


def test_a_bad_parameter_stops_the_run_with_one_line_before_any_work(data_dir, tmp_path):
    runs = tmp_path / "runs"
    result = qa("run", "--plugin", "transformer", "--data", str(data_dir), "--runs-dir", str(runs), "--no-progress",
                "--param", "d_model=64", "--param", "heads=3")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --param: heads=3 must divide d_model=64"), result.stderr
    assert not runs.exists() or not any(runs.iterdir())  # nothing was written
