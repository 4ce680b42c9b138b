"""Crash-consistent checkpoints and resumes that change nothing they should not (issue 16.1, 16.3's
run-directory lock, 16.4), on real files and real processes of the `qa` CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa_core.checkpoints import meta_digest

# bow with optional slowness, from the environment: every step after step SLOW_AFTER sleeps
def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def only_run(runs: Path) -> Path:
    (run_dir,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    return run_dir


@pytest.fixture
def slow(plugin_site):
    plugin_site.add("qa-slowbow", "0.1", "env_slow_bow", module="slowbow")
    return plugin_site


def finished_run(qa, tiny_data, runs, *extra, env=None) -> Path:
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--runs-dir", str(runs), "--no-progress", *extra, env=env)
    assert result.code == 0, result.err
    return only_run(runs)


def as_crashed(run_dir: Path) -> None:
    """What a kill -9 after the last epoch's checkpoint leaves: summary.json still 'running'."""
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "status": "running"}))


# -- 16.1: a checkpoint is one unit; resume falls back to the newest consistent one --------------


def test_a_last_checkpoint_beside_another_epochs_meta_falls_back_to_the_newest_consistent_unit(qa, tiny_data, tmp_path):
    run_dir = finished_run(qa, tiny_data, tmp_path / "runs", "--epochs", "3", "--top-k", "3")
    as_crashed(run_dir)
    checkpoints = run_dir / "checkpoints"
    # killed between the two renames that move `last` from epoch 2 to 3: epoch 3's model, epoch 2's meta
    e2, e3 = sorted(checkpoints.glob("*-e00[23].meta.json"))
    (checkpoints / "last.meta.json").unlink()
    shutil.copy(e2, checkpoints / "last.meta.json")
    result = qa("run", "--resume", str(run_dir), "--epochs", "4", "--no-progress")
    assert result.code == 0, result.err
    assert "last.npz is damaged" in result.err and f"resuming from {e3.name.replace('.meta.json', '.npz')} (epoch 3)" in result.err
    assert "after epoch 3" in result.out
    assert [line["epoch"] for line in lines(run_dir / "metrics.jsonl")] == [1, 2, 3, 4]
    assert json.loads((checkpoints / "last.meta.json").read_text())["epoch"] == 4


def test_an_edited_meta_epoch_is_refused_even_when_the_model_file_is_intact(qa, tiny_data, tmp_path):
    run_dir = finished_run(qa, tiny_data, tmp_path / "runs", "--epochs", "3", "--top-k", "1")
    as_crashed(run_dir)
    last_meta = run_dir / "checkpoints" / "last.meta.json"
    meta = json.loads(last_meta.read_text())
    last_meta.unlink()  # a hard link to the epoch file's meta: edit this name only
    last_meta.write_text(json.dumps({**meta, "epoch": 0}))
    result = qa("run", "--resume", str(run_dir), "--epochs", "3", "--no-progress")
    assert result.code == 0, result.err  # falls back to the best (epoch file), never retrains over epochs 1-3 as "0"
    assert "last.npz is damaged" in result.err and "edited" in result.err
    resumed = int(result.out.split("after epoch ")[1].split()[0])
    assert resumed == json.loads((run_dir / "summary.json").read_text())["best"]["epoch"] >= 1


def test_a_meta_whose_epoch_disagrees_with_metrics_jsonl_is_not_trusted(qa, tiny_data, tmp_path):
    run_dir = finished_run(qa, tiny_data, tmp_path / "runs", "--epochs", "3", "--top-k", "1", "--seed", "2")
    as_crashed(run_dir)
    original = lines(run_dir / "metrics.jsonl")
    for meta_file in (run_dir / "checkpoints").glob("*.meta.json"):
        meta = json.loads(meta_file.read_text())
        meta["epoch"] = 2 if meta["epoch"] == 3 else meta["epoch"]  # epoch 3's model claims to be epoch 2
        meta["digest"] = meta_digest(meta)  # a careful edit: the meta's own digest is recomputed
        meta_file.unlink()
        meta_file.write_text(json.dumps(meta))
    result = qa("run", "--resume", str(run_dir), "--epochs", "3", "--no-progress")
    best = json.loads((run_dir / "summary.json").read_text())["best"]["epoch"]
    if best == 3:  # the only units on disk are epoch 3's, relabelled: nothing consistent is left
        assert result.code == 2 and "does not match metrics.jsonl" in result.err
    else:
        assert result.code == 0 and f"after epoch {best}" in result.out, result.err
        assert "last.npz is damaged" in result.err and "does not match metrics.jsonl" in result.err
        # epoch 3 was trained again from the real epoch-2 model, not on from epoch 3's relabelled one
        assert lines(run_dir / "metrics.jsonl") == original


