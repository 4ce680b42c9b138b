"""Stratified test sets through the CLI: `qa data generate --per-cell` and `qa data split`."""

from __future__ import annotations

import math
from collections import Counter

from qa_core.data.records import read_jsonl


def test_generate_per_cell_writes_exactly_n_records_in_every_cell(qa, tmp_path):
    result = qa(
        "data", "generate", "--out", str(tmp_path), "--train", "6", "--val", "0", "--test", "3", "--per-cell",
        "--categories", "dense,simple", "--noun-counts", "20,6", "--seed", "4", "--no-progress",
    )
    assert result.code == 0, result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.jsonl", "train.jsonl"]  # --val 0: no file
    splits = {name: read_jsonl(tmp_path / f"{name}.jsonl") for name in ("train", "test")}
    cells = {(c, n) for c in ("simple", "dense") for n in (6, 20)}
    for name, size in (("train", 6), ("test", 3)):
        examples = splits[name]
        assert Counter((e.category, e.noun_count) for e in examples) == {cell: size for cell in cells}
        for cell in cells:  # balanced: half yes, off by one for an odd size
            yes = sum(e.answer for e in examples if (e.category, e.noun_count) == cell)
            assert yes in (math.floor(size / 2), math.ceil(size / 2))
        assert f"wrote {len(examples)} records to {tmp_path / (name + '.jsonl')}" in result.out
    assert not {e.story for e in splits["train"]} & {e.story for e in splits["test"]}
    # the noun count stored is the noun count of the story
    from qa_core.data.nouns import count_nouns

    assert all(count_nouns(e.story) == e.noun_count for e in splits["test"])


def test_generate_per_cell_refuses_a_cell_the_generator_cannot_tell(qa, tmp_path):
    result = qa("data", "generate", "--out", str(tmp_path), "--test", "2", "--per-cell", "--categories", "superdense", "--noun-counts", "4", "--no-progress")
    assert result.code == 2 and "noun count 4 is too small for superdense" in result.err and "Traceback" not in result.err


def test_split_keeps_every_category_noun_count_answer_cell_on_both_sides(qa, tiny_data, tmp_path):
    source = tiny_data / "train.jsonl"
    result = qa("data", "split", str(source), "--out", str(tmp_path), "--fraction", "0.25", "--names", "rest,held", "--seed", "3")
    assert result.code == 0, result.err
    whole = read_jsonl(source)
    rest, held = read_jsonl(tmp_path / "rest.jsonl"), read_jsonl(tmp_path / "held.jsonl")
    assert f"wrote {len(held)} records to {tmp_path / 'held.jsonl'}" in result.out
    assert sorted(e.id for e in rest + held) == sorted(e.id for e in whole) and not {e.id for e in rest} & {e.id for e in held}
    order = {e.id: i for i, e in enumerate(whole)}
    assert all(order[a.id] < order[b.id] for part in (rest, held) for a, b in zip(part, part[1:]))  # input order kept

    key = lambda e: (e.category, e.noun_count, e.answer)  # noqa: E731
    sizes, held_sizes = Counter(map(key, whole)), Counter(map(key, held))
    for cell, size in sizes.items():
        assert math.floor(size * 0.25) <= held_sizes[cell] <= math.ceil(size * 0.25), cell
        assert 1 <= held_sizes[cell] <= size - 1
    assert len(held) == round(0.25 * len(whole))


def test_split_refuses_bad_options(qa, tiny_data, tmp_path):
    result = qa("data", "split", str(tiny_data / "train.jsonl"), "--out", str(tmp_path), "--fraction", "1.5")
    assert result.code == 2 and "between 0 and 1" in result.err
    result = qa("data", "split", str(tiny_data / "train.jsonl"), "--out", str(tmp_path), "--names", "one")
    assert result.code == 2 and "--names: expected two comma-separated names" in result.err
    result = qa("data", "split", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path))
    assert result.code == 2 and "missing.jsonl: file: not found" in result.err
