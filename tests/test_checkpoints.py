"""The checkpoint policy on real files: best, top-k, periodic, last, atomic writes, safe reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from qa_core.checkpoints import CheckpointPolicy, read_meta
from qa_core.errors import CheckpointError


def saver(content: str):
    def save(path: Path) -> None:
        path.write_text(content)
    return save


def run_policy(tmp_path, scores, top_k=3, every=0):
    policy = CheckpointPolicy(tmp_path, "ds", "run1", ".ckpt", top_k=top_k, every=every, warn=lambda line: None)
    decisions = []
    for epoch, (acc, loss) in enumerate(scores, start=1):
        decisions.append(policy.update(epoch, acc, loss, saver(f"epoch {epoch}"), {"format": 1, "plugin": "p", "epoch": epoch}))
    return policy, decisions


def files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name.endswith(".ckpt")}


def test_top_k_keeps_the_k_best_and_deletes_the_rest(tmp_path):
    policy, decisions = run_policy(tmp_path, [(0.6, 0.9), (0.8, 0.5), (0.7, 0.6), (0.9, 0.4), (0.5, 1.0)], top_k=2)
    assert [e.epoch for e in policy.top] == [4, 2]
    assert files(tmp_path) == {"ds-run1-e002.ckpt", "ds-run1-e004.ckpt", "best.ckpt", "last.ckpt"}
    assert not (tmp_path / "ds-run1-e001.meta.json").exists()
    assert (tmp_path / "best.ckpt").read_text() == "epoch 4"
    assert (tmp_path / "last.ckpt").read_text() == "epoch 5"
    assert [d.is_best for d in decisions] == [True, True, False, True, False]


def test_ties_in_accuracy_go_to_the_lower_loss_then_the_earlier_epoch(tmp_path):
    policy, decisions = run_policy(tmp_path, [(0.8, 0.5), (0.8, 0.4), (0.8, 0.4)], top_k=1)
    assert policy.best.epoch == 2
    assert [d.is_best for d in decisions] == [True, True, False]
    assert (tmp_path / "best.ckpt").read_text() == "epoch 2"


def test_periodic_checkpoints_survive_falling_out_of_the_top_k(tmp_path):
    policy, _ = run_policy(tmp_path, [(0.1, 1), (0.2, 1), (0.3, 1), (0.4, 1)], top_k=1, every=2)
    assert files(tmp_path) == {"ds-run1-e002.ckpt", "ds-run1-e004.ckpt", "best.ckpt", "last.ckpt"}


def test_meta_names_what_the_file_holds_and_detects_truncation(tmp_path):
    run_policy(tmp_path, [(0.5, 0.7)])
    meta = read_meta(tmp_path / "best.ckpt", ".ckpt")
    assert meta["plugin"] == "p" and meta["epoch"] == 1 and meta["file"] == "ds-run1-e001.ckpt"
    assert meta["bytes"] == len("epoch 1") and len(meta["sha256"]) == 64
    with open(tmp_path / "ds-run1-e001.ckpt", "r+") as handle:  # best is a hard link: same inode
        handle.truncate(3)
    with pytest.raises(CheckpointError, match="truncated"):
        read_meta(tmp_path / "best.ckpt", ".ckpt")


def test_a_failed_write_warns_falls_back_and_training_goes_on(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    if os.access(locked, os.W_OK):  # running as root: permissions do not bind, use a file instead
        os.chmod(locked, 0o700)
        locked.rmdir()
        locked.write_text("not a directory")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    warnings = []
    policy = CheckpointPolicy(locked, "ds", "run1", ".ckpt", top_k=1, warn=warnings.append)
    decision = policy.update(1, 0.5, 0.5, saver("x"), {"format": 1, "plugin": "p"})
    assert decision.saved is not None and decision.saved.read_text() == "x"
    assert decision.saved.parent == tmp_path / "tmp" / "qa-fallback-checkpoints" / "run1"
    assert len(warnings) == 1 and "could not write checkpoint" in warnings[0]


def test_no_temporary_files_are_left_behind(tmp_path):
    run_policy(tmp_path, [(0.5, 0.7), (0.6, 0.6), (0.4, 0.9)])
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    meta = json.loads((tmp_path / "last.meta.json").read_text())
    assert meta["epoch"] == 3
