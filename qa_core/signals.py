"""SIGINT and SIGTERM as a request, honoured at a safe point.

The first signal only sets :attr:`StopFlag.signum`; the loop looks at the flag after each batch,
after validation and after the epoch-end observers (:meth:`StopFlag.check`), so a signal never
cuts a checkpoint or a metrics line in half. A second signal means "now": it raises
:class:`Interrupt` wherever the main thread is (the checkpoint protocol in checkpoints.py keeps
even that case resumable), as a second Ctrl-C does in Lightning or Keras.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from typing import Any, Iterator


class Interrupt(BaseException):
    """Raised at a safe point once a signal was received (or at once, for a second signal).
    A BaseException, like KeyboardInterrupt, so no ``except Exception`` in a plugin swallows it."""

    def __init__(self, signum: int, forced: bool = False):
        super().__init__(signum)
        self.signum = signum
        self.forced = forced


@dataclass
class StopFlag:
    signum: int | None = None

    def check(self) -> None:
        """A safe point: stop here if a signal came in."""
        if self.signum is not None:
            raise Interrupt(self.signum)


@contextlib.contextmanager
def deferred_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """For the duration, SIGINT/SIGTERM set ``flag``; a second one raises :class:`Interrupt`."""
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signals only reach the main thread; a run in a worker thread has none
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.signum is not None:
            raise Interrupt(signum, forced=True)
        flag.signum = signum

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
