"""The ``lstm`` plugin through the public CLI, as a user runs it: ``qa run``, ``qa evaluate``.

One tiny generated dataset (54/18/18 stories) and one one-epoch run are shared by the module.
When the ``transformer`` plugin is installed too, a one-epoch Transformer run on the same data
checks that both frameworks produce the same metric names and run-directory layout.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")

QA = [sys.executable, "-m", "qa_core.cli"]
#: The core's --max-len keeps both plugins' runs small without naming their parameters.
SMALL = ["--epochs", "1", "--max-len", "48", "--batch-size", "16", "--no-progress"]
#: What TensorFlow prints at start-up unless the plugin keeps it quiet.
TF_NOISE = re.compile(r"oneDNN|absl|cpu_feature_guard|TF_ENABLE_ONEDNN_OPTS|cuda|tensorflow/core", re.IGNORECASE)


def qa(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    for name in ("QA_TF_VERBOSE", "TF_CPP_MIN_LOG_LEVEL", "QA_TRACEBACK"):
        full_env.pop(name, None)
    return subprocess.run([*QA, *map(str, args)], capture_output=True, text=True, env=full_env, timeout=300)


def installed_plugins() -> set[str]:
    return {entry_point.name for entry_point in metadata.entry_points(group="qa")}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    done = qa("data", "generate", "--out", directory, "--train", 54, "--val", 18, "--test", 18, "--seed", 1, "--no-progress")
    assert done.returncode == 0, done.stderr
    return directory


def run_plugin(plugin: str, data_dir: Path, runs_dir: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    done = qa("run", "--plugin", plugin, "--data", data_dir, "--runs-dir", runs_dir, *SMALL, *extra)
    assert done.returncode == 0, done.stderr
    (run_dir,) = [path for path in runs_dir.iterdir() if path.is_dir() and not path.name.startswith("_")]
    return done, run_dir


@pytest.fixture(scope="module")
def lstm_run(data_dir, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    return run_plugin("lstm", data_dir, tmp_path_factory.mktemp("lstm-runs"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def layout(run_dir: Path, suffix: str) -> set[str]:
    """The run directory's files, with the model-file suffix and the run id made generic."""
    names = set()
    for path in run_dir.rglob("*"):
        if path.is_file():
            name = path.relative_to(run_dir).as_posix().replace(run_dir.name, "<run>")
            names.add(name.replace(suffix, "<model>"))
    return names


def test_one_epoch_run_writes_a_complete_run_directory(lstm_run, data_dir):
    done, run_dir = lstm_run
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    assert config["plugin"] == "lstm" and config["epochs"] == 1 and config["max_len"] == 48
    (epoch,) = read_jsonl(run_dir / "metrics.jsonl")
    for name in ("metrics/train/loss", "metrics/train/accuracy", "metrics/val/loss", "metrics/val/accuracy", "val/confusion/tp"):
        assert name in epoch
    assert any(key.startswith("val/by_group/simple/noun_") for key in epoch)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "finished" and summary["best"]["epoch"] == 1
    assert summary["test"]["count"] == 18
    assert json.loads((run_dir / "vocab.json").read_text(encoding="utf-8"))["tokens"][:3] == ["<pad>", "<unk>", "<sep>"]

    checkpoints = run_dir / "checkpoints"
    stem = f"{data_dir.name}-{run_dir.name}-e001"
    for name in (stem, "best", "last"):
        assert (checkpoints / f"{name}.weights.h5").stat().st_size > 0
        meta = json.loads((checkpoints / f"{name}.meta.json").read_text(encoding="utf-8"))
        assert meta["plugin"] == "lstm" and meta["epoch"] == 1
    from qa_lstm_tf.checkpoint import read_header

    header = read_header(checkpoints / "best.weights.h5")
    assert header.plugin == "lstm" and header.vocab_hash == config["vocab_sha256"] and header.max_len == 48
    assert {path.name for path in (run_dir / "eval").iterdir()} >= {"metrics.json", "groups.csv", "confusion_matrix.json", "misclassified.jsonl"}


def test_tensorflow_start_up_noise_stays_out_of_the_console(lstm_run):
    done, _ = lstm_run
    assert not TF_NOISE.search(done.stderr), done.stderr
    # nor Keras' or numpy's warnings (a dataset given to fit with shuffle=True warned once)
    assert "Warning" not in done.stderr, done.stderr
    assert "epoch 1/1" in done.stdout + done.stderr


def test_qa_evaluate_scores_the_saved_model_like_the_run_did(lstm_run, data_dir, tmp_path):
    _, run_dir = lstm_run
    done = qa("evaluate", run_dir, "--data", data_dir / "test.jsonl", "--out", tmp_path / "eval")
    assert done.returncode == 0, done.stderr
    # The best checkpoint, reloaded in a fresh process, gives the test metrics the run logged.
    run_test = json.loads((run_dir / "eval" / "metrics.json").read_text(encoding="utf-8"))
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert again["overall"] == run_test["overall"]


