"""max_len covers the data by default; a shorter one is counted per split and cell, against support."""

from __future__ import annotations

import collections

import numpy as np

from qa_core.config import RunConfig
from qa_core.data.generator import generate_splits
from qa_core.data.records import Example
from qa_core.data.tokenizer import Vocabulary, encode, sequence_lengths, tokenize
from qa_core.inputs import resolve_max_len


def _lost_by_reference(example: Example, max_len: int) -> bool:
    """Per record, from the tokens: does the cut (the story's first tokens) reach into a sentence
    the answer needs? Without support, any cut counts."""
    story, question = tokenize(example.story), tokenize(example.question)
    cut = max(0, len(story) + 1 + len(question) - max_len)
    if example.support is None:
        return cut > 0
    starts = [0] + [i + 1 for i, token in enumerate(story) if token == "."][:-1]
    return any(starts[s] < cut for s in example.support)


def test_a_short_max_len_counts_lost_supporting_facts_per_cell():
    splits = generate_splits({"train": 60, "test": 60}, noun_counts=(8, 30), per_cell=True, seed=2)
    vocab = Vocabulary.build(splits["train"])
    records = splits["test"] + [Example("plain", "Mary went to the hall. John went to the garden.", "Is Mary in the hall?", True, "other", 4)]
    for max_len in (40, 120):
        encoded, stats = encode(records, vocab, max_len, "test")
        expected = np.array([_lost_by_reference(e, max_len) for e in records])
        assert (encoded.answerable == ~expected).all()
        by_cell = collections.Counter(f"{e.category}/{e.noun_count}" for e, lost in zip(records, expected) if lost)
        assert stats.lost_by_cell == dict(by_cell) and stats.lost == expected.sum() > 0
        assert stats.truncated > stats.lost  # a cut that spares the supporting facts costs nothing
    taken = encoded.take(np.array([0, len(records) - 1]))
    assert taken.answerable.tolist() == encoded.answerable[[0, -1]].tolist()


def test_max_len_zero_or_unset_covers_every_split():
    splits = generate_splits({"train": 30, "test": 60}, noun_counts=(8, 30), per_cell=True, seed=2)
    longest = max(int(sequence_lengths(records).max()) for records in splits.values())
    config = RunConfig(plugin="x")
    assert resolve_max_len(config, {"max_len": 0}, splits) == longest
    assert resolve_max_len(config, {}, splits) == longest
    assert resolve_max_len(config, {"max_len": 50}, splits) == 50
    vocab = Vocabulary.build(splits["train"])
    _, stats = encode(splits["test"], vocab, longest, "test")
    assert stats.truncated == 0 and stats.lost == 0
