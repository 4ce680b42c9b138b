"""The ``support`` field: written by the generator, read back from JSONL, bad values refused."""

from __future__ import annotations

import json

import pytest

from qa_core.data.generator import generate_cell
from qa_core.data.records import read_jsonl, sentence_count, write_jsonl
from qa_core.errors import DataError

STORY = "Mary went to the hall. John went to the garden. Mary took the cup."


def test_generated_support_survives_a_jsonl_round_trip(tmp_path):
    records = generate_cell("superdense", 15, 20, seed=1)
    write_jsonl(tmp_path / "r.jsonl", records)
    assert read_jsonl(tmp_path / "r.jsonl") == records
    assert all(r.support and max(r.support) < sentence_count(r.story) for r in records)
    assert '"support": [' in (tmp_path / "r.jsonl").read_text()


def test_records_without_support_still_work(tmp_path):
    (tmp_path / "r.jsonl").write_text(json.dumps({"story": STORY, "question": "Is Mary in the hall?", "answer": "yes"}) + "\n")
    [record] = read_jsonl(tmp_path / "r.jsonl")
    assert record.support is None and "support" not in record.to_json()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "expected a list of sentence indices, got str"),
        ([0, "1"], "expected integer sentence indices"),
        ([True], "expected integer sentence indices"),
        ([2, 1], "expected increasing indices >= 0"),
        ([1, 1], "expected increasing indices >= 0"),
        ([-1], "expected increasing indices >= 0"),
        ([3], "index 3 is past the story's 3 sentence(s)"),
    ],
)
def test_bad_support_is_one_line_naming_file_line_and_field(tmp_path, value, problem):
    good = {"story": STORY, "question": "Is Mary in the hall?", "answer": "yes", "support": [0, 2]}
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "support": value}) + "\n")
    with pytest.raises(DataError) as info:
        read_jsonl(path)
    assert info.value.problems == [f"{path}:2: support: {problem}"] or info.value.problems[0].startswith(f"{path}:2: support: {problem}")
    assert len(info.value.problems) == 1


def test_sentence_count():
    assert sentence_count(STORY) == 3
    assert sentence_count("One. Two? Three! Four") == 4
    assert sentence_count("Mr.Smith went home.") == 1
