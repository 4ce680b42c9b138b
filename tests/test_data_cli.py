"""`qa data generate | stats | import-babi` through the real CLI."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

BABI = Path(__file__).parent / "data" / "babi"


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("*.jsonl"))}


def test_generate_writes_three_splits_identically_twice(qa, tmp_path):
    args = ["data", "generate", "--train", "180", "--val", "45", "--test", "45", "--seed", "4"]
    first = qa(*args, "--out", str(tmp_path / "a"), "--progress")
    second = qa(*args, "--out", str(tmp_path / "b"), "--no-progress")
    assert first.code == 0 and second.code == 0, first.err + second.err
    assert set(digest(tmp_path / "a")) == {"train.jsonl", "val.jsonl", "test.jsonl"}
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert "generating" in first.err and "270/270" in first.err  # the tqdm bar, on stderr
    other = qa("data", "generate", "--train", "180", "--val", "45", "--test", "45", "--seed", "5", "--out", str(tmp_path / "c"))
    assert other.code == 0, other.err
    a, c = digest(tmp_path / "a"), digest(tmp_path / "c")
    assert a.keys() == c.keys() and all(a[name] != c[name] for name in a)


def test_stats_shows_every_cell_balanced(qa, tmp_path):
    assert qa("data", "generate", "--train", "360", "--val", "0", "--test", "0", "--out", str(tmp_path)).code == 0
    result = qa("data", "stats", str(tmp_path / "train.jsonl"))
    assert result.code == 0, result.err
    rows = re.findall(r"^\s+(simple|dense|superdense)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)%$", result.out, re.M)
    assert len(rows) == 9
    for category, nouns, count, yes, no, share in rows:
        assert int(count) == 40 and int(yes) == int(no) == 20 and float(share) == 50.0
    records = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert {(r["category"], r["noun_count"]) for r in records} == {(c, n) for c in ("simple", "dense", "superdense") for n in (8, 15, 30)}


def test_generate_refuses_unknown_categories_and_impossible_noun_counts(qa, tmp_path):
    result = qa("data", "generate", "--out", str(tmp_path), "--categories", "simple,hard")
    assert result.code == 2 and "hard" in result.err and "Traceback" not in result.err
    result = qa("data", "generate", "--out", str(tmp_path), "--noun-counts", "8,x")
    assert result.code == 2 and "--noun-counts" in result.err
    assert not list(tmp_path.iterdir())


def test_import_babi_converts_yes_no_tasks(qa, tmp_path):
    out = tmp_path / "babi.jsonl"
    result = qa("data", "import-babi", str(BABI / "qa6_yes-no-questions_train.txt"), str(BABI / "qa17_positional-reasoning_train.txt"), "--out", str(out))
    assert result.code == 0, result.err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["category"] for r in records} == {"yes-no-questions", "positional-reasoning"}
    assert all(r["answer"] in ("yes", "no") for r in records)
    refused = qa("data", "import-babi", str(BABI / "invalid" / "qa1_single-supporting-fact_train.txt"), "--out", str(tmp_path / "x.jsonl"))
    assert refused.code == 2 and "is not yes/no" in refused.err
    assert not (tmp_path / "x.jsonl").exists()
