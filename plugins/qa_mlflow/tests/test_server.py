"""A real ``mlflow server`` on 127.0.0.1, started for this module and always stopped after it.

``qa run`` finds the server through ``MLFLOW_TRACKING_URI`` (MLflow's own variable), and
everything is read back over HTTP with ``MlflowClient``, artifacts through the server's proxy.
Needs the full ``mlflow`` package (``pip install "qa-mlflow[server]"``); skipped without it.
"""

from __future__ import annotations

import filecmp
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest

#: Bounded waits: a cold start on a busy 2-core machine creates the schema and imports Flask.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"mlflow server not healthy within {START_TIMEOUT:g}s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop the server and every process it started (its own session's process group)."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    pytest.importorskip("flask", reason="`mlflow server` needs the full mlflow package: pip install 'qa-mlflow[server]'")
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # One worker and no background job runner (it starts half a dozen more processes).
    env.update({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"})
    log = root / "server.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "artifacts"),
            ],  # fmt: skip
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
            start_new_session=True,  # its own process group: stop() ends the workers with it
        )
    try:
        wait_until_healthy(url, proc, log)
        yield SimpleNamespace(url=url, root=root)
    finally:
        stop(proc)


def test_run_logged_to_a_tracking_server(server: SimpleNamespace, tiny_data: Path, tmp_path: Path, helpers: SimpleNamespace) -> None:
    from mlflow.tracking import MlflowClient

    runs_dir = tmp_path / "runs"
    result = helpers.run_qa(
        "run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", str(helpers.EPOCHS), "--no-progress",
        "--runs-dir", str(runs_dir), "--logger", "mlflow", "--logger-param", "mlflow.experiment=served",
        env={"MLFLOW_TRACKING_URI": server.url},
    )  # fmt: skip
    assert result.code == 0, result.err
    local = helpers.read_local(helpers.only_run_dir(runs_dir))
    assert not (runs_dir / "_mlflow").exists()  # nothing written to the default local store

    client = MlflowClient(tracking_uri=server.url)
    experiment = client.get_experiment_by_name("served")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert (run.info.run_name, run.data.tags["plugin"], run.data.tags["dataset"]) == (local.run_id, "bow", "tiny")
    # the printed line links to the run's page on the server
    assert helpers.mlflow_lines(result.err) == [
        f"qa: mlflow: run '{local.run_id}' in experiment 'served' at {server.url}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}"
    ]

    for name in ("metrics/val/accuracy", "val/by_group/dense/noun_15/accuracy", "val/confusion/tp"):
        history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(line["epoch"], float(line[name])) for line in local.epochs]
    for name, value in local.summary["values"].items():
        if isinstance(value, str):
            assert run.data.tags[name] == value
        else:
            assert run.data.metrics[name] == float(value)
    assert run.data.params["model/lr"] == str(local.config["resolved_params"]["model/lr"])

    # artifacts went through the server's proxy into its --artifacts-destination
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    downloaded = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "download")))
    assert filecmp.cmp(downloaded / "model" / "best.npz", local.run_dir / "checkpoints" / "best.npz", shallow=False)
    assert filecmp.cmp(downloaded / "eval" / "groups.csv", local.run_dir / "eval" / "groups.csv", shallow=False)
    assert list((server.root / "artifacts").rglob("groups.csv"))
