"""Safe file writing and reading: the one place qa writes a file atomically or reads a bounded one.

Every file qa writes (config.json, summary.json, eval/, checkpoint metas, data files, the report,
plots) goes through :func:`atomic_write` or :func:`atomic_open`: the bytes go to a temporary file
*with a unique name* in the target's own directory, are flushed and fsynced, and the file is then
renamed over the target. So a reader sees the old file or the new one, never half of one; two
processes writing the same target never write into one temporary file (the last rename wins, and
each winner is a whole file); and a failed write (a full disk, a signal) removes its temporary file
before the error goes on.

Temporary names are ``.<name>.<unique>.tmp<suffix>``: hidden, recognisable (``.*.tmp*`` is what a
resume sweeps up after a ``kill -9``), and ending in the target's suffix for writers (numpy,
Keras) that decide the format from it.

:func:`read_bytes_bounded` refuses what is not a regular file (a FIFO would block forever,
``/dev/zero`` would never end) and anything over a size limit, before reading it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import IO, Any, Iterator

def temp_path(path: str | os.PathLike[str], suffix: str = "") -> Path:
    """A fresh, unique, empty temporary file beside ``path`` (created, so no one else gets it).
    ``suffix`` is kept at the end of the name (``.npz``, ``.weights.h5``)."""
    path = Path(path)
    stem = path.name[: -len(suffix)] if suffix and path.name.endswith(suffix) else path.name
    for _ in range(100):
        candidate = path.with_name(f".{stem}.{secrets.token_hex(4)}.tmp{suffix}")
        try:
            # O_EXCL: the name is ours alone. Mode 0o666 through the umask, as open() would give
            # (mkstemp's 0o600 would make every data file and run file private).
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None) -> Iterator[IO[Any]]:
    """``with atomic_open(path) as handle: handle.write(...)``: the target appears whole when the
    block ends without an error, and is left as it was (no temporary file beside it) otherwise."""
    path = Path(path)
    binary = "b" in mode
    tmp = temp_path(path)
    try:
        with open(tmp, "wb" if binary else "w", encoding=None if binary else encoding, newline=None if binary else newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    _fsync_directory(path.parent)


def atomic_write(path: str | os.PathLike[str], data: str | bytes, encoding: str = "utf-8", newline: str | None = "\n") -> Path:
    """Write ``data`` (text or bytes) to ``path`` atomically; returns ``path``."""
    path = Path(path)
    if isinstance(data, bytes):
        with atomic_open(path, "wb") as handle:
            handle.write(data)
    else:
        with atomic_open(path, "w", encoding=encoding, newline=newline) as handle:
            handle.write(data)
    return path


def commit(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Rename a finished temporary file (from :func:`temp_path`) over ``path``, fsynced first."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_directory(Path(path).parent)
    return Path(path)


@contextlib.contextmanager
def directory_lock(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on ``directory`` (created if missing) while writing a *set* of files
    into it, so two writers of one set (two ``qa data generate --out D``, two runs generating the
    default dataset) do not interleave: each set on disk comes whole from one writer. Blocks while
    another process holds it; the kernel drops the lock when its holder dies, so nothing goes stale.
    The lock is ``flock`` on the directory itself: no lock file is left in a data folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: each file is still written atomically
        yield directory
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield directory
    finally:
        os.close(fd)  # closing releases the lock


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable. Best effort: not every platform or filesystem allows it."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC, EDQUOT or EFBIG: the write failed for lack of room, not for a bug."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG)


def os_reason(exc: BaseException) -> str:
    """The short reason of an OSError ('No space left on device'), else the exception's text.
    Works through a wrapper that keeps the original as ``.error`` (PluginError) or ``__cause__``."""
    seen = exc
    for _ in range(3):
        if isinstance(seen, OSError):
            return seen.strerror or str(seen)
        inner = getattr(seen, "error", None) or seen.__cause__
        if not isinstance(inner, BaseException):
            break
        seen = inner
    return str(exc)


class NotAFile(Exception):
    """What :func:`read_bytes_bounded` refuses; ``reason`` completes 'PATH: file: <reason>'."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_bytes_bounded(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of a *regular* file of at most ``limit`` bytes. Raises NotAFile for a missing
    file, a directory, a FIFO, a device or socket, or a file over the limit (checked before
    reading, and again while reading, for a file that grows); OSError for other read failures."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise NotAFile("not found") from None
    except NotADirectoryError:
        raise NotAFile("not found (a parent is not a directory)") from None
    if stat.S_ISDIR(info.st_mode):
        raise NotAFile("is a directory, expected a file")
    if not stat.S_ISREG(info.st_mode):
        raise NotAFile(f"is a {_kind(info.st_mode)}, not a regular file; refused (it could block or never end)")
    if info.st_size > limit:
        raise NotAFile(f"{info.st_size:,} bytes, over the {limit:,}-byte limit")
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotAFile(f"over the {limit:,}-byte limit")
    return data


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"
