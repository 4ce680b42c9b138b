"""A full disk, for real: the runs directory on a small tmpfs that a tracker plugin fills up after
epoch 1's metrics line (and, in one case, frees again in epoch 3). What must hold: training goes on,
every epoch line and the test block are printed, the model save inside the plugin's save hook
(ENOSPC wrapped in a PluginError) falls back, metrics.jsonl never holds a torn line, summary.json
says what was lost, no temporary file stays, and no message claims what is not true.

Needs root (or CAP_SYS_ADMIN) to mount a tmpfs; CI runs as root. Elsewhere the tests skip, saying
so. A loop-mounted image would need the same rights; RLIMIT_FSIZE would give EFBIG instead of
ENOSPC and would not fill the disk for the other writers, so it is not an equivalent.
"""

from __future__ import annotations

import json

import pytest

from qa_core.testing import disks


@pytest.fixture
def small_disk(tmp_path):
    with disks.small_disk(tmp_path / "disk", "1m") as mount_point:
        yield mount_point


def run_on_full_disk(qa, plugin_site, tiny_data, tmp_path, disk, fill: int, free: int):
    plugin_site.add("qa-filler", "0.1", "filler")
    fallback = tmp_path / "tmp"
    fallback.mkdir()
    result = qa(
        "run", "--plugin", "bow", "--logger", "filler", "--data", str(tiny_data), "--epochs", "3",
        "--runs-dir", str(disk / "runs"), "--no-progress",
        env={**plugin_site.env, "TMPDIR": str(fallback), "QA_TEST_FILL": str(fill), "QA_TEST_FREE": str(free)},
    )
    (run_dir,) = [p for p in (disk / "runs").iterdir() if p.is_dir() and not p.name.startswith("_")]
    return result, run_dir, fallback


def assert_survived(result, disk):
    assert result.code == 0, result.err
    assert [line.split()[1] for line in result.out.splitlines() if line.startswith("epoch ")] == ["1/3", "2/3", "3/3"]
    assert "Overall accuracy" in result.out  # the test block is printed although eval/ is not kept
    assert "Traceback" not in result.err and "unexpected" not in result.err, result.err
    assert "keeps everything" not in result.err, result.err  # the local run directory did not
    assert [p.name for p in disk.rglob("*") if ".tmp" in p.name] == []


def test_a_disk_that_fills_after_epoch_1_loses_nothing_silently(qa, plugin_site, tiny_data, tmp_path, small_disk):
    result, run_dir, fallback = run_on_full_disk(qa, plugin_site, tiny_data, tmp_path, small_disk, fill=1, free=0)
    assert_survived(result, small_disk)
    # the model save inside the plugin hook failed and fell back; training went on
    assert "could not write checkpoint" in result.err and "No space left on device" in result.err
    assert {p.name for p in fallback.glob("qa-fallback-checkpoints/*/*.npz")} >= {"best.npz", "last.npz"}
    # metrics.jsonl: epoch 1 only, whole lines; the failure said as what it is
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1]
    assert f"local tracker: could not write {run_dir / 'metrics.jsonl'} (No space left on device): epoch 2 not in the run's record" in result.err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_run"] == 3
    lost = summary["lost"]
    assert "epochs 2-3 not in the run's record" in lost["metrics.jsonl"]
    assert "eval/metrics.json" in lost and "eval/misclassified.jsonl" in lost
    assert str(fallback) in lost["checkpoints"]
    for name, reason in lost.items():  # nothing listed as lost is on disk, or it would not be lost
        if name.startswith("eval/"):
            assert not (run_dir / name).exists(), name
            assert "No space left on device" in reason


def test_a_disk_that_frees_up_again_gets_the_missing_epochs_written(qa, plugin_site, tiny_data, tmp_path, small_disk):
    result, run_dir, _ = run_on_full_disk(qa, plugin_site, tiny_data, tmp_path, small_disk, fill=1, free=3)
    assert_survived(result, small_disk)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # epoch 2 was kept in memory; it went to disk with epoch 3's line, in order
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert "metrics.jsonl" not in summary.get("lost", {}) and "eval/metrics.json" not in summary.get("lost", {})
    assert (run_dir / "eval" / "metrics.json").is_file()
