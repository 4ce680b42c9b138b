"""Real runs of the numpy ``bow`` plugin logged to a real local MLflow store, read back with
``MlflowClient`` and checked against what the built-in local tracker wrote for the same run.

One ``qa run --logger mlflow`` through the CLI (module fixture) creates the default store under
its runs directory; the other tests reuse that store, because creating MLflow's SQLite schema
costs several seconds on a busy 2-core machine.
"""

from __future__ import annotations

import filecmp
import json
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

import qa_core
from qa_core.config import RunConfig
from qa_core.trainer import train

EXPERIMENT = "qa-tests"


def find_run(client: MlflowClient, experiment: str, qa_run_id: str):
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id], filter_string=f"tags.`qa.run_id` = '{qa_run_id}'")
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture(scope="module")
def cli_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory, helpers: SimpleNamespace) -> SimpleNamespace:
    runs_dir = tmp_path_factory.mktemp("cli") / "runs"
    result = helpers.run_qa(
        "run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", str(helpers.EPOCHS), "--no-progress",
        "--runs-dir", str(runs_dir), "--tag", "smoke",
        "--logger", "mlflow", "--logger-param", f"mlflow.experiment={EXPERIMENT}",
    )  # fmt: skip
    assert result.code == 0, result.err
    local = helpers.read_local(helpers.only_run_dir(runs_dir))
    store_uri = f"sqlite:///{runs_dir.resolve() / '_mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store_uri)
    run = find_run(client, EXPERIMENT, local.run_id)
    return SimpleNamespace(result=result, runs_dir=runs_dir, local=local, store_uri=store_uri, client=client, run=run)


def test_cli_run_prints_one_line_and_no_mlflow_chatter(cli_run: SimpleNamespace, helpers: SimpleNamespace) -> None:
    result, local = cli_run.result, cli_run.local
    # stderr holds our single "where is it" line: no MLflow, alembic or SQLAlchemy log lines.
    assert helpers.mlflow_lines(result.err) == [
        f"qa: mlflow: run '{local.run_id}' in experiment '{EXPERIMENT}' at {cli_run.store_uri}"
    ], result.err
    assert not [line for line in result.err.splitlines() if "alembic" in line.lower() or "sqlalchemy" in line.lower()]
    # stdout is qa's own: the plugins line names the tracker, and nothing else mentions MLflow
    # (no "View run ... at" lines, no migration logs).
    assert [line for line in result.out.splitlines() if "mlflow" in line.lower()] == [
        line for line in result.out.splitlines() if line.startswith("plugins:")
    ]
    assert "mlflow 0.1.0" in result.out


def test_default_store_lives_under_the_runs_directory(cli_run: SimpleNamespace) -> None:
    store = cli_run.runs_dir.resolve() / "_mlflow"
    assert (store / "mlflow.db").is_file()
    assert cli_run.run.info.artifact_uri.startswith((store / "mlartifacts").as_uri() + "/")
    assert (store / "mlartifacts" / cli_run.run.info.run_id / "artifacts" / "eval" / "groups.csv").is_file()


def test_run_name_status_and_tags(cli_run: SimpleNamespace) -> None:
    run, local = cli_run.run, cli_run.local
    assert run.info.run_name == local.run_id
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["plugin"] == "bow" == local.config["plugin"]
    assert tags["framework"] == "numpy" == local.config["framework"]
    assert tags["dataset"] == "tiny" == local.config["dataset"]
    assert tags["qa_version"] == qa_core.__version__ == local.config["qa_version"]
    assert tags["plugin_version"] == local.config["plugin_version"]
    assert tags["qa.run_dir"] == str(local.run_dir.resolve())
    assert "smoke" in tags  # qa run --tag
    assert tags["status"] == "finished"


def test_params_are_the_resolved_config(cli_run: SimpleNamespace) -> None:
    expected = {name: str(value) for name, value in cli_run.local.config["resolved_params"].items()}
    assert cli_run.run.data.params == expected
    assert cli_run.run.data.params["model/lr"] == str(cli_run.local.config["resolved_params"]["model/lr"])


