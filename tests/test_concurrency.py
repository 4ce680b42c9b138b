"""Two real `qa` processes writing one shared output at once: the default dataset under
runs/_data, `qa data generate --out D`, `qa data split --out D`. Each file on disk must be whole and
each set must come from one writer; no temporary file may stay behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

QA = [sys.executable, "-m", "qa_core.cli"]


def run_both(*commands: list[str], cwd=None) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("QA_TRACEBACK", None)
    procs = [subprocess.Popen([*QA, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in commands]
    results = []
    for proc, args in zip(procs, commands):
        out, err = proc.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return results


def no_temp_files(directory) -> list[str]:
    return [p.name for p in directory.rglob("*") if ".tmp" in p.name]


def file_set(directory, names) -> tuple[bytes, ...]:
    return tuple((directory / name).read_bytes() for name in names)


SPLITS = ("train.jsonl", "val.jsonl", "test.jsonl")


@pytest.fixture(scope="module")
def references(tmp_path_factory, qa):
    """What seeds 1 and 2 generate, each alone."""
    root = tmp_path_factory.mktemp("refs")
    sets = {}
    for seed in (1, 2):
        result = qa("data", "generate", "--out", str(root / str(seed)), "--seed", str(seed), "--no-progress")
        assert result.code == 0, result.err
        sets[seed] = file_set(root / str(seed), SPLITS)
    return root, sets


# One seed twice: both finish generating at the same moment, so their writes overlap (the old fixed
# temporary name then made one rename fail or one file hold both). Two seeds: the set must not mix.
@pytest.mark.parametrize("seeds", [(1, 1), (1, 1), (1, 2)])
def test_two_data_generates_into_one_folder_leave_one_whole_set(seeds, references, tmp_path):
    _, sets = references
    out = tmp_path / "G"
    results = run_both(*(["data", "generate", "--out", str(out), "--seed", str(seed), "--no-progress"] for seed in seeds))
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert file_set(out, SPLITS) in (sets[1], sets[2])  # every file whole, all three from one seed
    assert no_temp_files(out) == []


def test_two_data_splits_into_one_folder_leave_one_whole_pair(references, tmp_path, qa):
    root, _ = references
    source = root / "1" / "train.jsonl"
    expected = {}
    for seed in (1, 2):
        result = qa("data", "split", str(source), "--out", str(tmp_path / f"ref{seed}"), "--seed", str(seed))
        assert result.code == 0, result.err
        expected[seed] = file_set(tmp_path / f"ref{seed}", ("train.jsonl", "val.jsonl"))
    out = tmp_path / "S"
    results = run_both(*(["data", "split", str(source), "--out", str(out), "--seed", str(seed)] for seed in (1, 2)))
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert file_set(out, ("train.jsonl", "val.jsonl")) in (expected[1], expected[2])
    assert no_temp_files(out) == []


def test_two_runs_without_data_share_the_default_dataset(tmp_path):
    """Both generate the default dataset under runs/_data at once: the second waits for the first
    and reuses its files (one 'generating' line), both train, the set is whole."""
    runs = tmp_path / "runs"
    command = ["run", "--plugin", "bow", "--epochs", "1", "--runs-dir", str(runs), "--no-progress"]
    results = run_both(command, command)
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    assert sum("generating the default dataset" in r.stdout for r in results) == 1
    (data_dir,) = (runs / "_data").iterdir()
    from qa_core.data.loading import read_dir

    assert {k: len(v) for k, v in read_dir(data_dir).items()} == {"train": 4500, "val": 900, "test": 900}
    assert no_temp_files(runs) == []
