"""One process per run directory: ``<run_dir>/.lock``.

The lock is an ``flock`` on that file, so the kernel releases it when the holder dies, kill -9
included: a stale lock can never block a resume. The file's content (pid, host, start time) is
only for messages: a second process is told who holds the run, and a process that takes over a
lock whose holder died without releasing it says so.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from .errors import ConfigError

LOCK_NAME = ".lock"


class RunLock:
    def __init__(self, run_dir: Path, fd: int, previous: dict | None):
        self.run_dir = run_dir
        self.fd: int | None = fd
        #: What the file said when we took it: set when an earlier holder died without releasing.
        self.previous = previous

    @classmethod
    def acquire(cls, run_dir: Path, option: str = "--resume") -> "RunLock":
        path = Path(run_dir) / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}" if holder else "another process"
            since = f" since {holder['started']}" if holder.get("started") else ""
            raise ConfigError(f"{option} {run_dir}: the run directory is in use by {who}{since}; wait for it to end or stop it") from None
        previous = _read(fd) or None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)
        return cls(Path(run_dir), fd, previous)

    def stale_note(self) -> str | None:
        if not self.previous:
            return None
        return (
            f"qa: took over the lock of {self.run_dir} left by pid {self.previous.get('pid', '?')} on "
            f"{self.previous.get('host', '?')}, which is no longer running"
        )

    def release(self) -> None:
        """Empty the file (an empty lock file means "released cleanly"), then unlock. The file
        stays: deleting a lock file others may have open would let two processes hold it."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            pass
        os.close(self.fd)  # closing the last descriptor releases the flock
        self.fd = None


def _read(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
