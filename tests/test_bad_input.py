"""The bad-input corpus (tests/data/bad/), each case through the CLI: exit code 2, one line naming
file:line: field: problem (or the option), no traceback, nothing written or overwritten."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

BAD = Path(__file__).parent / "data" / "bad"

DATA_CASES = {
    "malformed_json.jsonl": r"malformed_json\.jsonl:2: json: ",
    "missing_field.jsonl": r"missing_field\.jsonl:1: question: missing",
    "wrong_type.jsonl": r"wrong_type\.jsonl:1: story: expected a string, got int",
    "unknown_answer.jsonl": r"unknown_answer\.jsonl:1: answer: expected yes/no/true/false/1/0, got 'maybe'",
    "empty.jsonl": r"empty\.jsonl:1: file: no records",
    "blank_lines.jsonl": r"blank_lines\.jsonl:1: file: no records",
    "non_utf8.jsonl": r"non_utf8\.jsonl:2: file: not UTF-8 text \(byte 0xff\)",
    "binary_garbage.bin": r"binary_garbage\.bin:\d+: file: (not UTF-8 text|unknown format)",
    "duplicate_ids.jsonl": r"duplicate_ids\.jsonl: id: duplicate id 'a' \(records 1 and 2\)",
    "negative_noun_count.jsonl": r"negative_noun_count\.jsonl:1: noun_count: expected a non-negative integer, got -3",
    "babi_broken_numbering.txt": r"babi_broken_numbering\.txt:3: ",
    "babi_non_binary.txt": r"babi_non_binary\.txt:3: answer: 'bathroom' is not yes/no",
}

CONFIG_CASES = {
    "unparsable.toml": r"unparsable\.toml: config: invalid TOML",
    "unknown_key.toml": r"unknown_key\.toml: epoch: unknown key",
    # a bad value from the file is named by file and key, not by the CLI option it stands for
    "negative_epochs.toml": r"negative_epochs\.toml: epochs: expected a positive integer, got -2",
    "batch_size_zero.toml": r"batch_size_zero\.toml: batch_size: expected a positive integer, got 0",
    "lr_not_a_number.toml": r"lr_not_a_number\.toml: lr: expected a positive number, got 'fast'",
}


def snapshot(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs_with_a_previous_run(qa, tiny_data, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1", "--runs-dir", str(runs), "--no-progress")
    assert result.code == 0, result.err
    return runs


def assert_one_clean_line(result, pattern: str) -> None:
    assert result.code == 2, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ") and re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.err


@pytest.mark.parametrize("name", sorted(DATA_CASES))
def test_bad_data_file(name, qa, tiny_data, runs_with_a_previous_run):
    before = snapshot(runs_with_a_previous_run)
    result = qa("run", "--plugin", "bow", "--train", str(BAD / name), "--test", str(tiny_data / "test.jsonl"), "--runs-dir", str(runs_with_a_previous_run), "--no-progress")
    assert_one_clean_line(result, DATA_CASES[name])
    assert snapshot(runs_with_a_previous_run) == before


@pytest.mark.parametrize("name", sorted(DATA_CASES))
def test_bad_data_file_for_evaluate_and_stats(name, qa, runs_with_a_previous_run):
    (run_dir,) = [p for p in runs_with_a_previous_run.iterdir() if not p.name.startswith("_")]
    before = snapshot(run_dir)
    assert_one_clean_line(qa("evaluate", str(run_dir), "--data", str(BAD / name)), DATA_CASES[name])
    assert snapshot(run_dir) == before
    assert_one_clean_line(qa("data", "stats", str(BAD / name)), DATA_CASES[name])


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_bad_config_file(name, qa, runs_with_a_previous_run):
    before = snapshot(runs_with_a_previous_run)
    result = qa("run", "--config", str(BAD / name), "--runs-dir", str(runs_with_a_previous_run))
    assert_one_clean_line(result, CONFIG_CASES[name])
    assert snapshot(runs_with_a_previous_run) == before


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--epochs", "-1"], r"--epochs: expected a positive integer, got -1"),
        (["--batch-size", "0"], r"--batch-size: expected a positive integer, got 0"),
        (["--lr", "fast"], r"Invalid value for '--lr'"),
        (["--param", "lr"], r"--param 'lr': expected KEY=VALUE"),
        (["--logger-param", "mode=offline"], r"--logger-param mode=offline: expected TRACKER.KEY=VALUE"),
    ],
)
def test_bad_options(args, pattern, qa, tmp_path):
    result = qa("run", "--plugin", "bow", "--runs-dir", str(tmp_path / "runs"), *args)
    assert_one_clean_line(result, pattern)
    assert not (tmp_path / "runs").exists()


def test_a_single_10_mb_line(qa, tiny_data, tmp_path):
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps({"story": "Mary went to the kitchen. " * 400_000, "question": "Is Mary in the kitchen?", "answer": "yes"}) + "\n")
    assert path.stat().st_size > 10_000_000
    result = qa("run", "--plugin", "bow", "--train", str(path), "--test", str(tiny_data / "test.jsonl"), "--runs-dir", str(tmp_path / "runs"))
    assert_one_clean_line(result, r"huge\.jsonl:1: record: line of [\d,]+ characters, over the 1,048,576 limit")


def test_a_directory_or_a_missing_file_where_a_file_is_expected(qa, tiny_data, tmp_path):
    result = qa("run", "--plugin", "bow", "--train", str(tmp_path), "--test", str(tiny_data / "test.jsonl"), "--runs-dir", str(tmp_path / "runs"))
    assert_one_clean_line(result, r": file: is a directory, expected a file")
    result = qa("run", "--plugin", "bow", "--train", str(tmp_path / "nope.jsonl"), "--test", str(tiny_data / "test.jsonl"), "--runs-dir", str(tmp_path / "runs"))
    assert_one_clean_line(result, r"nope\.jsonl: file: not found")
    assert not (tmp_path / "runs").exists()


def test_a_bom_and_crlf_endings_are_read_as_ordinary_text():
    from qa_core.data.loading import read_examples

    examples = read_examples(BAD.parent / "bom_crlf.jsonl")
    assert [(e.id, e.story, e.answer) for e in examples] == [("a", "Mary went to the kitchen.", True), ("b", "John went to the garden.", False)]
