"""Real runs of the numpy ``bow`` plugin with ``--logger tensorboard``, read back with
TensorBoard's EventAccumulator and checked against what the local tracker wrote for the same run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="module")
def cli_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory, helpers: SimpleNamespace) -> SimpleNamespace:
    runs_dir = tmp_path_factory.mktemp("cli") / "runs"
    result = helpers.run_qa(
        "run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", str(helpers.EPOCHS), "--no-progress",
        "--runs-dir", str(runs_dir), "--tag", "smoke", "--param", "lr=0.2", "--logger", "tensorboard",
    )  # fmt: skip
    assert result.code == 0, result.err
    run_dir = helpers.only_run_dir(runs_dir)
    return SimpleNamespace(
        result=result, run_dir=run_dir, events=helpers.accumulator(run_dir / "tensorboard"),
        lines=helpers.metric_lines(run_dir), summary=json.loads((run_dir / "summary.json").read_text()),
    )  # fmt: skip


def test_every_series_of_metrics_jsonl_at_its_epochs(cli_run: SimpleNamespace) -> None:
    events, lines = cli_run.events, cli_run.lines
    names = {name for line in lines for name in line if name != "epoch"}
    assert len(names) > 20 and "val/by_group/dense/noun_8/accuracy" in names
    assert names <= set(events.Tags()["scalars"])
    for name in names:
        points = events.Scalars(name)
        assert [p.step for p in points] == [line["epoch"] for line in lines if name in line], name
        assert [p.value for p in points] == pytest.approx([line[name] for line in lines if name in line], rel=1e-6), name


def test_summary_values_at_the_epoch_that_set_them(cli_run: SimpleNamespace) -> None:
    events, summary = cli_run.events, cli_run.summary
    values = summary["values"]
    best = events.Scalars("best/accuracy")
    assert best[-1].value == pytest.approx(summary["best"]["accuracy"])
    assert best[-1].step == summary["best"]["epoch"]
    for name in ("metrics/test/accuracy", "test/by_category/simple/accuracy", "test/by_group/dense/noun_8/count"):
        (point,) = events.Scalars(name)
        assert (point.step, point.value) == (summary["epochs_run"], pytest.approx(values[name]))
    assert not [tag for tag in events.Tags()["scalars"] if tag.startswith("top_epochs/")]  # ranks are text, not curves


def test_hparams_records_compare_runs_by_hyperparameter(cli_run: SimpleNamespace, helpers: SimpleNamespace) -> None:
    records = helpers.hparams_data(cli_run.events)
    assert set(records) == {"experiment", "session_start_info", "session_end_info"}
    start = records["session_start_info"].session_start_info.hparams
    assert start["model/lr"].number_value == pytest.approx(0.2)
    assert start["plugin"].string_value == "bow"
    assert start["epochs"].number_value == 3
    assert start["tag/smoke"].bool_value is True
    experiment = records["experiment"].experiment
    assert {m.name.tag for m in experiment.metric_infos} >= {"metrics/val/accuracy", "metrics/test/accuracy"}
    assert {h.name for h in experiment.hparam_infos} >= {"model/lr", "seed", "batch_size"}
    from tensorboard.plugins.hparams import api_pb2

    assert records["session_end_info"].session_end_info.status == api_pb2.STATUS_SUCCESS


def test_config_and_outcome_as_text(cli_run: SimpleNamespace, helpers: SimpleNamespace) -> None:
    ((step, config),) = helpers.text(cli_run.events, "qa/config")
    assert step == 0
    assert json.loads("\n".join(line[4:] for line in config.splitlines()))["run_id"] == cli_run.run_dir.name
    ((_, outcome),) = helpers.text(cli_run.events, "qa/summary")
    assert "| status | finished |" in outcome
    assert f"| best epoch | {cli_run.summary['best']['epoch']} |" in outcome


def test_an_unwritable_logdir_costs_nothing_but_this_tracker(helpers: SimpleNamespace, tiny_data: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = helpers.run_qa(
        "run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "2", "--no-progress", "--runs-dir", str(tmp_path / "runs"),
        "--logger", "tensorboard", "--logger-param", f"tensorboard.logdir={blocker}",
    )  # fmt: skip
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if "tensorboard" in line]
    assert len(warnings) == 1 and "failed in qa_log_run_start" in warnings[0], result.err
    assert "Traceback" not in result.err
    assert len(helpers.metric_lines(helpers.only_run_dir(tmp_path / "runs"))) == 2


# The bow plugin, killed (SIGKILL, as by the OOM killer) while it saves epoch 3: by then epoch 3's
# metrics are in metrics.jsonl and in the event file, but no checkpoint holds it.
KILLED_BOW = """
import os, signal, time
from pathlib import Path
from qa_core import hookimpl
import qa_bow_numpy.plugin as bow

