"""A full disk under torch's own writer: ``torch.save`` reports ENOSPC as a RuntimeError
("unexpected pos 128 vs 0"), not an OSError. The core must still recognise the full disk (the
filesystem has no free blocks), fall back, and finish the run. A real 2 MiB tmpfs, filled by a
tracker after epoch 1's metrics line; needs root to mount (CI runs as root), else skipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa_core.testing import disks

FILLER = Path(__file__).parents[3] / "tests" / "fake_plugins" / "filler.py"
TINY_PARAMS = ["d_model=16", "heads=2", "layers=1", "ff_dim=32", "max_len=64", "device=cpu"]


@pytest.fixture
def small_disk(tmp_path):
    with disks.small_disk(tmp_path / "disk", "2m") as mount_point:
        yield mount_point


def test_a_full_disk_inside_torch_save_falls_back_and_training_goes_on(small_disk, tmp_path):
    site = tmp_path / "site"
    (site / "qa_filler-0.1.dist-info").mkdir(parents=True)
    shutil.copyfile(FILLER, site / "filler.py")
    (site / "qa_filler-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: qa-filler\nVersion: 0.1\n")
    (site / "qa_filler-0.1.dist-info" / "entry_points.txt").write_text("[qa]\nfiller = filler\n")
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])), "QA_TEST_FILL": "1", "TMPDIR": str(tmp_path)}
    qa = [sys.executable, "-m", "qa_core.cli"]
    subprocess.run([*qa, "data", "generate", "--out", str(data), "--train", "72", "--val", "36", "--test", "36", "--no-progress"], check=True, capture_output=True, env=env)
    params = [arg for p in TINY_PARAMS for arg in ("--param", p)]
    result = subprocess.run(
        [*qa, "run", "--plugin", "transformer", "--logger", "filler", "--data", str(data), "--epochs", "2", "--runs-dir", str(small_disk / "runs"), "--no-progress", *params],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "could not write checkpoint" in result.stderr and "No space left on device; the plugin said:" in result.stderr
    assert "Traceback" not in result.stderr and "failed in qa_save_checkpoint" not in result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines() if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert list(tmp_path.glob("qa-fallback-checkpoints/*/best.pt"))
    (run_dir,) = [p for p in (small_disk / "runs").iterdir() if p.is_dir() and not p.name.startswith("_")]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and "checkpoints" in summary["lost"]
    assert [p.name for p in small_disk.rglob("*") if ".tmp" in p.name] == []