def test_the_interrupt_message_names_the_epoch_on_disk_and_a_signal_never_cuts_a_checkpoint(slow, tiny_data, tmp_path, qa):
    runs = tmp_path / "runs"
    env = {**os.environ, **slow.env, "SAVE_SLEEP": "1.5", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "qa_core.cli", "run", "--plugin", "slowbow", "--data", str(tiny_data), "--epochs", "5",
                             "--runs-dir", str(runs), "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(runs.glob("*/checkpoints/.*.tmp*")):
        time.sleep(0.01)  # inside epoch 1's checkpoint write (the save hook sleeps)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    run_dir = only_run(runs)
    saved = json.loads((run_dir / "checkpoints" / "last.meta.json").read_text())["epoch"]
    assert saved == 1  # the write that the signal arrived in was finished, not cut
    assert f"epoch {saved} is saved. Resume with: qa run --resume {run_dir}" in err
    assert not list(run_dir.rglob(".*.tmp*"))
    result = qa("run", "--resume", str(run_dir), "--no-progress", env=slow.env)
    assert result.code == 0 and "after epoch 1" in result.out, result.err


def test_a_second_ctrl_c_forces_the_exit_and_the_run_still_resumes(slow, tiny_data, tmp_path, qa):
    runs = tmp_path / "runs"
    env = {**os.environ, **slow.env, "SLOW_AFTER": "14", "STEP_SLEEP": "20", "PYTHONUNBUFFERED": "1"}  # epoch 2 crawls
    proc = subprocess.Popen([sys.executable, "-m", "qa_core.cli", "run", "--plugin", "slowbow", "--data", str(tiny_data), "--epochs", "3",
                             "--runs-dir", str(runs), "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(runs.glob("*/checkpoints/last.meta.json")):
        time.sleep(0.02)
    time.sleep(0.5)  # inside a 20-second step of epoch 2
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None  # the first one only asked: the step is not cut
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)  # far less than the step: the second one forced it
    assert proc.returncode == 130, err
    assert "during epoch 2; epoch 1 is saved" in err
    result = qa("run", "--resume", str(only_run(runs)), "--no-progress", env=slow.env)
    assert result.code == 0 and "after epoch 1" in result.out, result.err


# -- 16.3: one process per run directory ---------------------------------------------------------


def test_a_second_process_on_a_running_run_is_refused_naming_the_holder(slow, tiny_data, tmp_path, qa):
    runs = tmp_path / "runs"
    env = {**os.environ, **slow.env, "STEP_SLEEP": "0.2"}
    proc = subprocess.Popen([sys.executable, "-m", "qa_core.cli", "run", "--plugin", "slowbow", "--data", str(tiny_data), "--epochs", "3",
                             "--runs-dir", str(runs), "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(runs.glob("*/metrics.jsonl")):
            time.sleep(0.02)
        run_dir = only_run(runs)
        before = (run_dir / "metrics.jsonl").read_text()
        second = qa("run", "--resume", str(run_dir), "--no-progress", env=slow.env)
        assert second.code == 2
        assert second.err.strip() == (
            f"error: --resume {run_dir}: the run directory is in use by pid {proc.pid} on {socket.gethostname()} "
            f"since {json.loads((run_dir / '.lock').read_text())['started']}; wait for it to end or stop it"
        )
        assert (run_dir / "metrics.jsonl").read_text().startswith(before)  # nothing of the holder's was touched
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    # killed: the kernel released its lock; the next process takes over and says so
    result = qa("run", "--resume", str(run_dir), "--no-progress", env=slow.env)
    assert result.code == 0, result.err
    assert f"took over the lock of {run_dir} left by pid {proc.pid}" in result.err
    assert (run_dir / ".lock").read_text() == ""  # released cleanly at the end


# -- 16.4: a resume never changes a run it should not ---------------------------------------------


def test_resuming_a_finished_or_early_stopped_run_does_nothing_unless_epochs_extends_it(qa, tiny_data, tmp_path):
    finished = finished_run(qa, tiny_data, tmp_path / "a", "--epochs", "2")
    stopped = finished_run(qa, tiny_data, tmp_path / "b", "--epochs", "30", "--patience", "1", "--param", "lr=0.5")
    for run_dir, says in ((finished, "already finished all 2 epochs; nothing to do"), (stopped, "stopped early after epoch")):
        before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
        result = qa("run", "--resume", str(run_dir), "--no-progress")
        assert result.code == 0 and says in result.out, result.err
        assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    assert "early stopping" in json.loads((stopped / "summary.json").read_text())["stopped"]["by"]
    extended = qa("run", "--resume", str(finished), "--epochs", "3", "--no-progress")
    assert extended.code == 0 and [line["epoch"] for line in lines(finished / "metrics.jsonl")] == [1, 2, 3]


def test_checkpoint_names_survive_a_renamed_run_directory(qa, tiny_data, tmp_path):
    run_dir = finished_run(qa, tiny_data, tmp_path / "runs", "--epochs", "2", "--top-k", "2")
    moved = run_dir.rename(tmp_path / "renamed")
    result = qa("run", "--resume", str(moved), "--epochs", "4", "--no-progress")
    assert result.code == 0, result.err
    summary = json.loads((moved / "summary.json").read_text())
    assert summary["run_id"] == run_dir.name
    named = [e["checkpoint"] for e in summary["top_epochs"]] + [summary["best"]["checkpoint"]]
    assert all((moved / "checkpoints" / name).is_file() for name in named), named
    assert len(list((moved / "checkpoints").glob("*-e*.npz"))) == 2


def test_a_resume_on_changed_data_is_refused_unless_allowed(qa, tiny_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    run_dir = finished_run(qa, data, tmp_path / "runs", "--epochs", "1")
    records = (data / "val.jsonl").read_text().splitlines()
    (data / "val.jsonl").write_text("\n".join(records[1:]) + "\n")  # one validation record fewer
    refused = qa("run", "--resume", str(run_dir), "--epochs", "2", "--no-progress")
    assert refused.code == 2
    assert refused.err.strip() == (
        f"error: --resume {run_dir}: data file {data / 'val.jsonl'} changed (sha256 differs) since the run started; "
        "resuming would train on other data (pass --allow-changed-data to resume anyway)"
    )
    assert [line["epoch"] for line in lines(run_dir / "metrics.jsonl")] == [1]
    allowed = qa("run", "--resume", str(run_dir), "--epochs", "2", "--allow-changed-data", "--no-progress")
    assert allowed.code == 0, allowed.err


def test_a_resume_refuses_an_option_that_would_change_the_run_naming_its_value(qa, tiny_data, tmp_path):
    """`--resume RUN --lr X` once trained on with X silently; now every option that would change
    the run is one line with the run's own value, and repeating that value is accepted."""
    run_dir = finished_run(qa, tiny_data, tmp_path / "runs", "--epochs", "1")  # bow's own lr, 0.05
    config = (run_dir / "config.json").read_bytes()
    refused = qa("run", "--resume", str(run_dir), "--epochs", "2", "--lr", "0.2", "--no-progress")
    assert refused.code == 2
    assert refused.err.strip() == (
        "error: --lr 0.2: the run being resumed has lr=0.05 (its config.json), which --resume keeps (only --epochs, --progress "
        f"and tracker options may change); to train with --lr 0.2, start a new run from its options: qa run --from {run_dir} --lr 0.2"
    )
    for option, value, stored in (("--batch-size", "8", "batch_size=32"), ("--tag", "x", "tags=[]"), ("--patience", "3", "patience=0")):
        other = qa("run", "--resume", str(run_dir), "--epochs", "2", option, value, "--no-progress")
        assert other.code == 2 and other.err.startswith(f"error: {option} {value}: the run being resumed has {stored} "), other.err
        assert len(other.err.strip().splitlines()) == 1, other.err
    assert (run_dir / "config.json").read_bytes() == config
    assert [line["epoch"] for line in lines(run_dir / "metrics.jsonl")] == [1]
    same = qa("run", "--resume", str(run_dir), "--epochs", "2", "--lr", "0.05", "--batch-size", "32", "--no-progress")
    assert same.code == 0, same.err
    assert [line["epoch"] for line in lines(run_dir / "metrics.jsonl")] == [1, 2]
    assert json.loads((run_dir / "config.json").read_text())["lr"] is None  # still as it started: the plugin's own lr


def test_a_resume_from_another_working_directory_reads_the_same_data(qa, tiny_data, tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    shutil.copytree(tiny_data, home / "data")
    elsewhere.mkdir()
    first = qa("run", "--plugin", "bow", "--data", "data", "--runs-dir", "runs", "--epochs", "1", "--no-progress", cwd=home)
    assert first.code == 0, first.err
    run_dir = only_run(home / "runs")
    assert json.loads((run_dir / "config.json").read_text())["data_dir"] == str(home / "data")
    result = qa("run", "--resume", str(run_dir), "--epochs", "2", "--no-progress", cwd=elsewhere)
    assert result.code == 0, result.err
    assert list(elsewhere.iterdir()) == []  # nothing generated or written here
    assert [line["epoch"] for line in lines(run_dir / "metrics.jsonl")] == [1, 2]
