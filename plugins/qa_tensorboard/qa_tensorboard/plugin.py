"""The ``tensorboard`` entry point: the tracker hooks the core calls, and nothing heavier.

The writer (tensorboardX) is imported only when a run starts, so ``qa --help`` and ``qa plugins``
stay fast. Faults follow the one contract of every session tracker (:mod:`qa_core.tracking.sessions`):
a hook that raises switches this tracker off for the rest of the run with one line saying why, and
training goes on.
"""

from __future__ import annotations

from typing import Any

from qa_core import Param, PluginInfo, RunContext, hookimpl
from qa_core.tracking.sessions import SessionHooks

from . import NAME

PARAMS = (
    Param("logdir", str, "", "Folder for the event files: DIR/<run_id> [default: the run directory's tensorboard/]."),
)


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="tracker",
        description="Writes TensorBoard event files: every metric per epoch, HParams, best/test values, the config as text",
        params=PARAMS,
        # File I/O and protobuf encoding on a worker thread of its own, never on the training thread.
        threaded=True,
    )


def _open(run: RunContext) -> Any:
    from .session import TensorBoardSession  # the writer is imported only when a run starts

    return TensorBoardSession(run)


hooks = SessionHooks(_open, NAME)
qa_log_run_start = hooks.qa_log_run_start
qa_log_params = hooks.qa_log_params
qa_log_metrics = hooks.qa_log_metrics
qa_log_summary = hooks.qa_log_summary
qa_log_artifact = hooks.qa_log_artifact
qa_log_run_end = hooks.qa_log_run_end
