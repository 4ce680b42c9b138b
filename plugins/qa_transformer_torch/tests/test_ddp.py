"""Data-parallel training through real torchrun processes (gloo on the CPU, 127.0.0.1 only).

Parity is the point: with dropout off, 2 ranks x 16 rows per step must train exactly as one
process x 32 rows on the same data order (the core shards each global batch; DDP averages the
gradients; qa_all_reduce makes the epoch means global), so every epoch's training loss and
validation metrics agree within 1e-5. A run extended by a resume equals one that ran through.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from qa_core.data.generator import generate_splits
from qa_core.data.records import write_jsonl
from qa_core.testing import RunDirectory, assert_same_epochs

#: A tiny model with dropout off (parity needs the same computation on every rank).
PARAMS = ["d_model=16", "heads=2", "layers=1", "ff_dim=32", "max_len=64", "device=cpu", "dropout=0", "threads=1"]
COMPARED = ("metrics/train/loss", "metrics/train/accuracy", "metrics/val/loss", "metrics/val/accuracy")
#: Absolute, on losses near 0.69 and accuracies: the runs differ only in float32 summation order.
TOLERANCE = 1e-5
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "qa_core.cli"]
QA = [sys.executable, "-m", "qa_core.cli"]


def run(command: list[str], *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "MASTER_ADDR": "127.0.0.1", **(env or {})}
    full_env.pop("QA_TRACEBACK", None)
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("ddp-data")
    for split, examples in generate_splits({"train": 256, "val": 64, "test": 64}, seed=1).items():
        write_jsonl(directory / f"{split}.jsonl", examples)
    return directory


def train_args(data: Path, runs: Path, epochs: int, batch_size: int) -> list[str]:
    params = [arg for value in PARAMS for arg in ("--param", value)]
    return ["run", "--plugin", "transformer", "--data", str(data), "--runs-dir", str(runs), "--epochs", str(epochs),
            "--batch-size", str(batch_size), "--no-progress", *params]


def only_run_dir(runs: Path) -> Path:
    dirs = list(runs.iterdir())
    assert len(dirs) == 1, dirs  # rank 1 made no run directory of its own
    return dirs[0]


@pytest.fixture(scope="module")
def two_ranks(data, tmp_path_factory) -> Path:
    """2 ranks x 16 rows, 2 epochs, through plain torchrun."""
    runs = tmp_path_factory.mktemp("two-ranks")
    result = run(TORCHRUN, *train_args(data, runs, 2, 32))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("run directory:") == 1, result.stdout  # rank 0 alone prints
    assert result.stdout.count("EVALUATION RESULTS") == 1
    return only_run_dir(runs)


def test_two_ranks_of_16_train_exactly_as_one_process_of_32(data, two_ranks, tmp_path):
    one = run(QA, *train_args(data, tmp_path, 2, 32))
    assert one.returncode == 0, one.stderr
    single = only_run_dir(tmp_path)
    assert_same_epochs(two_ranks, single, COMPARED, atol=TOLERANCE)
    assert json.loads((two_ranks / "config.json").read_text())["world_size"] == 2
    summaries = [json.loads((d / "summary.json").read_text()) for d in (two_ranks, single)]
    assert summaries[0]["best"]["epoch"] == summaries[1]["best"]["epoch"]
    assert abs(summaries[0]["test"]["loss"] - summaries[1]["test"]["loss"]) <= TOLERANCE


def test_a_two_rank_run_extended_by_resume_equals_one_that_ran_through(data, two_ranks, tmp_path):
    first = run(QA, *train_args(data, tmp_path, 1, 32), "--nproc-per-node", "2")  # the convenience launcher
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    resumed = run(QA, "run", "--resume", str(run_dir), "--epochs", "2", "--no-progress", "--nproc-per-node", "2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout and resumed.stdout.count("run directory:") == 1
    assert_same_epochs(run_dir, two_ranks, COMPARED, atol=TOLERANCE)
    assert only_run_dir(tmp_path) == run_dir


def leftovers(tmp: Path) -> list[Path]:
    """What a job left in its TMPDIR: qa's folders and torchrun's log folders (torch's own
    compile cache, torchinductor_<user>, is meant to stay)."""
    return [path for path in tmp.iterdir() if path.name.startswith(("qa-", "torchelastic_"))]


def _pid_of_rank(token: str, rank: str) -> int | None:
    """The rank's process, found by its environment (this test's token), as a user would with ps."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"QA_TEST_TOKEN={token}".encode() in environ and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_a_rank_that_dies_stops_the_job_with_one_line_and_the_run_resumes(data, tmp_path):
    token, runs, scratch = uuid.uuid4().hex, tmp_path / "runs", tmp_path / "tmp"
    job, pid, err = _signal_rank_one(data, runs, scratch, token, signal.SIGKILL)
    assert job.returncode != 0
    assert "Traceback" not in err, err[-3000:]
    assert "error: rank 1 was killed by SIGKILL; torchrun stopped the other ranks" in err, err[-3000:]
    # rank 0 says what is saved (its broken collective, or torchrun's SIGTERM, whichever came first)
    assert f"Resume with: qa run --resume {only_run_dir(runs)} --nproc-per-node 2" in err, err[-3000:]
    # The killed rank could not delete its bookkeeping folder; it holds no checkpoint (rank 0 alone writes them)
    (left,) = leftovers(scratch)
    assert left.name.startswith(f"qa-rank1-pid{pid}-") and not [p.name for p in left.rglob("*.pt")]
    run_dir = only_run_dir(runs)
    done = len(RunDirectory.read(run_dir).epochs)
    resumed = run(QA, "run", "--resume", str(run_dir), "--epochs", str(done + 1), "--no-progress", "--nproc-per-node", "2",
                  env={"TMPDIR": str(scratch)})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(RunDirectory.read(run_dir).epochs) == done + 1
    assert not leftovers(scratch)  # the dead rank's folder swept by the new rank 1; nothing else left