def test_every_epoch_metric_matches_metrics_jsonl(cli_run: SimpleNamespace) -> None:
    client, run, local = cli_run.client, cli_run.run, cli_run.local
    names = [name for name in local.epochs[0] if name != "epoch"]
    for family in ("metrics/train/", "metrics/val/", "val/confusion/", "val/by_category/", "val/by_noun_count/", "val/by_group/"):
        assert any(name.startswith(family) for name in names), family
    stamps_by_epoch: dict[int, set[int]] = {}
    for name in names:
        history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(line["epoch"], float(line[name])) for line in local.epochs], name
        for point in history:
            stamps_by_epoch.setdefault(point.step, set()).add(point.timestamp)
    # one batch per epoch: every point of an epoch carries the same timestamp
    assert sorted(stamps_by_epoch) == list(range(1, len(local.epochs) + 1))
    assert all(len(stamps) == 1 for stamps in stamps_by_epoch.values())


def test_best_top_k_and_test_results_match_summary_json(cli_run: SimpleNamespace) -> None:
    client, run, local = cli_run.client, cli_run.run, cli_run.local
    values = local.summary["values"]
    assert {"best/epoch", "best/accuracy", "top_epochs/1/accuracy", "metrics/test/accuracy"} <= set(values)
    assert any(name.startswith("test/by_group/") for name in values)
    for name, value in values.items():
        if isinstance(value, str):
            assert run.data.tags[name] == value, name
        else:
            assert run.data.metrics[name] == float(value), name
    # a summary sits at the epoch it belongs to: each new best at its own epoch, so the latest
    # point MLflow shows is the best epoch's accuracy
    best = client.get_metric_history(run.info.run_id, "best/accuracy")
    assert {m.step for m in best} <= {line["epoch"] for line in local.epochs}
    latest = max(best, key=lambda m: (m.step, m.timestamp))
    assert (latest.step, latest.value) == (values["best/epoch"], values["best/accuracy"])
    assert run.data.metrics["run/epochs_run"] == local.summary["epochs_run"] == cli_run.local.epochs[-1]["epoch"]
    assert run.data.metrics["run/seconds"] == local.summary["seconds"]


def test_artifacts_are_the_run_files(cli_run: SimpleNamespace, tmp_path: Path) -> None:
    client, run, local = cli_run.client, cli_run.run, cli_run.local
    downloaded = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path)))
    files = {p.relative_to(downloaded).as_posix() for p in downloaded.rglob("*") if p.is_file()}
    eval_files = {f"eval/{p.name}" for p in (local.run_dir / "eval").iterdir() if p.is_file()}
    assert eval_files >= {"eval/metrics.json", "eval/groups.csv", "eval/confusion_matrix.json"}
    assert files == eval_files | {
        "model/best.npz", "model/best.meta.json", "model/vocab.json", "qa/config.json", "qa/summary.json",
    }  # fmt: skip
    checkpoints = local.run_dir / "checkpoints"
    pairs = [(downloaded / name, local.run_dir / name) for name in eval_files]
    pairs += [
        (downloaded / "model/best.npz", checkpoints / "best.npz"),
        (downloaded / "model/best.meta.json", checkpoints / "best.meta.json"),
        (downloaded / "model/vocab.json", local.run_dir / "vocab.json"),
    ]
    for copy, original in pairs:
        assert filecmp.cmp(copy, original, shallow=False), copy
    summary = json.loads((downloaded / "qa/summary.json").read_text())
    assert (summary["status"], summary["best"], summary["test"]) == ("finished", local.summary["best"], local.summary["test"])
    config = json.loads((downloaded / "qa/config.json").read_text())
    assert config["plugin"] == "bow" and config["epochs"] == local.config["epochs"]


def test_checkpoint_from_mlflow_scores_like_the_run(cli_run: SimpleNamespace, tiny_data: Path, tmp_path: Path) -> None:
    """The model/ artifacts alone are enough for `qa evaluate` (checkpoint + meta + vocabulary)."""
    from qa_core.evaluation import evaluate_saved
    from qa_core.plugins import load_plugins

    model_dir = Path(cli_run.client.download_artifacts(cli_run.run.info.run_id, "model", str(tmp_path)))
    report, _, meta = evaluate_saved(model_dir / "best.npz", tiny_data / "test.jsonl", load_plugins(), out_dir=tmp_path / "eval")
    assert meta["run_id"] == cli_run.local.run_id
    assert report.accuracy == pytest.approx(cli_run.local.summary["test"]["accuracy"], abs=1e-12)


