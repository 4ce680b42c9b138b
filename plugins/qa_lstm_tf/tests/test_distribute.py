"""`--param strategy=mirrored`: the LSTM under tf.distribute.MirroredStrategy, through real
`qa run` processes on the CPU split into two logical devices (`--param devices=2`).

Parity is the point: with dropout off (each replica would draw its own masks), two replicas of 8
rows per step must train as one device with the same global batch of 16: Keras scales each
replica's loss by 1/2 and the gradients are summed, which is the gradient of the global mean.
`clipnorm=0.05` is below every batch's gradient norm here (about 0.1), so clipping acts on every
step: Keras' own order (clip each replica's half, then sum) trains differently from one device at
the third decimal, and its gradient norm is a half-batch one; the plugin sums first.

Tolerance 1e-5 (absolute, on losses near 0.69 and accuracies): the two runs differ only in the
order float32 sums are taken (two half-batch sums added, against one sum over the batch), about
1e-7 relative per step; measured differences after two epochs were below 1e-7. A real difference
(per-replica clipping, a replica training on the wrong rows) shows from the third decimal on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa_core.testing import assert_same_epochs

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")

QA = [sys.executable, "-m", "qa_core.cli"]
PARAMS = {"embedding_dim": 8, "units": 8, "dropout": 0, "clipnorm": 0.05}
MIRRORED = ["--param", "strategy=mirrored", "--param", "devices=2"]
COMPARED = ("metrics/train/loss", "metrics/train/accuracy", "metrics/train/grad_norm", "metrics/train/lr", "metrics/val/loss", "metrics/val/accuracy")
TOLERANCE = 1e-5


def qa(*args: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name not in ("QA_TRACEBACK", "QA_TF_VERBOSE")}
    return subprocess.run([*QA, *args], capture_output=True, text=True, env=env, timeout=600)


def train(stories: Path, runs: Path, epochs: int, *extra: str) -> Path:
    params = [arg for name, value in PARAMS.items() for arg in ("--param", f"{name}={value}")]
    result = qa("run", "--plugin", "lstm", "--data", str(stories), "--runs-dir", str(runs), "--epochs", str(epochs),
                "--batch-size", "16", "--max-len", "40", "--seed", "5", "--no-progress", *params, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    if extra:
        assert "lstm: MirroredStrategy, 2 replicas (/device:CPU:0, /device:CPU:1)" in result.stdout, result.stdout
    assert "Traceback" not in result.stderr and "WARNING" not in result.stderr, result.stderr
    (run_dir,) = runs.iterdir()
    return run_dir


@pytest.fixture(scope="module")
def stories(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stories")
    made = qa("data", "generate", "--out", str(out), "--train", "96", "--val", "32", "--test", "32",
              "--categories", "simple", "--noun-counts", "8", "--seed", "4", "--no-progress")
    assert made.returncode == 0, made.stderr
    return out


@pytest.fixture(scope="module")
def mirrored(stories, tmp_path_factory) -> Path:
    """Two epochs on two logical CPU devices, 8 rows each per step."""
    return train(stories, tmp_path_factory.mktemp("mirrored"), 2, *MIRRORED)


def test_two_replicas_train_as_one_device_with_the_same_global_batch(stories, mirrored, tmp_path):
    single = train(stories, tmp_path, 2)
    assert_same_epochs(mirrored, single, COMPARED, atol=TOLERANCE)
    summaries = [json.loads((run / "summary.json").read_text()) for run in (mirrored, single)]
    assert summaries[0]["best"]["epoch"] == summaries[1]["best"]["epoch"]
    assert abs(summaries[0]["test"]["loss"] - summaries[1]["test"]["loss"]) <= TOLERANCE
    assert json.loads((mirrored / "config.json").read_text())["params"]["strategy"] == "mirrored"


def test_a_mirrored_run_extended_by_resume_equals_one_that_ran_through(stories, mirrored, tmp_path):
    run_dir = train(stories, tmp_path, 1, *MIRRORED)  # its checkpoint written under the strategy
    resumed = qa("run", "--resume", str(run_dir), "--epochs", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout and "lstm: MirroredStrategy, 2 replicas" in resumed.stdout, resumed.stdout
    assert_same_epochs(run_dir, mirrored, COMPARED, atol=TOLERANCE)


def test_a_last_batch_smaller_than_the_replicas_trains_without_it_and_scores_every_row(tmp_path):
    """97 train / 33 test rows in batches of 16: the last batch holds 1 row, which would leave
    the second replica an empty batch (Keras hands it one; the network refuses it)."""
    stories = tmp_path / "stories"
    made = qa("data", "generate", "--out", str(stories), "--train", "97", "--val", "33", "--test", "33",
              "--categories", "simple", "--noun-counts", "8", "--seed", "4", "--no-progress")
    assert made.returncode == 0, made.stderr
    run_dir = train(stories, tmp_path / "runs", 1, *MIRRORED)
    assert json.loads((run_dir / "summary.json").read_text())["test"]["count"] == 33
    assert len((run_dir / "eval" / "predictions.jsonl").read_text().splitlines()) == 33


@pytest.mark.parametrize(
    "params, message",
    [
        (["devices=2"], "devices=2 needs strategy=mirrored (without a strategy the model runs on one device)"),
        (["strategy=mirrored", "gradient_accumulation_steps=2"],
         "gradient_accumulation_steps=2 does not combine with strategy=mirrored (Keras 3 accumulates inside a "
         "conditional, where tf.distribute cannot synchronise the replicas); raise --batch-size instead"),
    ],
    ids=["devices-alone", "accumulation"],
)
def test_a_strategy_param_that_cannot_work_is_one_line(stories, tmp_path, params, message):
    result = qa("run", "--plugin", "lstm", "--data", str(stories), "--runs-dir", str(tmp_path), *(a for p in params for a in ("--param", p)))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: --param: {message} (plugin 'lstm')"]
    assert not list(tmp_path.iterdir())


def test_splitting_the_cpu_after_tensorflow_started_is_one_line():
    """In a process where TensorFlow already ran (a notebook, an in-process test), the CPU
    cannot be split any more: the plugin says so instead of TensorFlow's RuntimeError."""
    from qa_core import ConfigError
    from qa_lstm_tf import runtime

    tf, _ = runtime.load()
    tf.constant(1.0) + 1.0  # TensorFlow's devices are initialised from here on
    have = len(tf.config.list_logical_devices("CPU"))
    with pytest.raises(ConfigError, match=rf"^--param devices={have + 1}: TensorFlow already runs on {have} CPU device\(s\) in this process"):
        runtime.strategy({"strategy": "mirrored", "devices": have + 1})
