"""The ``mlflow`` entry point: the tracker hooks the core calls, and nothing heavier.

This module imports neither mlflow nor the session module at import time, so ``qa --help`` and
``qa plugins`` stay fast and work when the client is missing. ``qa_log_run_start`` opens a
:class:`~qa_mlflow.session.MlflowSession` and keeps it in ``run.stash["mlflow"]``; the other
hooks hand their call to it.

Faults follow the core's rule for every tracker: a hook that raises switches this tracker off for
the rest of the run with one warning, and training goes on. The session turns MLflow's errors
into one-line reasons first, so that warning is readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from qa_core import PluginInfo, RunContext, hookimpl

from . import NAME
from .settings import PARAMS, resolve


def _session(run: RunContext) -> Any:
    """The run's session once its MLflow run exists, else None."""
    session = run.stash.get(NAME)
    return session if session is not None and session.run_id is not None else None


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="tracker",
        description="Logs parameters, per-epoch metrics, best/top-k, test results and files to MLflow (a local SQLite store by default, or any tracking server)",
        params=PARAMS,
        # Database and network I/O: on a worker thread of its own, never on the training thread.
        threaded=True,
    )


@hookimpl
def qa_log_run_start(run: RunContext) -> None:
    from .session import MlflowSession

    settings = resolve(run.params_for(NAME), runs_dir=Path(run.run_dir).resolve().parent)
    session = MlflowSession(run, settings)
    run.stash[NAME] = session
    session.start()


@hookimpl
def qa_log_params(run: RunContext, params: Mapping[str, Any]) -> None:
    session = _session(run)
    if session is not None:
        session.log_params(params)


@hookimpl
def qa_log_metrics(run: RunContext, metrics: Mapping[str, float], step: int) -> None:
    session = _session(run)
    if session is not None:
        session.log_metrics(metrics, step)


@hookimpl
def qa_log_summary(run: RunContext, values: Mapping[str, Any]) -> None:
    session = _session(run)
    if session is not None:
        session.log_summary(values)


@hookimpl
def qa_log_artifact(run: RunContext, path: Path, name: str) -> None:
    session = _session(run)
    if session is not None:
        session.log_artifact(path, name)


@hookimpl
def qa_log_run_end(run: RunContext, status: str, summary: Mapping[str, Any]) -> None:
    session = _session(run)
    if session is not None:
        session.end(status, summary)
