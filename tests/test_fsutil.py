"""The atomic-write helper and the bounded reader every qa file goes through."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from qa_core.fsutil import NotAFile, atomic_open, atomic_write, os_reason, read_bytes_bounded, temp_path
from qa_core.errors import PluginError


def test_a_write_replaces_the_target_whole_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    atomic_write(target, "new\n")
    assert target.read_text() == "new\n"
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_failure_inside_the_block_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("half")
            raise RuntimeError("serialising failed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_temporary_names_are_unique_hidden_and_keep_the_suffix(tmp_path):
    first, second = temp_path(tmp_path / "best.weights.h5", ".weights.h5"), temp_path(tmp_path / "best.weights.h5", ".weights.h5")
    assert first != second and first.exists() and second.exists()
    for name in (first.name, second.name):
        assert name.startswith(".best.") and name.endswith(".tmp.weights.h5")


WRITER = """
import sys
from qa_core.fsutil import atomic_write
target, mark = sys.argv[1], sys.argv[2]
for i in range(300):
    atomic_write(target, (mark * 2000 + "\\n") * 20)
"""


def test_two_processes_writing_one_file_never_mix_their_bytes(tmp_path):
    target = tmp_path / "shared.txt"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), mark]) for mark in "ab"]
    seen = set()
    while any(p.poll() is None for p in procs):
        if target.exists():
            text = target.read_text()
            seen.add(text[:1])
            assert text in (("a" * 2000 + "\n") * 20, ("b" * 2000 + "\n") * 20)
    assert [p.wait() for p in procs] == [0, 0]
    assert target.read_text() in (("a" * 2000 + "\n") * 20, ("b" * 2000 + "\n") * 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.txt"]


def test_the_bounded_reader_refuses_fifos_devices_directories_and_oversized_files(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NotAFile, match="FIFO .* that nothing writes to"):
        read_bytes_bounded(fifo, 100)  # a plain open() would block forever
    # a pipe with a writer is read to its end (`qa run --print-config | qa run --config /dev/stdin`)
    proc = subprocess.run([sys.executable, "-c", "import sys; from qa_core.fsutil import read_bytes_bounded; print(read_bytes_bounded('/dev/stdin', 100))"],
                          input=b"x" * 10, capture_output=True, timeout=30)
    assert proc.stdout.strip() == b"b'xxxxxxxxxx'", proc.stderr
    proc = subprocess.run([sys.executable, "-c", "import sys; from qa_core.fsutil import read_bytes_bounded; read_bytes_bounded('/dev/stdin', 100)"],
                          input=b"x" * 101, capture_output=True, timeout=30)
    assert b"over the 100-byte limit" in proc.stderr
    with pytest.raises(NotAFile, match="character device"):
        read_bytes_bounded("/dev/zero", 100)
    with pytest.raises(NotAFile, match="is a directory"):
        read_bytes_bounded(tmp_path, 100)
    with pytest.raises(NotAFile, match="not found"):
        read_bytes_bounded(tmp_path / "missing", 100)
    big = tmp_path / "big"
    with open(big, "wb") as handle:
        handle.truncate(101)  # sparse: nothing is read to find out
    with pytest.raises(NotAFile, match="101 bytes, over the 100-byte limit"):
        read_bytes_bounded(big, 100)
    (tmp_path / "ok").write_bytes(b"x" * 100)
    assert read_bytes_bounded(tmp_path / "ok", 100) == b"x" * 100


def test_the_reason_of_an_os_error_is_found_inside_a_plugin_error():
    full = OSError(28, "No space left on device")
    assert os_reason(PluginError("bow", "qa_save_checkpoint", full)) == "No space left on device"
    assert os_reason(full) == "No space left on device"
    assert os_reason(ValueError("bad")) == "bad"


def test_written_files_get_the_usual_permissions_not_private_temp_ones(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "data.jsonl", "x\n")
    finally:
        os.umask(old)
    assert (tmp_path / "data.jsonl").stat().st_mode & 0o777 == 0o644
