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

:func:`read_bytes_bounded` refuses devices (``/dev/zero`` would never end), FIFOs that nothing
writes to (they would block forever) and anything over a size limit; pipes with a writer are read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
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
            code = seen.errno
            if not code:  # h5py: errno None, and "errno = 28" inside a many-line message
                found = re.search(r"errno = (\d+)", str(seen))
                code = int(found.group(1)) if found else None
            if code:
                return seen.strerror if seen.strerror and "\n" not in seen.strerror else os.strerror(code)
            return _first_line(seen.strerror or str(seen))
        inner = getattr(seen, "error", None) or seen.__cause__
        if not isinstance(inner, BaseException):
            break
        seen = inner
    return _first_line(str(exc))


def _first_line(text: str, limit: int = 200) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def no_space_left(directory: str | os.PathLike[str]) -> bool:
    """Whether the filesystem holding ``directory`` has no free blocks left: how a full disk is
    recognised behind a library's own error (torch says 'unexpected pos 128 vs 0')."""
    try:
        return os.statvfs(directory).f_bavail == 0
    except (OSError, AttributeError):
        return False


class NotAFile(Exception):
    """What :func:`read_bytes_bounded` refuses; ``reason`` completes 'PATH: file: <reason>'."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_bytes_bounded(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of a file of at most ``limit`` bytes. A regular file is checked by size before it
    is read; a pipe (``/dev/stdin``, ``<(...)``, a FIFO) is read to its end, but a FIFO that no one
    writes to is not waited for. Raises NotAFile for a missing file, a directory, a device or a
    socket (``/dev/zero`` would never end), a FIFO without a writer, or more than ``limit`` bytes;
    OSError for other read failures."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise NotAFile("not found") from None
    except NotADirectoryError:
        raise NotAFile("not found (a parent is not a directory)") from None
    if stat.S_ISDIR(info.st_mode):
        raise NotAFile("is a directory, expected a file")
    if stat.S_ISFIFO(info.st_mode):
        data = _read_pipe(path, limit)
        if not data:
            raise NotAFile("is a FIFO (named pipe) that nothing writes to; not waited for")
    elif not stat.S_ISREG(info.st_mode):
        raise NotAFile(f"is a {_kind(info.st_mode)}, not a regular file; refused (it could block or never end)")
    elif info.st_size > limit:
        raise NotAFile(f"{info.st_size:,} bytes, over the {limit:,}-byte limit")
    else:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotAFile(f"over the {limit:,}-byte limit")
    return data


def _read_pipe(path: Path, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes of a pipe. Opened non-blocking, so a FIFO without a writer does
    not hang the open (it then reads as empty); then blocking, to wait for a writer's data."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        try:
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


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


def output_dir_problem(path: str | os.PathLike[str]) -> str | None:
    """Why files could not be created in folder ``path`` (made if missing), or None. Creates
    nothing: the nearest existing folder must be a folder, writable, not on a read-only mount."""
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        return "is a file, not a folder" if existing == path else f"{existing} is a file, not a folder"
    if _read_only_mount(existing):
        return f"{existing} is on a read-only file system"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable (permission denied)"
    return None


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1))
    except (OSError, AttributeError):
        return False


def available_memory() -> int | None:
    """Bytes of memory this process could still allocate: MemAvailable (Linux), else the
    physical memory; None when the platform does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
