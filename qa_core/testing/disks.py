"""A real small filesystem for full-disk tests: a tmpfs of a given size, mounted for the duration.

Mounting needs root (or CAP_SYS_ADMIN); where it is refused the test is skipped, saying why.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def small_disk(mount_point: Path, size: str = "1m") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (mount's syntax: "64k", "1m") at ``mount_point``; unmount after."""
    import pytest

    mount_point.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
