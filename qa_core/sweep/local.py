"""The local backend: up to N trials at once, each an ordinary `qa run` subprocess.

A thread per worker starts and waits on one subprocess at a time (the work itself happens in the
subprocesses; the threads only wait). The driver alone writes the manifest. Ctrl-C or SIGTERM: every
running trial gets one SIGINT, saves its last finished epoch and exits 130; trials not started stay
pending; running the same command again resumes them.
"""

from __future__ import annotations

import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable

from .manifest import Manifest, TrialRecord
from .spec import Trial
from .trial import run_trial


class _Stop(BaseException):
    """SIGTERM in the driver, raised in the main thread like KeyboardInterrupt."""


def run_local(manifest: Manifest, todo: list[tuple[TrialRecord, Trial]], workers: int, threads: int, say: Callable[[str], None]) -> bool:
    """Run ``todo`` on ``workers`` processes; True when every trial got to its end, False when
    the sweep was interrupted (the manifest says which trials are resumable)."""
    stop = threading.Event()
    lock = threading.Lock()

    def job(record: TrialRecord, trial: Trial) -> None:
        with lock:
            if stop.is_set():
                return
            record.status, record.attempts = "running", record.attempts + 1
            manifest.save()
        outcome = run_trial(manifest.trial_dir(record), trial.values, threads, f"sweep {manifest.name}, trial {record.id}", stop)
        with lock:
            record.status, record.reason = outcome.status, outcome.reason
            record.run_dir = str(outcome.run_dir) if outcome.run_dir else record.run_dir
            record.seconds = round((record.seconds or 0.0) + outcome.seconds, 3)
            manifest.save()
        say(progress_line(record))

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt if signum == signal.SIGINT else _Stop()

    # SIGINT too, not only Python's default handler: a process started as a background job of a
    # script inherits SIGINT ignored, and Python then installs none; `kill -INT` would leave the
    # sweep running (its trials, like `qa run`, install their own handlers and would stop).
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qa-sweep")
    futures: set[Future] = {pool.submit(job, record, trial) for record, trial in todo}
    try:
        while futures:
            done, futures = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # a bug in the driver itself must not pass silently
        return True
    except (KeyboardInterrupt, _Stop):
        stop.set()
        say(f"stopping: {sum(1 for r, _ in todo if r.status == 'running')} running trial(s) save their last finished epoch ...")
        wait(futures)
        return False
    finally:
        pool.shutdown(wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def progress_line(record: TrialRecord) -> str:
    options = " ".join(f"{k}={v}" for k, v in record.options.items())
    tail = f": {record.reason}" if record.reason else ""
    return f"{record.id} {record.status:<11} {options}  ({record.seconds or 0:.1f}s){tail}"
