"""Shared pieces of the mlflow tracker's tests: tiny data, the ``qa`` CLI as a subprocess, and
readers for what a run left in its run directory and in an MLflow store.

Everything is real: the numpy ``bow`` model plugin, MLflow's SQLite store, ``MlflowClient`` for
reading back, and (in test_server.py) an ``mlflow server`` process on 127.0.0.1. No test reaches
a host outside this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

QA = [sys.executable, "-m", "qa_core.cli"]
EPOCHS = 3


@dataclass
class Completed:
    code: int
    out: str
    err: str
    seconds: float


def run_qa(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120) -> Completed:
    """``qa ARGS`` in a fresh process, with MLflow's environment cleared unless ``env`` sets it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "QA_"))}
    full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    started = time.monotonic()
    proc = subprocess.run([*QA, *args], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return Completed(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


@dataclass
class LocalRun:
    """What the built-in local tracker wrote: the reference every other tracker must match."""

    run_dir: Path
    epochs: list[dict[str, Any]]  # metrics.jsonl, one dict per epoch
    summary: dict[str, Any]  # summary.json
    config: dict[str, Any]  # config.json

    @property
    def run_id(self) -> str:
        return self.run_dir.name


def read_local(run_dir: Path) -> LocalRun:
    run_dir = Path(run_dir)
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((run_dir / "summary.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    return LocalRun(run_dir, epochs, summary, config)


def only_run_dir(runs_dir: Path) -> Path:
    """The one run directory under ``runs_dir`` (the MLflow store's ``_mlflow`` is not one)."""
    found = [p for p in Path(runs_dir).iterdir() if p.is_dir() and not p.name.startswith("_")]
    assert len(found) == 1, found
    return found[0]


def assert_local_run_complete(local: LocalRun, epochs: int = EPOCHS) -> None:
    """The local record a failing tracker must never cost."""
    assert [line["epoch"] for line in local.epochs] == list(range(1, epochs + 1))
    assert local.summary["status"] == "finished"
    assert "metrics/test/accuracy" in local.summary["values"]
    assert list((local.run_dir / "checkpoints").glob("best*"))
    assert (local.run_dir / "eval" / "metrics.json").is_file()


def mlflow_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "mlflow" in line.lower()]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few hundred generated records covering every category x noun-count cell."""
    from qa_core.testing import write_tiny_data

    return write_tiny_data(tmp_path_factory.mktemp("data") / "tiny", {"train": 270, "val": 90, "test": 90}, seed=3, noun_counts=None)


@pytest.fixture(scope="session")
def helpers() -> SimpleNamespace:
    """The helpers above, for test modules (conftest is not importable under importlib mode)."""
    return SimpleNamespace(
        EPOCHS=EPOCHS,
        run_qa=run_qa,
        read_local=read_local,
        only_run_dir=only_run_dir,
        assert_local_run_complete=assert_local_run_complete,
        mlflow_lines=mlflow_lines,
    )
