"""The base for trackers built around one session object per run (Neptune, MLflow, TensorBoard, ...).

Most experiment trackers work the same way: open a run in the tracker's client when the qa run
starts, send it parameters, metrics, summaries and files, then close it. Such a plugin subclasses
:class:`TrackerSession`, overrides the calls it needs, and takes its six logging hooks from
:class:`SessionHooks`::

    from qa_core import Param, PluginInfo, SessionHooks, TrackerSession, hookimpl

    class MySession(TrackerSession):
        def start(self):                 # import the tracker's client here, not at module import
            import myclient
            self.client = myclient.open(self.options["url"])     # typed, defaults filled in
        def log_metrics(self, metrics, step):
            self.client.log(dict(metrics), step=step)
        def end(self, status, summary):
            self.client.close(status)

    @hookimpl
    def qa_describe():
        return PluginInfo(kind="tracker", params=(Param("url", str, "http://localhost"),))

    hooks = SessionHooks(MySession)
    qa_log_run_start = hooks.qa_log_run_start
    qa_log_params = hooks.qa_log_params
    qa_log_metrics = hooks.qa_log_metrics
    qa_log_summary = hooks.qa_log_summary
    qa_log_artifact = hooks.qa_log_artifact
    qa_log_run_end = hooks.qa_log_run_end

**The error contract** (one for every tracker): a session method raises when something goes wrong.
:class:`SessionHooks` turns the exception into a :class:`TrackingError` whose message is one line,
secrets redacted (``"logging epoch 3: ConnectionError: server went away"``), after giving the
session :meth:`TrackerSession.abort` to tidy up (mark its remote run failed, stop a client
thread). The core's tracker hub then prints that line once and switches the tracker off for the
rest of the run; training and the local run directory never notice. A session never prints its own
failure and never swallows one.

Other lines a session wants the user to see (where the run can be viewed, how to upload an offline
run) go through :meth:`TrackerSession.say`: prefixed with the tracker's name, redacted, and written
so that they never tear a progress bar.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..config import REDACTED, redact_url
from ..hookspecs import hookimpl
from ..types import RunContext

#: The longest reason a tracker failure is reported with.
MAX_REASON = 300
#: Secrets shorter than this are not searched for: replacing "ab" everywhere would garble text.
MIN_SECRET_LENGTH = 3

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: Client banners (neptune's "----NeptuneException----") are decoration, not the reason.
_BANNER = re.compile(r"^[-=*_]{3,}.*[-=*_]{3,}$|^[-=*_]{3,}$")


class TrackingError(Exception):
    """Why a tracker stopped, in one line that is safe to print; the hub switches the tracker off."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret in ``secrets`` and any password inside a URL replaced by
    ``<redacted>``. The one redaction every tracker uses."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return redact_url(text)