def test_a_bad_param_is_refused_before_any_work(data_dir, tmp_path):
    done = qa("run", "--plugin", "lstm", "--data", data_dir, "--runs-dir", tmp_path / "runs", "--param", "units=0", "--no-progress")
    assert done.returncode == 2
    assert "units" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_qa_plugins_lists_the_lstm_and_its_params():
    done = qa("plugins", "--json")
    assert done.returncode == 0, done.stderr
    (record,) = [r for r in json.loads(done.stdout) if r["name"] == "lstm"]
    assert record["kind"] == "model" and record["framework"] == "tensorflow" and record["error"] is None
    assert record["checkpoint_suffix"] == ".weights.h5" and "qa_train_epoch" in record["hooks"]
    names = {param["name"] for param in record["params"]}
    assert {"embedding_dim", "units", "layers", "bidirectional", "dropout", "recurrent_dropout", "lr", "max_len"} <= names


needs_transformer = pytest.mark.skipif("transformer" not in installed_plugins(), reason="the transformer plugin is not installed")


@pytest.fixture(scope="module")
def transformer_dir(data_dir, tmp_path_factory) -> Path:
    return run_plugin("transformer", data_dir, tmp_path_factory.mktemp("transformer-runs"))[1]


@needs_transformer
def test_lstm_and_transformer_runs_have_the_same_metric_names_and_files(lstm_run, transformer_dir):
    _, lstm_dir = lstm_run
    lstm_lines, transformer_lines = read_jsonl(lstm_dir / "metrics.jsonl"), read_jsonl(transformer_dir / "metrics.jsonl")
    assert len(lstm_lines) == len(transformer_lines) == 1
    # The core's figures match name for name; a model's own training figures (the memory
    # network's support loss, which a plain transformer has none of) may come on top.
    own = {"metrics/train/support_loss"}
    assert set(lstm_lines[0]) - own == set(transformer_lines[0]) - own
    lstm_summary = json.loads((lstm_dir / "summary.json").read_text(encoding="utf-8"))
    transformer_summary = json.loads((transformer_dir / "summary.json").read_text(encoding="utf-8"))
    assert set(lstm_summary) == set(transformer_summary)
    assert set(lstm_summary["test_metrics"]) == set(transformer_summary["test_metrics"])
    from qa_core.plugins import load_plugins

    transformer_suffix = load_plugins().model("transformer").info.checkpoint_suffix
    assert layout(lstm_dir, ".weights.h5") == layout(transformer_dir, transformer_suffix)


@needs_transformer
def test_a_transformer_checkpoint_is_refused_by_the_lstm(transformer_dir):
    """A real checkpoint of the other framework, handed to the LSTM's load hook directly."""
    from qa_core import CheckpointError, ModelSpec
    from qa_core.plugins import load_plugins

    plugins = load_plugins()
    model_file = transformer_dir / "checkpoints" / f"best{plugins.model('transformer').info.checkpoint_suffix}"
    lstm = plugins.model("lstm")
    params = lstm.resolve_params({})
    vocab = json.loads((transformer_dir / "vocab.json").read_text(encoding="utf-8"))
    spec = ModelSpec("lstm", params, len(vocab["tokens"]), 48, 0, vocab_hash=vocab["sha256"])
    with pytest.raises(CheckpointError, match="not a Keras weights file"):
        lstm.load(model_file, spec, {})


def load_tensorflow(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import os\nfrom qa_lstm_tf import runtime\nruntime.load()\nprint(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n"
    full_env = {k: v for k, v in os.environ.items() if k not in ("QA_TF_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**full_env, **env}, timeout=120)


def test_tensorflow_is_imported_quietly_unless_asked():
    quiet = load_tensorflow({})
    assert quiet.returncode == 0 and quiet.stdout.strip() == "3"
    assert quiet.stderr == ""
    verbose = load_tensorflow({"QA_TF_VERBOSE": "1"})
    # TensorFlow as it is: its own log level, nothing filtered. (What it then prints depends on
    # the build and the machine, so only the quiet side is asserted.)
    assert verbose.returncode == 0 and verbose.stdout.strip() == "None"


def test_the_stderr_filter_drops_start_up_notices_and_keeps_everything_else():
    from qa_lstm_tf.runtime import _NOISE

    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1795552116.688137    4722 port.cc:153] oneDNN custom operations are on.",
        "W0000 00:00:1795552116.688137    4722 cuda_executor.cc:1] could not find cuda drivers",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
    ]
    kept = [
        "E0000 00:00:1795552116.688137    4722 util.cc:131] a real error",
        "Traceback (most recent call last):",
        "ImportError: libcudart.so.12: cannot open shared object file",
        "I am a line a plugin printed",
    ]
    assert all(_NOISE.match(line) for line in noise)
    assert not any(_NOISE.match(line) for line in kept)
