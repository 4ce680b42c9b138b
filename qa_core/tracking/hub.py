"""The broadcast to every active tracker, with each tracker isolated from the others.

pluggy's own broadcast stops at the first exception, so the hub calls each tracker's hooks on its
own: a tracker that raises is switched off with one warning and the others go on. Trackers whose
PluginInfo says ``threaded`` run on a worker thread of their own, fed by a queue in call order, so
network or disk I/O never happens on the training thread and a hung tracker never blocks an epoch.
At the end of the run the hub waits at most ``QA_TRACKER_TIMEOUT`` seconds (default 30) for the
worker threads to drain, then gives up on the stragglers with a warning.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import sys
import threading
import time
from typing import Any, Callable

from ..types import RunContext
from .sessions import one_line

DEFAULT_TIMEOUT = 30.0
_STOP = object()


def tracker_timeout() -> float:
    try:
        return float(os.environ.get("QA_TRACKER_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


class _Tracker:
    def __init__(self, name: str, callers: dict[str, Callable[..., Any]], threaded: bool, warn: Callable[[str], None]):
        self.name = name
        self.callers = callers
        self.enabled = True
        self.warn = warn
        self.queue: queue.SimpleQueue | None = None
        self.thread: threading.Thread | None = None
        if threaded:
            self.queue = queue.SimpleQueue()
            self.thread = threading.Thread(target=self._work, name=f"qa-tracker-{name}", daemon=True)
            self.thread.start()

    def submit(self, hook: str, kwargs: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self.queue is not None:
            self.queue.put((hook, kwargs))
        else:
            self.invoke(hook, kwargs)

    def invoke(self, hook: str, kwargs: dict[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            self.callers[hook](**kwargs)
        except Exception as exc:  # noqa: BLE001 - a tracker must never stop training
            self.enabled = False
            # The local tracker *is* the run directory's record: never claim it keeps everything.
            keeps = "its files in the run directory stop here" if self.name == "local" else "the local run directory keeps everything"
            self.warn(f"qa: tracker '{self.name}' failed in {hook} ({one_line(exc)}); switched off for the rest of this run ({keeps})")

    def _work(self) -> None:
        assert self.queue is not None
        while True:
            item = self.queue.get()
            if item is _STOP:
                return
            self.invoke(*item)

    def stop(self) -> None:
        if self.queue is not None:
            self.queue.put(_STOP)


class TrackerHub:
    """Calls the tracker hooks of the active trackers; see the module docstring."""

    def __init__(self, manager: Any, names: list[str], run: RunContext, warn: Callable[[str], None] | None = None):
        from ..plugins import TRACKER_HOOKS

        self.run = run
        self.warn = warn or (lambda line: print(line, file=sys.stderr))
        #: The epoch the latest metrics belong to: the step of every summary (0 before epoch 1).
        self.step = run.resumed_after_epoch or 0
        self.trackers: list[_Tracker] = []
        #: Each tracker's own view of the run: the same run (stash included), ``tracker`` = its name.
        self.views: dict[str, RunContext] = {}
        for name in dict.fromkeys(names):  # keep order, drop repeats
            record = manager.tracker(name)
            callers = {hook: manager._caller(name, hook) for hook in TRACKER_HOOKS}
            self.trackers.append(_Tracker(name, callers, record.info.threaded, self.warn))
            self.views[name] = dataclasses.replace(run, tracker=name)

    @property
    def names(self) -> list[str]:
        return [tracker.name for tracker in self.trackers]

    def _broadcast(self, hook: str, **kwargs: Any) -> None:
        # Each tracker gets its own shallow copies: a threaded tracker reads them later, and
        # neither the caller nor another tracker may change them under it.
        for tracker in self.trackers:
            copies = {k: dict(v) if isinstance(v, dict) else v for k, v in kwargs.items()}
            tracker.submit(hook, {**copies, "run": self.views[tracker.name]})

    def run_start(self) -> None:
        self._broadcast("qa_log_run_start")

    def params(self, params: dict[str, Any]) -> None:
        self._broadcast("qa_log_params", params=params)

    def metrics(self, metrics: dict[str, float], step: int) -> None:
        self.step = step
        self._broadcast("qa_log_metrics", metrics=metrics, step=step)

    def step_metrics(self, metrics: dict[str, float], step: int) -> None:
        """A step series (``--log-every-n-steps``): names under ``steps/``, ``step`` = the global
        optimisation step. The summary step stays the epoch."""
        self._broadcast("qa_log_metrics", metrics=metrics, step=step)

    def summary(self, values: dict[str, Any], step: int | None = None) -> None:
        """``step``: the epoch the values belong to; by default the latest epoch logged."""
        self._broadcast("qa_log_summary", values=values, step=self.step if step is None else step)

    def artifact(self, path: Any, name: str) -> None:
        self._broadcast("qa_log_artifact", path=path, name=name)

    def close(self, status: str, summary: dict[str, Any], timeout: float | None = None) -> list[str]:
        """Send run end, then wait (bounded) for threaded trackers. Returns the names given up on."""
        self._broadcast("qa_log_run_end", status=status, summary=summary)
        for tracker in self.trackers:
            tracker.stop()
        deadline = time.monotonic() + (tracker_timeout() if timeout is None else timeout)
        abandoned = []
        for tracker in self.trackers:
            if tracker.thread is not None:
                tracker.thread.join(max(0.0, deadline - time.monotonic()))
                if tracker.thread.is_alive():
                    abandoned.append(tracker.name)
                    self.warn(
                        f"qa: tracker '{tracker.name}' did not finish within {tracker_timeout():g}s "
                        "(QA_TRACKER_TIMEOUT); giving up on it, the local run directory has everything"
                    )
        return abandoned