def one_line(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """``Type: first line`` of an exception, redacted and at most MAX_REASON characters.

    Client exceptions are often multi-line, coloured banners: colour codes and banner lines are
    dropped and the first line that says something is kept. A :class:`TrackingError` is already a
    reason and keeps no type name."""
    text = _ANSI.sub("", str(exc))
    first = next((line.strip() for line in text.splitlines() if line.strip() and not _BANNER.match(line.strip())), "")
    if isinstance(exc, TrackingError):
        reason = first or "failed"
    else:
        reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    reason = redact(reason, secrets)
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


class TrackerSession:
    """One qa run's record in a tracker. Subclass it and override the calls you need.

    Attributes available in every method:
        context: the :class:`~qa_core.types.RunContext` of the run.
        name: the tracker's name (its entry-point name: ``--logger NAME``).
        options: the tracker's ``--logger-param NAME.KEY=VALUE`` options, converted by the core to
            the types its ``Param``s declare, checked, and with every default filled in.

    Every method may raise; see the module docstring for what happens then.
    """

    def __init__(self, context: RunContext):
        self.context = context
        self.name: str = context.tracker or ""
        self.options: dict[str, Any] = context.options

    # -- the calls, in the order they come --------------------------------------------------

    def start(self) -> None:
        """Open the tracker's run (``qa_log_run_start``). ``context.resumed_after_epoch`` is set
        on ``qa run --resume``: continue the earlier record of the same ``context.run_id``."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Hyperparameters (``model/<name>``) and settings, once (``qa_log_params``)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """One point per series, ``step`` = the epoch (``qa_log_metrics``)."""

    def log_summary(self, values: Mapping[str, Any], step: int) -> None:
        """Single values that replace earlier ones; ``step`` = the latest epoch logged (``qa_log_summary``)."""

    def log_artifact(self, path: Path, name: str) -> None:
        """A file of the run (``qa_log_artifact``)."""

    def end(self, status: str, summary: Mapping[str, Any]) -> None:
        """Close and flush, whatever happened (``qa_log_run_end``); status finished/failed/interrupted."""

    # -- failure, secrets, console -----------------------------------------------------------

    def secrets(self) -> Iterable[str]:
        """Strings that must never be printed (tokens, passwords); redacted from every reason
        and every :meth:`say` line."""
        return ()

    def describe(self, exc: BaseException) -> str:
        """The one-line reason for a client exception; override to say it more plainly (a
        network error as "cannot reach URL"). Redaction is applied afterwards either way."""
        return one_line(exc)

    def abort(self, reason: str) -> None:
        """Called once, before the tracker is switched off for ``reason``: close the remote run
        honestly (mark it failed), stop client threads. Its own errors are ignored."""

    def say(self, line: str) -> None:
        """One line for the user on stderr: ``qa: NAME: line``, secrets redacted."""
        from .. import console  # the progress-bar-safe writer; imported late to keep `import qa_core` light

        console.warn(redact(f"qa: {self.name}: {line}", self.secrets()))


class SessionHooks:
    """The six logging hooks of a tracker, each handing its call to the run's session.

    ``open_session(run)`` makes the session (a :class:`TrackerSession` subclass, or any callable
    returning one); it is kept in ``run.stash[name]`` where ``name`` is the tracker's entry-point
    name, which the core hands over as ``run.tracker``. ``name`` may be given for a plugin
    registered without an entry point."""

    def __init__(self, open_session: Callable[[RunContext], TrackerSession], name: str | None = None):
        self.open_session = open_session
        self.name = name

    def _key(self, run: RunContext) -> str:
        return self.name or run.tracker or ""

    def _call(self, run: RunContext, what: str, method: str, *args: Any) -> None:
        session = run.stash.get(self._key(run))
        if session is None:  # switched off earlier; the hub stops calling, this is belt and braces
            return
        try:
            getattr(session, method)(*args)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one TrackingError
            raise self._failure(session, what, exc) from exc

    @staticmethod
    def _failure(session: TrackerSession, what: str, exc: Exception) -> TrackingError:
        secrets = list(session.secrets())
        if isinstance(exc, TrackingError):
            reason = one_line(exc, secrets)
        else:
            reason = redact(f"{what}: {session.describe(exc)}", secrets)
            reason = one_line(TrackingError(reason))
        try:
            session.abort(reason)
        except Exception:  # noqa: BLE001,S110 - tidying up after a failure must not hide it
            pass
        return TrackingError(reason)

    @hookimpl
    def qa_log_run_start(self, run: RunContext) -> None:
        try:
            session = self.open_session(run)
        except TrackingError:
            raise
        except Exception as exc:  # noqa: BLE001 - the same contract as every other call
            raise TrackingError(one_line(TrackingError(f"starting the run: {one_line(exc)}"))) from exc
        if not session.name:
            session.name = self._key(run)
        run.stash[self._key(run)] = session
        self._call(run, "starting the run", "start")

    @hookimpl
    def qa_log_params(self, run: RunContext, params: Mapping[str, Any]) -> None:
        self._call(run, "logging parameters", "log_params", params)

    @hookimpl
    def qa_log_metrics(self, run: RunContext, metrics: Mapping[str, float], step: int) -> None:
        self._call(run, f"logging epoch {step}", "log_metrics", metrics, step)

    @hookimpl
    def qa_log_summary(self, run: RunContext, values: Mapping[str, Any], step: int) -> None:
        self._call(run, "logging summary values", "log_summary", values, step)

    @hookimpl
    def qa_log_artifact(self, run: RunContext, path: Path, name: str) -> None:
        self._call(run, f"uploading {name}", "log_artifact", path, name)

    @hookimpl
    def qa_log_run_end(self, run: RunContext, status: str, summary: Mapping[str, Any]) -> None:
        self._call(run, "closing the run", "end", status, summary)
