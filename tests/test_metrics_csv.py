"""metrics.csv: the epoch table of the local tracker, the same numbers as metrics.jsonl."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

def table(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same(rows: list[dict[str, str]], records: list[dict]) -> None:
    assert len(rows) == len(records)
    assert list(rows[0])[0] == "epoch" and list(rows[0]) == list(dict.fromkeys(k for r in records for k in r))
    for row, record in zip(rows, records):
        assert int(row["epoch"]) == record["epoch"]
        assert {k: float(v) for k, v in row.items() if k != "epoch"} == {k: float(v) for k, v in record.items() if k != "epoch"}


def test_one_row_per_epoch_one_column_per_name(tiny_data: Path, tmp_path: Path, qa) -> None:
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "2", "--no-progress", "--runs-dir", str(tmp_path))
    assert result.code == 0, result.err
    (run_dir,) = [p for p in tmp_path.iterdir() if not p.name.startswith("_")]
    rows = table(run_dir)
    assert_same(rows, lines(run_dir))
    assert {"metrics/train/loss", "metrics/val/accuracy", "val/by_group/dense/noun_8/accuracy"} <= set(rows[0])


def test_a_resume_drops_the_unfinished_epochs_row(tiny_data: Path, tmp_path: Path, plugin_site, qa) -> None:
    plugin_site.add("qa-killedbow", "0.1", "killed_bow", module="killedbow")
    runs = tmp_path / "runs"
    first = qa("run", "--plugin", "killedbow", "--data", str(tiny_data), "--epochs", "4", "--no-progress", "--runs-dir", str(runs), env=plugin_site.env)
    assert first.code == -signal.SIGKILL, first.err
    (run_dir,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    assert [row["epoch"] for row in table(run_dir)] == ["1", "2", "3"]
    second = qa("run", "--resume", str(run_dir), "--no-progress", env={**plugin_site.env, "QA_TEST_NO_KILL": "1"})
    assert second.code == 0, second.err
    assert [row["epoch"] for row in table(run_dir)] == ["1", "2", "3", "4"]
    assert_same(table(run_dir), lines(run_dir))
