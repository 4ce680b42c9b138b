"""`qa evaluate` keeps what it wrote: one folder per scored file (named by the file and a hash of
its content), a new one when it is scored again, and metrics.json says which file it was."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def run_dir(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory, qa) -> Path:
    runs = tmp_path_factory.mktemp("evaluate") / "runs"
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1", "--no-progress", "--runs-dir", str(runs))
    assert result.code == 0, result.err
    (path,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    return path


def evaluate(qa, *args: str) -> Path:
    result = qa("evaluate", *args)
    assert result.code == 0, result.err
    return Path(result.out.split("eval files: ")[1].strip())


def test_two_files_of_one_name_get_two_folders(run_dir: Path, tiny_data: Path, tmp_path: Path, qa) -> None:
    a, b = tmp_path / "a" / "test.jsonl", tmp_path / "b" / "test.jsonl"
    for path, source in ((a, "test.jsonl"), (b, "val.jsonl")):
        path.parent.mkdir()
        shutil.copy(tiny_data / source, path)
    first, second = evaluate(qa, str(run_dir), "--data", str(a)), evaluate(qa, str(run_dir), "--data", str(b))
    digest = hashlib.sha256(a.read_bytes()).hexdigest()
    assert first == run_dir / "eval" / f"test-{digest[:8]}"
    assert second.parent == run_dir / "eval" and second != first and second.name.startswith("test-")
    for folder, path in ((first, a), (second, b)):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["data"] == {"path": str(path.resolve()), "size": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        assert metrics["model"]["run_id"] == run_dir.name and metrics["model"]["checkpoint"].endswith(".npz")
        assert metrics["overall"]["count"] == len(path.read_text().splitlines())
    # the same file again: a third folder, the first one untouched
    before = (first / "metrics.json").read_bytes()
    again = evaluate(qa, str(run_dir), "--data", str(a))
    assert again == first.with_name(first.name + "-2")
    assert (first / "metrics.json").read_bytes() == before


def test_an_out_folder_with_files_is_refused_without_overwrite(run_dir: Path, tiny_data: Path, tmp_path: Path, qa) -> None:
    out = tmp_path / "scores"
    assert evaluate(qa, str(run_dir), "--data", str(tiny_data / "test.jsonl"), "--out", str(out)) == out
    kept = (out / "metrics.json").read_bytes()
    refused = qa("evaluate", str(run_dir), "--data", str(tiny_data / "val.jsonl"), "--out", str(out))
    assert refused.code == 2
    assert refused.err.strip() == f"error: --out {out}: already holds files; choose another folder or give --overwrite"
    assert (out / "metrics.json").read_bytes() == kept
    assert evaluate(qa, str(run_dir), "--data", str(tiny_data / "val.jsonl"), "--out", str(out), "--overwrite") == out
    assert json.loads((out / "metrics.json").read_text())["data"]["path"] == str((tiny_data / "val.jsonl").resolve())
