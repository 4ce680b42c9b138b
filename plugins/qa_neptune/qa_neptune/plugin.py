"""The ``neptune`` entry point: the tracker hooks the core calls, and nothing heavier.

This module imports neither neptune nor the session module at import time, so ``qa --help`` and
``qa plugins`` stay fast and work when the client is missing. Each hook hands its call to the
run's :class:`~qa_neptune.session.NeptuneSession`, kept in ``run.stash["neptune"]`` from
``qa_log_run_start`` on; a failure is raised to the core as one line (:mod:`qa_core.tracking.sessions`).
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
        description="Logs parameters, per-epoch metrics, best/top-k, test results and files to Neptune (offline or a self-hosted server)",
        params=PARAMS,
        # Network and disk I/O: run on a worker thread of its own, never on the training thread.
        threaded=True,
    )


def _open(run: RunContext) -> Any:
    from .session import NeptuneSession  # the client is imported only when a run starts

    return NeptuneSession(run)


# run start opens the session and keeps it in run.stash["neptune"]; the other hooks hand it their call
hooks = SessionHooks(_open, NAME)
qa_log_run_start = hooks.qa_log_run_start
qa_log_params = hooks.qa_log_params
qa_log_metrics = hooks.qa_log_metrics
qa_log_summary = hooks.qa_log_summary
qa_log_artifact = hooks.qa_log_artifact
qa_log_run_end = hooks.qa_log_run_end