qa_describe = hookimpl(bow.qa_describe)
qa_build = hookimpl(bow.qa_build)
qa_train_step = hookimpl(bow.qa_train_step)
qa_evaluate = hookimpl(bow.qa_evaluate)
qa_load_checkpoint = hookimpl(bow.qa_load_checkpoint)

@hookimpl
def qa_save_checkpoint(model, path, spec, meta):
    if meta["epoch"] == 3 and not os.environ.get("QA_TEST_NO_KILL"):
        events = Path(path).parents[1] / "tensorboard"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the tracker's thread has flushed epoch 3
            if sum(f.read_bytes().count(b"metrics/train/loss") for f in events.glob("events.*")) >= 3:
                break
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)
    return bow.qa_save_checkpoint(model, path, spec, meta)
"""


def test_a_resumed_run_has_exactly_one_point_per_epoch(helpers: SimpleNamespace, tiny_data: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "qa_killedbow-0.1.dist-info").mkdir(parents=True)
    (site / "killedbow.py").write_text(KILLED_BOW)
    (site / "qa_killedbow-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: qa-killedbow\nVersion: 0.1\n")
    (site / "qa_killedbow-0.1.dist-info" / "entry_points.txt").write_text("[qa]\nkilledbow = killedbow\n")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    runs = tmp_path / "runs"
    common = ("--no-progress", "--logger", "tensorboard", "--log-every-n-steps", "2")
    first = helpers.run_qa("run", "--plugin", "killedbow", "--data", str(tiny_data), "--epochs", "4", "--runs-dir", str(runs), *common, env=env)
    assert first.code == -signal.SIGKILL, first.err
    run_dir = helpers.only_run_dir(runs)
    assert len(helpers.metric_lines(run_dir)) == 3  # epoch 3 was logged, its checkpoint never written
    second = helpers.run_qa("run", "--resume", str(run_dir), "--epochs", "5", *common, env={**env, "QA_TEST_NO_KILL": "1"})
    assert second.code == 0, second.err
    assert "resuming" in second.out and "after epoch 2" in second.out

    events = helpers.accumulator(run_dir / "tensorboard")
    lines = helpers.metric_lines(run_dir)
    assert [line["epoch"] for line in lines] == [1, 2, 3, 4, 5]
    for name in ("metrics/train/loss", "metrics/val/accuracy", "val/by_group/simple/noun_8/accuracy"):
        points = events.Scalars(name)
        assert [p.step for p in points] == [1, 2, 3, 4, 5], name
        assert [p.value for p in points] == pytest.approx([line[name] for line in lines], rel=1e-6), name
    best = events.Scalars("best/accuracy")
    assert len({p.step for p in best}) == len(best)  # no step twice, replayed values not rewritten
    # the step series: in a run of their own, each logged step once, equal to steps.jsonl
    step_lines = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    step_events = helpers.accumulator(run_dir / "tensorboard" / "steps")
    points = step_events.Scalars("steps/train/loss")
    assert len(step_lines) > 5 and [p.step for p in points] == [line["step"] for line in step_lines]
    assert [p.value for p in points] == pytest.approx([line["steps/train/loss"] for line in step_lines], rel=1e-6)
    assert "steps/train/loss" not in events.Tags()["scalars"]

    from tensorboard.plugins.hparams import api_pb2

    records = helpers.hparams_data(events)  # TensorBoard keeps the first record of each: the start's
    assert records["session_start_info"].session_start_info.hparams["epochs"].number_value == 4
    assert records["session_end_info"].session_end_info.status == api_pb2.STATUS_SUCCESS
    configs = helpers.text(events, "qa/config")
    assert [step for step, _ in configs] == [0, 2]  # the first start, and the resume after epoch 2
    assert '"epochs": 5' in configs[1][1] and '"resumed_after_epoch": 2' in configs[1][1]