def test_environment_uri_and_options_in_process(
    cli_run: SimpleNamespace, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", cli_run.store_uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    config = RunConfig(
        plugin="bow", data_dir=str(tiny_data), epochs=1, loggers=["mlflow"], runs_dir=str(tmp_path / "runs"),
        progress=False, logger_params={"mlflow": {"run_name": "named-by-option"}},
    )  # fmt: skip
    result = train(config)
    err = capfd.readouterr().err
    assert not (tmp_path / "runs" / "_mlflow").exists()  # MLFLOW_TRACKING_URI replaced the default
    run = find_run(cli_run.client, "from-env", result.run_id)
    assert run.info.run_name == "named-by-option"
    assert run.info.status == "FINISHED"
    assert [(m.step, m.value) for m in cli_run.client.get_metric_history(run.info.run_id, "metrics/val/accuracy")] == [
        (1, pytest.approx(result.summary["best"]["accuracy"]))
    ]
    assert [line for line in err.splitlines() if "mlflow" in line.lower()] == [
        f"qa: mlflow: run 'named-by-option' in experiment 'from-env' at {cli_run.store_uri}"
    ]


def test_unreachable_server_never_stops_training(tiny_data: Path, tmp_path: Path, helpers: SimpleNamespace) -> None:
    # Port 9 on the loopback: nothing listens there, so every request is refused.
    result = helpers.run_qa(
        "run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", str(helpers.EPOCHS), "--no-progress",
        "--runs-dir", str(tmp_path / "runs"), "--logger", "mlflow",
        "--logger-param", "mlflow.tracking_uri=http://127.0.0.1:9",
        env={"QA_TRACKER_TIMEOUT": "10"},
    )  # fmt: skip
    assert result.code == 0, result.err
    helpers.assert_local_run_complete(helpers.read_local(helpers.only_run_dir(tmp_path / "runs")))
    warnings = helpers.mlflow_lines(result.err)
    assert len(warnings) == 1, result.err
    assert "tracker 'mlflow' failed in qa_log_run_start" in warnings[0]
    assert "cannot reach http://127.0.0.1:9 (Connection refused)" in warnings[0]
    assert "switched off" in warnings[0]
    # MLflow's own retries (7, about 4 minutes) are cut to a few seconds: the failure arrives
    # well within QA_TRACKER_TIMEOUT, so the core never has to abandon the tracker.
    assert "did not finish" not in result.err
    assert result.seconds < 60


