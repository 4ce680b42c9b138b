"""Tracker hooks for a tracker built around one session object per run.

Most experiment trackers (Neptune, MLflow, W&B, ...) work the same way: open a run in the
tracker's client when the qa run starts, then send it parameters, metrics, summaries and files,
then close it. Such a plugin writes a session class with ``start``, ``log_params``,
``log_metrics``, ``log_summary``, ``log_artifact`` and ``end``, and takes its hooks from here::

    from qa_core.tracking.sessions import SessionHooks

    def _open(run):                      # import the tracker's client here, not at module import
        from .session import MySession
        return MySession(run)

    hooks = SessionHooks("mytracker", _open)
    qa_log_run_start = hooks.qa_log_run_start
    qa_log_params = hooks.qa_log_params
    qa_log_metrics = hooks.qa_log_metrics
    qa_log_summary = hooks.qa_log_summary
    qa_log_artifact = hooks.qa_log_artifact
    qa_log_run_end = hooks.qa_log_run_end

(plus its own ``qa_describe``). The session lives in ``run.stash[name]``. A session method that
raises switches the tracker off for the rest of the run (the hub's rule for every tracker), so
``start`` raising means no later call reaches the session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from ..hookspecs import hookimpl
from ..types import RunContext


class TrackerSession(Protocol):
    """What :class:`SessionHooks` calls; one object per run."""

    def start(self) -> None: ...

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_summary(self, values: Mapping[str, Any]) -> None: ...

    def log_artifact(self, path: Path, name: str) -> None: ...

    def end(self, status: str, summary: Mapping[str, Any]) -> None: ...


class SessionHooks:
    """The six logging hooks of a tracker, each handing its call to the run's session."""

    def __init__(self, name: str, open_session: Callable[[RunContext], TrackerSession]):
        self.name = name
        self.open_session = open_session

    def _session(self, run: RunContext) -> TrackerSession | None:
        return run.stash.get(self.name)

    @hookimpl
    def qa_log_run_start(self, run: RunContext) -> None:
        session = self.open_session(run)
        run.stash[self.name] = session
        session.start()

    @hookimpl
    def qa_log_params(self, run: RunContext, params: Mapping[str, Any]) -> None:
        session = self._session(run)
        if session is not None:
            session.log_params(params)

    @hookimpl
    def qa_log_metrics(self, run: RunContext, metrics: Mapping[str, float], step: int) -> None:
        session = self._session(run)
        if session is not None:
            session.log_metrics(metrics, step)

    @hookimpl
    def qa_log_summary(self, run: RunContext, values: Mapping[str, Any]) -> None:
        session = self._session(run)
        if session is not None:
            session.log_summary(values)

    @hookimpl
    def qa_log_artifact(self, run: RunContext, path: Path, name: str) -> None:
        session = self._session(run)
        if session is not None:
            session.log_artifact(path, name)

    @hookimpl
    def qa_log_run_end(self, run: RunContext, status: str, summary: Mapping[str, Any]) -> None:
        session = self._session(run)
        if session is not None:
            session.end(status, summary)
