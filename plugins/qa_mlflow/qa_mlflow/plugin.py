"""The ``mlflow`` entry point: the tracker hooks the core calls, and nothing heavier.

This module imports neither mlflow nor the session module at import time, so ``qa --help`` and
``qa plugins`` stay fast and work when the client is missing. ``qa_log_run_start`` opens a
:class:`~qa_mlflow.session.MlflowSession` and keeps it in ``run.stash["mlflow"]``; the other
hooks hand their call to it.

Faults follow the one contract of every session tracker (:mod:`qa_core.tracking.sessions`): a
hook that raises switches this tracker off for the rest of the run with one line saying why, and
training goes on.
"""

from __future__ import annotations

from typing import Any

from qa_core import PluginInfo, RunContext, hookimpl
from qa_core.tracking.sessions import SessionHooks

from . import NAME
from .settings import PARAMS


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="tracker",
        description="Logs parameters, per-epoch metrics, best/top-k, test results and files to MLflow (a local SQLite store by default, or any tracking server)",
        params=PARAMS,
        # Database and network I/O: on a worker thread of its own, never on the training thread.
        threaded=True,
    )


def _open(run: RunContext) -> Any:
    from .session import MlflowSession  # the client is imported only when a run starts

    return MlflowSession(run)


# run start opens the session and keeps it in run.stash["mlflow"]; the other hooks hand it their call
hooks = SessionHooks(_open, NAME)
qa_log_run_start = hooks.qa_log_run_start
qa_log_params = hooks.qa_log_params
qa_log_metrics = hooks.qa_log_metrics
qa_log_summary = hooks.qa_log_summary
qa_log_artifact = hooks.qa_log_artifact
qa_log_run_end = hooks.qa_log_run_end
