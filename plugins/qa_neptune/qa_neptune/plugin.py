"""The ``neptune`` entry point: the tracker hooks the core calls, and nothing heavier.

This module imports neither neptune nor the session module at import time, so ``qa --help`` and
``qa plugins`` stay fast and work when the client is missing. Each hook hands its call to the
run's :class:`~qa_neptune.session.NeptuneSession`, kept in ``run.stash["neptune"]`` from
``qa_log_run_start`` on; the session never raises into the core.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from qa_core import PluginInfo, RunContext, hookimpl

from . import NAME
from .settings import PARAMS


def _session(run: RunContext) -> Any:
    return run.stash.get(NAME)


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="tracker",
        description="Logs parameters, per-epoch metrics, best/top-k, test results and files to Neptune (offline or a self-hosted server)",
        params=PARAMS,
        # Network and disk I/O: run on a worker thread of its own, never on the training thread.
        threaded=True,
    )


@hookimpl
def qa_log_run_start(run: RunContext) -> None:
    from .session import NeptuneSession

    session = NeptuneSession(run)
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
