"""Accuracy on the answerable records of each cell, and the story-length axis, from one histogram."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from qa_core import metrics
from qa_core.data.generator import generate_cell, generate_splits
from qa_core.data.records import sentence_count
from qa_core.data.tokenizer import Vocabulary, encode
from qa_core.evaluation import answerable_by, group_rows
from qa_core.types import LENGTH_BUCKETS

sys.path.insert(0, str(Path(__file__).parent))
from story_checker import check  # noqa: E402


def test_answerable_accuracy_equals_a_per_example_reference():
    records = generate_splits({"test": 80}, noun_counts=(8, 30), per_cell=True, seed=4)["test"]
    encoded, stats = encode(records, Vocabulary.build(records), 90, "test")
    assert 0 < stats.lost < len(records)
    probs = np.random.default_rng(1).random(len(records))
    report = metrics.compute_for_split(encoded, probs)
    lost = answerable_by(report)
    for (category, nouns) in report.by_group:
        rows = [i for i, e in enumerate(records) if (e.category, e.noun_count) == (category, nouns)]
        kept = [i for i in rows if encoded.answerable[i]]
        right = [(probs[i] >= 0.5) == records[i].answer for i in kept]
        cut, group = lost[("cell", (category, nouns))]
        assert cut == len(rows) - len(kept)
        if kept:
            assert group.count == len(kept) and abs(group.accuracy - np.mean(right)) < 1e-12
        else:
            assert group is None
    cells = {(r["category"], r["noun_count"]): r for r in group_rows(report) if r["level"] == "cell"}
    assert sum(r["lost"] for r in cells.values()) == stats.lost
    overall = next(r for r in group_rows(report) if r["level"] == "overall")
    assert overall["lost"] == stats.lost and overall["answerable_count"] == len(records) - stats.lost


def test_length_fixed_across_noun_counts_and_varied_at_one():
    fixed = generate_splits({"test": 30}, categories=("simple", "dense"), noun_counts=(8, 15), sentences=(18,), per_cell=True, seed=2)["test"]
    varied = [e for n in (10, 30) for e in generate_cell("superdense", 15, 30, seed=2, sentences=n)]
    for records, lengths in ((fixed, {18}), (varied, {10, 30})):
        assert {sentence_count(e.story) for e in records} == lengths
        for example in records:
            verdict = check(example.story, example.question)
            assert verdict.answer == example.answer and list(example.support) == verdict.support
            assert verdict.sentences == sentence_count(example.story)
    assert {e.noun_count for e in fixed} == {8, 15} and {e.id.split("-")[3] for e in fixed} == {"s18"}
    assert [e.id for e in varied[:1]] == ["train-superdense-n15-s10-00000"]
    encoded, _ = encode(varied, Vocabulary.build(varied), 1000, "test")
    report = metrics.compute_for_split(encoded, np.full(len(varied), 0.9))
    by_length = report.by_axis["length"]
    assert set(by_length) == {"9-16", "17-32"} and all(g.count == 30 for g in by_length.values())
    assert [r["length"] for r in group_rows(report) if r["level"] == "length"] == ["9-16", "17-32"]
    assert LENGTH_BUCKETS.index("9-16") < LENGTH_BUCKETS.index("17-32")


def test_a_run_with_a_short_window_says_what_it_cost_everywhere(qa, tiny_data, tmp_path):
    """Console, config.json, eval/groups.csv, qa compare and qa report all name the records that
    lost a supporting sentence, per cell, and the counts match a by-hand reference."""
    import csv
    import json

    from qa_core.data.records import read_jsonl
    from qa_core.data.tokenizer import tokenize

    runs = tmp_path / "runs"
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1", "--max-len", "60", "--runs-dir", str(runs), "--no-progress")
    assert result.code == 0, result.err
    (run_dir,) = [p for p in runs.iterdir() if not p.name.startswith("_")]

    def lost(e):
        story = tokenize(e.story)
        cut = len(story) + 1 + len(tokenize(e.question)) - 60
        starts = [0] + [i + 1 for i, t in enumerate(story) if t == "."]
        return cut > 0 and starts[e.support[0]] < cut

    test = read_jsonl(tiny_data / "test.jsonl")
    expected = {}
    for e in test:
        if lost(e):
            expected[f"{e.category}/{e.noun_count}"] = expected.get(f"{e.category}/{e.noun_count}", 0) + 1
    assert expected
    config = json.loads((run_dir / "config.json").read_text())
    assert config["max_len"] == 60 and config["lost_support"]["test"] == expected
    assert f"{sum(expected.values())} lost a supporting sentence" in result.err
    rows = {(r["category"], r["noun_count"]): r for r in csv.DictReader((run_dir / "eval" / "groups.csv").open()) if r["level"] == "cell"}
    assert {f"{c}/{n}": int(r["lost"]) for (c, n), r in rows.items() if int(r["lost"])} == expected
    assert "lost a supporting sentence to max_len, answerable-only accuracy" in result.out

    compared = qa("compare", str(run_dir), str(run_dir))
    assert compared.code == 0, compared.err
    assert f"{sum(expected.values())} test records lost a supporting sentence to max_len=60" in compared.out
    reported = qa("report", str(run_dir), "--out", str(tmp_path / "r.html"))
    assert reported.code == 0, reported.err
    page = (tmp_path / "r.html").read_text()
    assert 'id="truncation"' in page and "Lost to max_len=60" in page
