"""Stratified splitting keeps every (category, noun count, answer) cell on both sides."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from qa_core.data.babi import read_babi
from qa_core.data.records import Example
from qa_core.data.splits import cell_codes, cell_key, stratified_split
from qa_core.errors import ConfigError

BABI = Path(__file__).parent / "data" / "babi"


def make_examples(n: int, seed: int = 0) -> list[Example]:
    """Skewed cells on purpose: big ones, pairs and singletons, a rare category."""
    rng = np.random.default_rng(seed)
    categories = rng.choice(["simple", "dense", "superdense", "rare"], size=n, p=[0.5, 0.3, 0.18, 0.02])
    noun_counts = rng.geometric(0.35, size=n) + 1
    answers = rng.random(n) < 0.4
    return [
        Example(f"ex{i}", f"story {i}", f"question {i}?", bool(a), str(c), int(k))
        for i, (c, k, a) in enumerate(zip(categories, noun_counts, answers))
    ]


def cell_sizes(examples: list[Example]) -> Counter:
    return Counter(cell_key(e) for e in examples)


@pytest.mark.parametrize(("n", "fraction", "seed"), [(600, 0.1, 0), (600, 0.25, 1), (97, 0.5, 2), (2000, 0.05, 3)])
def test_every_cell_of_two_or_more_is_on_both_sides(n: int, fraction: float, seed: int):
    examples = make_examples(n, seed)
    rest, held = stratified_split(examples, fraction, seed)
    whole, kept, out = cell_sizes(examples), cell_sizes(rest), cell_sizes(held)
    assert any(size == 1 for size in whole.values()) and any(size == 2 for size in whole.values())
    lowest = highest = 0
    for cell, size in whole.items():
        if size >= 2:
            assert kept[cell] >= 1 and out[cell] >= 1, (cell, size, kept[cell], out[cell])
        # Proportions: each cell holds out the floor or the ceiling of its share, moved into
        # [1, size - 1] when it has two records or more.
        bounds = (1, size - 1) if size >= 2 else (0, 1)
        low, high = (min(max(math.floor(size * fraction), bounds[0]), bounds[1]),
                     min(max(math.ceil(size * fraction), bounds[0]), bounds[1]))
        assert low <= out[cell] <= high, (cell, size, out[cell], size * fraction)
        lowest, highest = lowest + low, highest + high
    # The total is the requested fraction whenever the cells' bounds allow it.
    assert len(held) == min(max(round(n * fraction), lowest), highest)


def test_parts_are_disjoint_cover_the_input_and_keep_its_order():
    examples = make_examples(500)
    rest, held = stratified_split(examples, 0.2, seed=7)
    assert {e.id for e in rest}.isdisjoint(e.id for e in held)
    assert len(rest) + len(held) == len(examples)
    assert sorted(rest + held, key=lambda e: int(e.id[2:])) == examples
    position = {e.id: i for i, e in enumerate(examples)}
    assert [position[e.id] for e in rest] == sorted(position[e.id] for e in rest)
    assert [position[e.id] for e in held] == sorted(position[e.id] for e in held)


def test_deterministic_for_a_seed_and_different_across_seeds():
    examples = make_examples(800)
    first = stratified_split(examples, 0.15, seed=11)
    assert stratified_split(examples, 0.15, seed=11) == first
    other = stratified_split(examples, 0.15, seed=12)
    assert {e.id for e in other[1]} != {e.id for e in first[1]}
    assert cell_sizes(other[1]) == cell_sizes(first[1])  # the quotas do not depend on luck


def test_the_held_out_records_are_a_random_sample_of_each_cell():
    # One big cell: over many seeds every record should be held out sometimes, so the
    # selection is not "the first k of the cell".
    examples = [Example(f"e{i}", "s", "q?", True, "simple", 3) for i in range(20)]
    chosen = Counter(e.id for seed in range(200) for e in stratified_split(examples, 0.25, seed)[1])
    assert set(chosen) == {e.id for e in examples}
    assert all(len(stratified_split(examples, 0.25, seed)[1]) == 5 for seed in range(5))


def test_small_and_degenerate_inputs():
    assert stratified_split([], 0.2, seed=0) == ([], [])
    one = make_examples(1)
    assert stratified_split(one, 0.2, seed=0) == (one, [])
    pair = [Example(f"p{i}", "s", "q?", False, "simple", 2) for i in range(2)]
    rest, held = stratified_split(pair, 0.01, seed=0)
    assert len(rest) == len(held) == 1
    # All singletons: still at least one record on each side.
    singles = [Example(f"s{i}", "s", "q?", bool(i % 2), "simple", i) for i in range(5)]
    rest, held = stratified_split(singles, 0.01, seed=0)
    assert (len(rest), len(held)) == (4, 1)
    rest, held = stratified_split(singles, 0.99, seed=0)
    assert (len(rest), len(held)) == (1, 4)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_fraction_must_be_strictly_between_zero_and_one(fraction: float):
    with pytest.raises(ConfigError, match="between 0 and 1"):
        stratified_split(make_examples(10), fraction, seed=0)


def test_cell_codes_group_by_category_noun_count_and_answer():
    examples = read_babi(BABI / "qa6_yes-no-questions_train.txt") + read_babi(BABI / "qa18_size-reasoning_train.txt")
    codes, keys = cell_codes(examples)
    assert codes.shape == (len(examples),) and keys == sorted(set(keys))
    assert [keys[c] for c in codes] == [cell_key(e) for e in examples]
    assert ("yes-no-questions", 4, True) in keys and ("size-reasoning", 4, False) in keys


def test_a_babi_train_file_splits_into_train_and_validation():
    examples = read_babi(BABI / "qa6_yes-no-questions_train.txt") + read_babi(BABI / "qa17_positional-reasoning_train.txt")
    rest, held = stratified_split(examples, 0.3, seed=0)
    assert rest and held and len(rest) + len(held) == len(examples)
    pairs = [cell for cell, size in cell_sizes(examples).items() if size >= 2]
    assert pairs and all(cell in cell_sizes(held) and cell in cell_sizes(rest) for cell in pairs)
