"""SIGINT and SIGTERM as a request, honoured at a safe point.

The first signal only sets :attr:`StopFlag.signum`; the loop looks at the flag after each batch,
after validation and after the epoch-end observers (:meth:`StopFlag.check`), so a signal never
cuts a checkpoint or a metrics line in half. A second SIGINT means "now": it raises
:class:`Interrupt` wherever the main thread is (the checkpoint protocol in checkpoints.py keeps
even that case resumable), as a second Ctrl-C does in Lightning or Keras. A SIGTERM after the
first signal changes nothing: it is a process manager's request to stop, repeated or relayed
(torchrun sends it to the ranks still running when one has left; a scheduler signals torchrun
and the ranks alike), and what such a manager sends when it stops waiting is SIGKILL.

In a data-parallel run the loop sets :attr:`StopFlag.agree` for the epochs: then a safe point
stops when *any* rank got a signal, every rank at the same point (qa_core/distributed.py,
``agreed_stop``), and the flag itself stays this rank's own, so the same Ctrl-C reaching this rank
later (torchrun passes it on) counts as the first signal, not a second.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator


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
    #: This rank's signal (or None) -> the one every rank stops for (or None); None: no peers.
    agree: Callable[[int | None], int | None] | None = None

    def check(self) -> None:
        """A safe point: stop here if a signal came in (to any rank, when ranks agree)."""
        signum = self.signum if self.agree is None else self.agree(self.signum)
        if signum is not None:
            raise Interrupt(signum)


@contextlib.contextmanager
def deferred_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """For the duration, SIGINT/SIGTERM set ``flag``; a second SIGINT raises :class:`Interrupt`."""
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signals only reach the main thread; a run in a worker thread has none
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.signum is None:
            flag.signum = signum
        elif signum == signal.SIGINT:
            raise Interrupt(signum, forced=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def await_signal(flag: StopFlag, seconds: float) -> int | None:
    """This process' signal, given up to ``seconds`` to arrive (one already sent runs its handler
    while the main thread sleeps); None if none came."""
    deadline = time.monotonic() + seconds
    while flag.signum is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return flag.signum
