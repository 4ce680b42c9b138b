"""The ``support`` field: written by the generator, read back from JSONL, bad values refused."""

from __future__ import annotations

import json

import numpy as np
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


def _row_sentences(tokens, end_ids):
    """The token ids of each sentence of an encoded row, read back the slow way."""
    row = [t for t in tokens.tolist() if t != 0]
    story = row[: row.index(2)]  # SEP (id 2) starts the question
    out, current = [], []
    for t in story:
        current.append(t)
        if t in end_ids:
            out.append(current)
            current = []
    return out


@pytest.mark.parametrize("max_len", [0, 40])
def test_encoded_support_points_at_the_supporting_sentences_of_the_row(max_len):
    from qa_core.data.tokenizer import Vocabulary, encode, sequence_lengths, tokenize

    records = generate_cell("superdense", 8, 30, seed=3) + generate_cell("dense", 8, 30, seed=4)
    vocab = Vocabulary.build(records)
    width = max_len or int(sequence_lengths(records).max())
    split, _ = encode(records, vocab, width)
    end_ids = {vocab.index["."]}
    cut_any = False
    for record, tokens, support in zip(records, split.tokens, split.support):
        sentences = [s.strip() for s in record.story.split(".") if s.strip()]
        row = _row_sentences(tokens, end_ids)
        dropped = len(sentences) - len(row)
        expected = [i - dropped for i in record.support if i - dropped >= 0]
        cut_any |= dropped > 0 or len(expected) < len(record.support)
        assert sorted(int(i) for i in support if i >= 0) == expected
        for i in expected:  # the row's sentence i is the story's sentence i + dropped (whole ones)
            words = [vocab.tokens[t] for t in row[i]]
            if i > 0 or dropped == 0:
                assert words == tokenize(sentences[i + dropped] + ".")
    assert cut_any == (max_len == 40)
    assert split.take(np.arange(5)).support.shape == (5, split.support.shape[1])
    assert next(split.batches(4)).support.shape == (4, split.support.shape[1])


def test_records_without_support_encode_none(tmp_path):
    from qa_core.data.tokenizer import Vocabulary, encode

    import dataclasses

    records = [dataclasses.replace(r, support=None) for r in generate_cell("dense", 8, 4, seed=0)]
    split, _ = encode(records, Vocabulary.build(records), 200)
    assert split.support is None and next(split.batches(2)).support is None
