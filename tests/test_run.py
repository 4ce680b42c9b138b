"""`qa run` and `qa evaluate` end to end with the numpy example plugin, through the real CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa_core.data.records import read_jsonl


def only_run(runs: Path) -> Path:
    (run_dir,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    return run_dir


@pytest.fixture(scope="module")
def bow_run(qa, tiny_data, tmp_path_factory):
    """One 3-epoch run shared by the tests that only read its results."""
    runs = tmp_path_factory.mktemp("runs")
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "3", "--top-k", "2", "--runs-dir", str(runs), "--no-progress", "--seed", "3")
    assert result.code == 0, result.err
    return result, only_run(runs)


def test_run_writes_a_complete_run_directory(bow_run, tiny_data):
    result, run_dir = bow_run
    assert {p.name for p in run_dir.iterdir()} >= {"config.json", "metrics.jsonl", "summary.json", "vocab.json", "checkpoints", "eval"}
    config = json.loads((run_dir / "config.json").read_text())
    assert config["plugin"] == "bow" and config["plugin_version"] == "0.1.0" and config["seed"] == 3
    assert config["resolved_params"]["model/lr"] == 0.05 and config["qa_version"]
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    keys = set(lines[0])
    for name in ("metrics/train/loss", "metrics/val/accuracy", "val/by_category/dense/accuracy", "val/by_noun_count/15/count", "val/by_group/superdense/noun_30/accuracy", "val/confusion/tp"):
        assert name in keys
    val = read_jsonl(tiny_data / "val.jsonl")
    assert lines[0]["metrics/val/count"] == len(val)
    assert lines[0]["val/by_group/simple/noun_8/count"] == sum(e.category == "simple" and e.noun_count == 8 for e in val)

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_run"] == 3
    best = max(lines, key=lambda l: (l["metrics/val/accuracy"], -l["metrics/val/loss"]))
    assert summary["best"]["epoch"] == best["epoch"]
    assert summary["values"]["best/epoch"] == best["epoch"]
    assert len(summary["top_epochs"]) == 2 and summary["values"]["top_epochs/1/epoch"] == best["epoch"]

    checkpoints = run_dir / "checkpoints"
    epoch_files = sorted(p.name for p in checkpoints.glob("*-e*.npz"))
    assert len(epoch_files) == 2
    for name in epoch_files:
        assert re.fullmatch(rf"{tiny_data.name}-{run_dir.name}-e00[123]\.npz", name)
    assert (checkpoints / "best.npz").is_file() and (checkpoints / "last.npz").is_file()
    assert json.loads((checkpoints / "best.meta.json").read_text())["epoch"] == best["epoch"]

    eval_dir = run_dir / "eval"
    numbers = {"metrics.json", "groups.csv", "confusion_matrix.json", "misclassified.jsonl", "errors.json", "predictions.jsonl", "predictions.json"}
    plots = {p.name for p in eval_dir.glob("*.png")}
    assert {p.name for p in eval_dir.iterdir()} == numbers | plots
    assert len(plots) == 3  # matplotlib is installed with the [plots] extra in the test set-up
    test = read_jsonl(tiny_data / "test.jsonl")
    cm = json.loads((eval_dir / "confusion_matrix.json").read_text())["matrix"]
    assert sum(map(sum, cm)) == len(test)
    wrong = [json.loads(line) for line in (eval_dir / "misclassified.jsonl").read_text().splitlines()]
    assert len(wrong) == cm[0][1] + cm[1][0]
    by_id = {e.id: e for e in test}
    for row in wrong:
        truth = by_id[row["id"]].answer
        assert (row["probability"] >= 0.5) != truth and row["story"] == by_id[row["id"]].story
    # every prediction kept, in the test file's order, with the hash of exactly those records
    kept = [json.loads(line) for line in (eval_dir / "predictions.jsonl").read_text().splitlines()]
    assert [row["id"] for row in kept] == [e.id for e in test]
    assert all(row["label"] == int(by_id[row["id"]].answer) and row["noun_count"] == by_id[row["id"]].noun_count for row in kept)
    assert sum((row["probability"] >= 0.5) != row["label"] for row in kept) == len(wrong)
    from qa_core.predictions import records_sha256

    meta = json.loads((eval_dir / "predictions.json").read_text())
    assert meta["records_sha256"] == records_sha256(test) != records_sha256(test[1:])
    assert meta["records_sha256"] == records_sha256(test[::-1])  # the records, not their order


def test_run_prints_plugins_epochs_and_the_results_block(bow_run):
    result, run_dir = bow_run
    out = result.out
    assert "plugins: model bow 0.1.0; trackers local" in out
    assert len(re.findall(r"^epoch [123]/3 ", out, re.M)) == 3
    # the validation accuracy with its Wilson 95% interval, as in metrics.jsonl
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    shown = re.findall(r"^epoch [123]/3 .*\|  val loss \S+ acc (\S+) \[(\S+), (\S+)\]", out, re.M)
    assert [tuple(map(float, s)) for s in shown] == [
        pytest.approx((line["metrics/val/accuracy"], line["metrics/val/accuracy_low"], line["metrics/val/accuracy_high"]), abs=5e-3) for line in lines
    ]
    assert "* new best" in out.splitlines()[2]  # the first epoch is always a new best
    block = out[out.index("EVALUATION RESULTS BY CATEGORY:"):]
    cells = re.findall(r"  - (\w+)/noun_(\d+): Accuracy=(\d\.\d{4}) \[(\d\.\d\d), (\d\.\d\d)\] \(from (\d+) samples\)", block)
    assert len(cells) == 9
    summary = json.loads((run_dir / "summary.json").read_text())
    assert f"Overall accuracy: {summary['test']['accuracy']:.4f}" in block
    for category, nouns, accuracy, low, high, count in cells:
        assert float(accuracy) == pytest.approx(summary["values"][f"test/by_group/{category}/noun_{nouns}/accuracy"], abs=5e-5)
        assert float(low) == pytest.approx(summary["values"][f"test/by_group/{category}/noun_{nouns}/accuracy_low"], abs=5e-3)
        assert float(high) == pytest.approx(summary["values"][f"test/by_group/{category}/noun_{nouns}/accuracy_high"], abs=5e-3)
        assert int(count) == summary["values"][f"test/by_group/{category}/noun_{nouns}/count"]


def test_evaluate_scores_the_best_checkpoint_like_the_run_did(bow_run, qa, tiny_data):
    _, run_dir = bow_run
    result = qa("evaluate", str(run_dir), "--data", str(tiny_data / "test.jsonl"))
    assert result.code == 0, result.err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert f"Overall accuracy: {summary['test']['accuracy']:.4f}" in result.out
    out = Path(result.out.split("eval files: ")[1].strip())  # eval/test-<sha256 prefix>
    assert out.parent == run_dir / "eval" and out.name.startswith("test-")
    assert (out / "misclassified.jsonl").is_file()
    # the same records as the run's own test scoring: the kept predictions pair, and agree
    kept = [json.loads((d / "predictions.json").read_text()) for d in (run_dir / "eval", out)]
    assert kept[0]["records_sha256"] == kept[1]["records_sha256"]
    assert (run_dir / "eval" / "predictions.jsonl").read_text() == (out / "predictions.jsonl").read_text()
    by_file = qa("evaluate", str(run_dir / "checkpoints" / "best.npz"), "--data", str(tiny_data / "val.jsonl"), "--out", str(run_dir / "val-eval"))
    assert by_file.code == 0, by_file.err
    assert json.loads((run_dir / "val-eval" / "metrics.json").read_text())["overall"]["count"] == len(read_jsonl(tiny_data / "val.jsonl"))


def test_evaluate_refuses_a_checkpoint_that_does_not_match(bow_run, qa, tiny_data, tmp_path):
    _, run_dir = bow_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    vocab = json.loads((copy / "vocab.json").read_text())
    vocab["tokens"].append("zebra")
    vocab.pop("sha256")
    (copy / "vocab.json").write_text(json.dumps(vocab))
    result = qa("evaluate", str(copy), "--data", str(tiny_data / "test.jsonl"))
    assert result.code == 2 and "does not match the one the model was trained with" in result.err
    with open(copy / "checkpoints" / "best.npz", "ab") as handle:
        handle.write(b"garbage")
    result = qa("evaluate", str(copy / "checkpoints" / "best.npz"), "--data", str(tiny_data / "test.jsonl"))
    assert result.code == 2 and ("truncated or changed" in result.err) and "Traceback" not in result.err


def test_train_and_test_without_val_carve_a_stratified_validation_slice(qa, tiny_data, tmp_path):
    result = qa("run", "--plugin", "bow", "--train", str(tiny_data / "train.jsonl"), "--test", str(tiny_data / "test.jsonl"), "--epochs", "1", "--runs-dir", str(tmp_path), "--no-progress")
    assert result.code == 0, result.err
    line = json.loads((only_run(tmp_path) / "metrics.jsonl").read_text())
    train = read_jsonl(tiny_data / "train.jsonl")
    assert line["metrics/val/count"] == pytest.approx(0.1 * len(train), abs=10)
    assert sum(1 for k in line if k.startswith("val/by_group/") and k.endswith("/count")) == 9


def test_early_stopping_stops_after_patience_epochs_without_improvement(qa, tiny_data, tmp_path):
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "30", "--patience", "1", "--param", "lr=0.5", "--runs-dir", str(tmp_path), "--no-progress")
    assert result.code == 0, result.err
    lines = [json.loads(line) for line in (only_run(tmp_path) / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) < 30 and "early stopping" in result.out
    # the best epoch as the checkpoint policy ranks them: accuracy, then lower loss, then earlier
    best = min(lines, key=lambda l: (-l["metrics/val/accuracy"], l["metrics/val/loss"], l["epoch"]))["epoch"]
    assert len(lines) == best + 1  # patience 1: exactly one epoch without improvement, then stop


def test_bad_records_are_reported_by_file_line_and_field_before_anything_runs(qa, tiny_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    lines = (data / "train.jsonl").read_text().splitlines()
    record = json.loads(lines[4])
    record["answer"] = "maybe"
    lines[4] = json.dumps(record)
    lines[9] = lines[9][:-5]
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    result = qa("run", "--plugin", "bow", "--data", str(data), "--runs-dir", str(tmp_path / "runs"), "--no-progress")
    assert result.code == 2
    assert f"error: {data / 'train.jsonl'}:5: answer: expected yes/no/true/false/1/0, got 'maybe'" in result.err
    assert f"{data / 'train.jsonl'}:10: json:" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "runs").exists()


def test_babi_files_train_like_jsonl(qa, tmp_path):
    babi = Path(__file__).parent / "data" / "babi"
    result = qa(
        "run", "--plugin", "bow", "--train", str(babi / "qa6_yes-no-questions_train.txt"), "--test", str(babi / "qa6_yes-no-questions_test.txt"),
        "--epochs", "1", "--runs-dir", str(tmp_path), "--no-progress",
    )
    assert result.code == 0, result.err
    assert "yes-no-questions/noun_" in result.out


def test_same_seed_gives_the_same_metrics(qa, tiny_data, tmp_path):
    outs = []
    for name in ("a", "b"):
        result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "2", "--seed", "11", "--runs-dir", str(tmp_path / name), "--no-progress")
        assert result.code == 0, result.err
        outs.append([{k: v for k, v in json.loads(l).items()} for l in (only_run(tmp_path / name) / "metrics.jsonl").read_text().splitlines()])
    assert outs[0] == outs[1]


def test_default_dataset_is_generated_when_no_data_is_given(qa, tmp_path):
    result = qa("run", "--plugin", "bow", "--epochs", "1", "--runs-dir", str(tmp_path), "--no-progress")
    assert result.code == 0, result.err
    data_dir = next((tmp_path / "_data").iterdir())
    sizes = {p.stem: len(p.read_text().splitlines()) for p in data_dir.glob("*.jsonl")}
    assert sizes == {"train": 4500, "val": 900, "test": 900}
    config = json.loads((only_run(tmp_path) / "config.json").read_text())
    assert config["data_sources"]["data_dir"] == str(data_dir)
    assert np.isclose(json.loads((only_run(tmp_path) / "summary.json").read_text())["test"]["count"], 900)


def test_the_vocabulary_comes_from_the_training_split_only(qa, tiny_data, tmp_path):
    """Words that appear only in val or test must not enter the vocabulary (they encode as <unk>):
    a vocabulary built from every split would leak the evaluation data into the model's inputs."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    for split, word in (("val", "zyzzyva"), ("test", "quokka"), ("train", "wombat")):
        lines = (data / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        record = json.loads(lines[0])
        record["story"] += f" The {word} slept."
        (data / f"{split}.jsonl").write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n", encoding="utf-8")
    result = qa("run", "--plugin", "bow", "--data", str(data), "--epochs", "1", "--runs-dir", str(tmp_path / "runs"), "--no-progress")
    assert result.code == 0, result.err
    tokens = json.loads((only_run(tmp_path / "runs") / "vocab.json").read_text())["tokens"]
    assert "wombat" in tokens
    assert "zyzzyva" not in tokens and "quokka" not in tokens