def _start_two_ranks(data, runs: Path, scratch: Path, token: str) -> subprocess.Popen:
    """A 30-epoch `qa run --nproc-per-node 2` in the background, its ranks findable by ``token``
    (through /proc) and its scratch files kept under ``scratch``."""
    scratch.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "QA_TEST_TOKEN": token, "TMPDIR": str(scratch)}
    env.pop("QA_TRACEBACK", None)
    return subprocess.Popen([*QA, *train_args(data, runs, 30, 32), "--nproc-per-node", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_a_finished_epoch(runs: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(runs.glob("*/metrics.jsonl")):
        time.sleep(0.1)  # polling for the first finished epoch, not a timed assertion


def _signal_rank_one(data, runs: Path, scratch: Path, token: str, signum: int) -> tuple[subprocess.Popen, int, str]:
    """A two-rank job, ``signum`` sent to rank 1's process after the first finished epoch: (the
    ended job, rank 1's pid, the job's stderr)."""
    job = _start_two_ranks(data, runs, scratch, token)
    try:
        _wait_for_a_finished_epoch(runs)
        pid = _pid_of_rank(token, "1")
        assert pid is not None and list(runs.glob("*/metrics.jsonl")), "the job never finished an epoch"
        os.kill(pid, signum)
        _, err = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    return job, pid, err


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="looks for left-over ranks through /proc")
def test_sigint_to_the_launcher_stops_every_rank_and_resume_equals_a_run_that_ran_through(data, two_ranks, tmp_path):
    """`kill -INT` of `qa run --nproc-per-node 2` (a terminal's Ctrl-C reaches only it: torchrun
    runs in a session of its own): torchrun passes it on, every rank saves and stops, the job
    ends 130 with rank 0's resume line, and nothing keeps training, orphaned."""
    token, runs, scratch = uuid.uuid4().hex, tmp_path / "runs", tmp_path / "tmp"
    job = _start_two_ranks(data, runs, scratch, token)
    try:
        _wait_for_a_finished_epoch(runs)
        job.send_signal(signal.SIGINT)
        out, err = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    run_dir = only_run_dir(runs)
    done = len(RunDirectory.read(run_dir).epochs)
    assert job.returncode == 130 and 1 <= done < 30, (job.returncode, done, err[-3000:])
    assert f"epoch {done} is saved. Resume with: qa run --resume {run_dir} --nproc-per-node 2" in err, err[-3000:]
    assert "Traceback" not in err and "error:" not in err, err[-3000:]
    assert sum("interrupted" in line for line in err.splitlines()) == 1, err[-3000:]  # rank 0's line only
    assert _pid_of_rank(token, "0") is None and _pid_of_rank(token, "1") is None  # no rank left behind
    assert not leftovers(scratch)  # nor rank 1's bookkeeping folder, nor torchrun's log folder
    resumed = run(QA, "run", "--resume", str(run_dir), "--epochs", str(done + 1), "--no-progress", "--nproc-per-node", "2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    if done + 1 == 2:
        straight = two_ranks
    else:  # the signal landed later on a fast machine: the same length, uninterrupted (constant lr)
        straight_runs = tmp_path / "straight"
        assert run(TORCHRUN, *train_args(data, straight_runs, done + 1, 32)).returncode == 0
        straight = only_run_dir(straight_runs)
    assert_same_epochs(run_dir, straight, COMPARED, atol=TOLERANCE)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_sigint_to_one_rank_only_stops_every_rank_at_the_same_step_without_an_error(data, tmp_path):
    """torchrun passes a Ctrl-C on rank after rank, and a rank blocked in a backward pass (waiting
    for its peer's gradients) runs its handler late; a signal to rank 1 alone is that lag made
    certain. The ranks vote at every safe point, so rank 0 stops at the same step: before, it
    failed in the collective rank 1 had left ("error: rank 0 in epoch 2: another rank stopped"),
    as rank 1 did in a flaky run of the test above when rank 0 was the one ahead."""
    token, runs, scratch = uuid.uuid4().hex, tmp_path / "runs", tmp_path / "tmp"
    job, _, err = _signal_rank_one(data, runs, scratch, token, signal.SIGINT)
    run_dir = only_run_dir(runs)
    done = len(RunDirectory.read(run_dir).epochs)
    assert job.returncode == 130 and 1 <= done < 30, (job.returncode, done, err[-3000:])
    assert "Traceback" not in err and "error:" not in err, err[-3000:]
    said = [line for line in err.splitlines() if "interrupted" in line]  # rank 0 speaks for the job, once
    assert said in ([f"interrupted (SIGINT) {where}; epoch {done} is saved. Resume with: qa run --resume {run_dir} --nproc-per-node 2"]
                    for where in (f"during epoch {done + 1}", f"after epoch {done}")), err[-3000:]
    assert _pid_of_rank(token, "0") is None and _pid_of_rank(token, "1") is None
    assert not leftovers(scratch)


def test_a_plugin_without_data_parallel_support_is_refused_in_one_line(data, tmp_path):
    launched = run(QA, "run", "--plugin", "bow", "--data", str(data), "--runs-dir", str(tmp_path), "--nproc-per-node", "2")
    assert launched.returncode == 2 and launched.stderr.strip().splitlines() == [
        "error: --nproc-per-node: plugin 'bow' does not support data-parallel training (the transformer plugin does)"
    ], launched.stderr
    under_torchrun = run(QA, "run", "--plugin", "bow", "--data", str(data), "--runs-dir", str(tmp_path), env={"RANK": "1", "WORLD_SIZE": "2"})
    assert under_torchrun.returncode == 2 and under_torchrun.stderr.strip().splitlines() == [
        "error: --plugin bow: does not support data-parallel training (WORLD_SIZE=2); run it as one process"
    ], under_torchrun.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("env", [{}, {"RANK": "0", "WORLD_SIZE": "2"}], ids=["launcher", "under-torchrun"])
def test_a_seed_group_is_refused_in_one_line_before_any_rank_starts(data, tmp_path, env):
    args = ["run", "--plugin", "transformer", "--data", str(data), "--runs-dir", str(tmp_path), "--seeds", "0,1"]
    result = run(QA, *args, *(["--nproc-per-node", "2"] if not env else []), env=env)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: --seeds/--repeats: not with data-parallel training (start each seed's run with --nproc-per-node on its own)"
    ], result.stderr
    assert not list(tmp_path.iterdir())
