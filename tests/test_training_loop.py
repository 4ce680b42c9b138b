"""The training kit of the loop, end to end through the real CLI: callback plugins (stop, add a
metric), --monitor/--mode/--min-delta, --log-every-n-steps, --limit-train-batches, --fast-dev-run."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest


def only_run(runs: Path) -> Path:
    (run_dir,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    return run_dir


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def site(plugin_site, tmp_path):
    plugin_site.add("qa-stopper", "0.1", "stop_callback", module="stopper")
    plugin_site.add("qa-recorder", "0.1", "metrics_recorder", module="recorder")
    return {**plugin_site.env, "RECORDER_FILE": str(tmp_path / "recorded.jsonl")}


def test_a_callback_stops_the_run_and_its_metric_reaches_metrics_jsonl_and_every_tracker(qa, site, tiny_data, tmp_path):
    runs = tmp_path / "runs"
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "6", "--runs-dir", str(runs), "--no-progress",
                "--callback", "stopper", "--logger", "recorder", env=site)
    assert result.code == 0, result.err
    run_dir = only_run(runs)
    epochs = lines(run_dir / "metrics.jsonl")
    assert [line["epoch"] for line in epochs] == [1, 2]
    assert all(line["metrics/val/error_rate"] == 1.0 - line["metrics/val/accuracy"] for line in epochs)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_run"] == 2
    assert summary["stopped"] == {"epoch": 2, "by": "stopper", "reason": "enough after two epochs"}
    assert "stopped by callback 'stopper': enough after two epochs" in result.out
    assert "Overall accuracy" in result.out  # the best checkpoint was still tested
    recorded = lines(tmp_path / "recorded.jsonl")
    assert [call["step"] for call in recorded] == [1, 2]
    assert [call["metrics"]["metrics/val/error_rate"] for call in recorded] == [line["metrics/val/error_rate"] for line in epochs]


def test_monitor_val_loss_picks_the_lowest_loss_epoch_for_best_and_top_k(qa, plugin_site, tiny_data, tmp_path):
    plugin_site.add("qa-scripted", "0.1", "scripted_bow", module="scripted")  # val accuracy and loss disagree
    base = ("run", "--plugin", "scripted", "--data", str(tiny_data), "--epochs", "4", "--top-k", "2", "--no-progress")
    by_loss = qa(*base, "--monitor", "metrics/val/loss", "--runs-dir", str(tmp_path / "loss"), env=plugin_site.env)
    by_accuracy = qa(*base, "--runs-dir", str(tmp_path / "accuracy"), env=plugin_site.env)
    assert by_loss.code == 0 and by_accuracy.code == 0, by_loss.err + by_accuracy.err
    run_dir = only_run(tmp_path / "loss")
    epochs = lines(run_dir / "metrics.jsonl")
    ranked = sorted(epochs, key=lambda l: (l["metrics/val/loss"], l["epoch"]))
    assert [l["epoch"] for l in ranked] == [2, 4, 3, 1]  # what the scripted scores make of the data
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best"]["epoch"] == 2 and summary["monitor"] == {"name": "metrics/val/loss", "mode": "min"}
    assert [e["epoch"] for e in summary["top_epochs"]] == [2, 4]
    assert json.loads((run_dir / "checkpoints" / "best.meta.json").read_text())["epoch"] == 2
    assert "test split scored with the best epoch 2" in by_loss.out
    default = json.loads((only_run(tmp_path / "accuracy") / "summary.json").read_text())
    assert default["best"]["epoch"] == 1 and [e["epoch"] for e in default["top_epochs"]] == [1, 3]


def test_a_monitor_without_a_known_direction_or_name_is_one_line_before_any_work(qa, tiny_data, tmp_path):
    base = ("run", "--plugin", "bow", "--data", str(tiny_data), "--runs-dir", str(tmp_path / "runs"), "--no-progress")
    ambiguous = qa(*base, "--monitor", "metrics/val/f1")
    assert ambiguous.code == 2
    assert ambiguous.err.strip() == "error: --monitor metrics/val/f1: cannot tell whether higher or lower is better; add --mode max or --mode min"
    misspelt = qa(*base, "--monitor", "metrics/val/acuracy", "--mode", "max")
    assert misspelt.code == 2 and "did you mean metrics/val/accuracy?" in misspelt.err
    assert qa(*base, "--mode", "up").code == 2 and qa(*base, "--min-delta", "-1").code == 2
    assert not list((tmp_path / "runs").glob("*")) if (tmp_path / "runs").exists() else True


def test_min_delta_counts_small_improvements_as_none_for_early_stopping(qa, tiny_data, tmp_path):
    # the training loss falls every epoch, by less and less: a monitor any metrics.jsonl name may be
    base = ("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "12", "--patience", "2", "--monitor", "metrics/train/loss", "--no-progress")
    plain = qa(*base, "--runs-dir", str(tmp_path / "a"))
    strict = qa(*base, "--min-delta", "0.04", "--runs-dir", str(tmp_path / "b"))
    assert plain.code == 0 and strict.code == 0, plain.err + strict.err
    losses = [l["metrics/train/loss"] for l in lines(only_run(tmp_path / "a") / "metrics.jsonl")]
    run_b = lines(only_run(tmp_path / "b") / "metrics.jsonl")
    # replay Keras' rule on the losses: stop after 2 epochs without an improvement of > 0.04
    best, waited, stop = None, 0, None
    for epoch, loss in enumerate(losses, 1):
        if best is None or loss < best - 0.04:
            best, waited = loss, 0
        else:
            waited += 1
        if waited >= 2:
            stop = epoch
            break
    assert stop is not None and len(run_b) == stop < len(losses)
    assert json.loads((only_run(tmp_path / "b") / "summary.json").read_text())["stopped"]["by"] == "early stopping"


def test_step_logging_goes_to_steps_jsonl_and_trackers_on_a_global_step_axis(qa, site, tiny_data, tmp_path):
    runs = tmp_path / "runs"
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "2", "--batch-size", "32", "--limit-train-batches", "5",
                "--log-every-n-steps", "2", "--logger", "recorder", "--runs-dir", str(runs), "--no-progress", env=site)
    assert result.code == 0, result.err
    run_dir = only_run(runs)
    steps = lines(run_dir / "steps.jsonl")
    assert [s["step"] for s in steps] == [2, 4, 6, 8, 10]  # 5 steps per epoch, counted over the run
    assert [s["steps/epoch"] for s in steps] == [1, 1, 2, 2, 2]
    assert all(0 < s["steps/train/loss"] < 2 for s in steps)
    assert not any(k.startswith("steps/") for line in lines(run_dir / "metrics.jsonl") for k in line)
    recorded = lines(tmp_path / "recorded.jsonl")
    step_calls = [c for c in recorded if all(k.startswith("steps/") for k in c["metrics"])]
    epoch_calls = [c for c in recorded if not any(k.startswith("steps/") for k in c["metrics"])]
    assert [c["step"] for c in step_calls] == [2, 4, 6, 8, 10] and [c["step"] for c in epoch_calls] == [1, 2]
    assert len(step_calls) + len(epoch_calls) == len(recorded)  # no call mixes the two kinds
    config = json.loads((run_dir / "config.json").read_text())
    assert config["limit_train_batches"] == 5 and config["log_every_n_steps"] == 2


def test_the_step_loss_is_the_mean_of_the_last_n_steps(qa, plugin_site, tiny_data, tmp_path):
    plugin_site.add("qa-lossbow", "0.1", "loss_bow", module="lossbow")
    env = {**plugin_site.env, "LOSS_FILE": str(tmp_path / "losses.txt")}
    result = qa("run", "--plugin", "lossbow", "--data", str(tiny_data), "--epochs", "1", "--log-every-n-steps", "3",
                "--runs-dir", str(tmp_path / "runs"), "--no-progress", env=env)
    assert result.code == 0, result.err
    seen = [float(line) for line in (tmp_path / "losses.txt").read_text().splitlines()]
    steps = lines(only_run(tmp_path / "runs") / "steps.jsonl")
    assert len(seen) == 12 and [s["step"] for s in steps] == [3, 6, 9, 12]
    for point in steps:
        window = seen[point["step"] - 3 : point["step"]]
        assert point["steps/train/loss"] == pytest.approx(sum(window) / 3, rel=1e-12)


def test_fast_dev_run_runs_every_hook_in_seconds_and_leaves_nothing(qa, tiny_data, tmp_path):
    runs = tmp_path / "runs"
    before = set(Path(tempfile.gettempdir()).glob("qa-fast-dev-run-*"))
    started = time.monotonic()
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "50", "--fast-dev-run", "--runs-dir", str(runs), "--no-progress")
    seconds = time.monotonic() - started
    assert result.code == 0, result.err
    assert len([line for line in result.out.splitlines() if line.startswith("epoch ")]) == 1
    assert "64 train / 64 val / 64 test records" in result.out and "Overall accuracy" in result.out
    assert "nothing kept" in result.out
    assert not runs.exists()
    assert set(Path(tempfile.gettempdir()).glob("qa-fast-dev-run-*")) == before
    assert seconds < 60  # generous for a loaded CI machine; it takes about a second alone


def test_fast_dev_run_without_data_generates_nothing_that_stays(qa, tmp_path):
    result = qa("run", "--plugin", "bow", "--fast-dev-run", "--runs-dir", str(tmp_path / "runs"), "--no-progress", cwd=tmp_path)
    assert result.code == 0, result.err
    assert not (tmp_path / "runs").exists() and [p.name for p in tmp_path.iterdir()] == []


def test_callback_kind_is_validated_at_load(qa, plugin_site):
    plugin_site.add("qa-empty-cb", "0.1", "empty_callback", module="emptycb")
    listing = {r["name"]: r for r in json.loads(qa("plugins", "--json", env=plugin_site.env).out)}
    assert "implements none of qa_epoch_metrics, qa_epoch_end" in listing["emptycb"]["error"]
    result = qa("run", "--plugin", "bow", "--callback", "nosuch", env=plugin_site.env)
    assert result.code == 2 and "--callback nosuch: no such callback plugin" in result.err