def test_failure_after_the_run_started_closes_it_as_failed(
    cli_run: SimpleNamespace, tiny_data: Path, tmp_path: Path, capfd: pytest.CaptureFixture, helpers: SimpleNamespace
) -> None:
    """A store that accepts the run but cannot keep its files: the MLflow run is marked FAILED
    with the reason, the tracker goes quiet, and training finishes with its local record."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the artifact folder should be")
    options = {"tracking_uri": cli_run.store_uri, "experiment": "blocked-artifacts", "artifact_location": str(blocker / "art")}
    config = RunConfig(
        plugin="bow", data_dir=str(tiny_data), epochs=2, loggers=["mlflow"], runs_dir=str(tmp_path / "runs"),
        progress=False, logger_params={"mlflow": options},
    )  # fmt: skip
    result = train(config)
    err = capfd.readouterr().err
    helpers.assert_local_run_complete(helpers.read_local(result.run_dir), epochs=2)
    warnings = helpers.mlflow_lines(err)
    assert len(warnings) == 1 and "tracker 'mlflow' failed in qa_log_run_start" in warnings[0], err
    assert "(starting the run: NotADirectoryError" in warnings[0]
    run = find_run(cli_run.client, "blocked-artifacts", result.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["qa.tracking_error"].startswith("starting the run: NotADirectoryError")
    assert not run.data.metrics  # switched off: nothing after the failure reached MLflow


def failing_bow(steps_before_failure: int) -> types.ModuleType:
    """The real ``bow`` model plugin whose training step raises after a number of steps."""
    import qa_bow_numpy.plugin as bow

    plugin = types.ModuleType("qa_test_failing_bow")
    for hook in ("qa_describe", "qa_build", "qa_evaluate", "qa_save_checkpoint", "qa_load_checkpoint"):
        setattr(plugin, hook, getattr(bow, hook))
    steps = [0]

    @qa_core.hookimpl
    def qa_train_step(model, batch):
        steps[0] += 1
        if steps[0] > steps_before_failure:
            raise RuntimeError("the model blew up")
        return bow.qa_train_step(model, batch)

    plugin.qa_train_step = qa_train_step
    return plugin


def test_a_failed_run_is_failed_in_mlflow(cli_run: SimpleNamespace, tiny_data: Path, tmp_path: Path, helpers: SimpleNamespace) -> None:
    from qa_core.plugins import load_plugins

    pm = load_plugins()
    batch_size = 32
    steps_per_epoch = -(-sum(1 for _ in open(tiny_data / "train.jsonl")) // batch_size)
    record = pm.register(failing_bow(steps_per_epoch), "failing-bow")  # fails at epoch 2's first step
    assert record.error is None, record.error
    config = RunConfig(
        plugin="failing-bow", data_dir=str(tiny_data), epochs=3, batch_size=batch_size, loggers=["mlflow"],
        runs_dir=str(tmp_path / "runs"), progress=False,
        logger_params={"mlflow": {"tracking_uri": cli_run.store_uri, "experiment": "failing"}},
    )  # fmt: skip
    with pytest.raises(Exception, match="the model blew up"):
        train(config, pm=pm)
    local = helpers.read_local(helpers.only_run_dir(tmp_path / "runs"))
    assert local.summary["status"] == "failed" and len(local.epochs) == 1
    run = find_run(cli_run.client, "failing", local.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["status"] == "failed"
    history = cli_run.client.get_metric_history(run.info.run_id, "metrics/val/accuracy")
    assert [(m.step, m.value) for m in history] == [(1, local.epochs[0]["metrics/val/accuracy"])]
    assert run.data.metrics["run/epochs_run"] == local.summary["epochs_run"] == 1


def test_a_resumed_run_continues_its_mlflow_run(cli_run: SimpleNamespace, tiny_data: Path, tmp_path: Path, helpers: SimpleNamespace) -> None:
    from qa_core.trainer import config_from_run

    options = {"tracking_uri": cli_run.store_uri, "experiment": "resumed"}
    config = RunConfig(
        plugin="bow", data_dir=str(tiny_data), epochs=1, loggers=["mlflow"], runs_dir=str(tmp_path / "runs"),
        progress=False, logger_params={"mlflow": options},
    )  # fmt: skip
    first = train(config)
    # `qa run --resume RUN_DIR --epochs 3`: the run's own config, more epochs
    train(RunConfig(**{**config_from_run(first.run_dir), "epochs": 3, "progress": False}), resume=first.run_dir)

    local = helpers.read_local(first.run_dir)
    assert [line["epoch"] for line in local.epochs] == [1, 2, 3]
    run = find_run(cli_run.client, "resumed", first.run_id)  # one MLflow run, not two
    assert run.info.status == "FINISHED"
    history = sorted(cli_run.client.get_metric_history(run.info.run_id, "metrics/val/loss"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in history] == [(line["epoch"], line["metrics/val/loss"]) for line in local.epochs]
    # params are write-once in MLflow: the first value stays, the resumed one sits beside it
    assert run.data.params["epochs"] == "1"
    assert run.data.tags["resume/params/epochs"] == "3"
    assert run.data.metrics["best/epoch"] == local.summary["values"]["best/epoch"]


def test_a_read_only_store_is_one_line_that_says_read_only(cli_run: SimpleNamespace, helpers: SimpleNamespace, tiny_data: Path, tmp_path: Path) -> None:
    """The store on a read-only mount (a real one: root ignores file modes): no traceback from
    MLflow's own logger, and qa's warning says what is wrong with the store."""
    import shutil
    import subprocess

    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        shutil.copytree(cli_run.runs_dir / "_mlflow", mount_point / "_mlflow")
        subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)
        uri = f"sqlite:///{mount_point / '_mlflow' / 'mlflow.db'}"
        result = helpers.run_qa(
            "run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1", "--no-progress",
            "--runs-dir", str(tmp_path / "runs"), "--logger", "mlflow", "--logger-param", f"mlflow.tracking_uri={uri}",
        )  # fmt: skip
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
    assert result.code == 0, result.err  # training is not the tracker's to stop
    assert "Traceback" not in result.err and "SQLAlchemy" not in result.err, result.err
    (warning,) = [line for line in result.err.splitlines() if "mlflow" in line]
    assert f"the store {uri} is read-only (attempt to write a readonly database)" in warning, warning
