"""McNemar, Holm and the two-proportion test against hand-checked values and scipy; `qa compare`
marks a winner only where the paired difference is significant."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from qa_core import metrics
from qa_core.analysis.compare import NO_DIFFERENCE, compare_runs, format_table
from qa_core.analysis.significance import holm, mcnemar_exact, two_proportion
from qa_core.data.records import Example
from qa_core.predictions import write_predictions

CATS = ("simple", "dense")


def test_mcnemar_exact_on_hand_counted_discordant_pairs():
    # b = 10, c = 2: p = 2 * P(X <= 2 | n = 12) = 2 * (1 + 12 + 66) / 4096
    assert mcnemar_exact([10], [2])[0] == pytest.approx(158 / 4096, rel=1e-12)
    # b = c: no evidence either way; no discordant pair at all: p = 1
    assert mcnemar_exact([7, 0], [7, 0]).tolist() == [1.0, 1.0]
    # 5 to 0: 2 / 32, the smallest p five discordant records can give
    assert mcnemar_exact([0], [5])[0] == pytest.approx(1 / 16)


@pytest.mark.parametrize("b, c", [(1, 0), (3, 9), (40, 20), (250, 310), (1200, 1100)])
def test_mcnemar_exact_matches_scipy_binomtest(b, c):
    stats = pytest.importorskip("scipy.stats")
    assert mcnemar_exact([b], [c])[0] == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_holm_on_a_hand_worked_family():
    # sorted 0.005 0.01 0.03 0.04 -> x4 x3 x2 x1 = 0.02 0.03 0.06 0.04 -> running max 0.02 0.03 0.06 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]  # 0.5 x 2 = 1, and the next may not be smaller
    assert holm([0.2, 0.01]).tolist() == pytest.approx([0.2, 0.02])
    assert holm([]).size == 0


def test_two_proportion_matches_the_normal_test():
    stats = pytest.importorskip("scipy.stats")
    k1, n1, k2, n2 = 45, 60, 30, 60
    pooled = (k1 + k2) / (n1 + n2)
    z = (k1 / n1 - k2 / n2) / np.sqrt(pooled * (1 - pooled) * (2 / 60))
    assert two_proportion([k1], [n1], [k2], [n2])[0] == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)
    assert two_proportion([0, 5], [0, 5], [3, 5], [4, 5]).tolist() == [1.0, 1.0]  # undefined: no evidence


# -------------------------------------------------------------------------------------------------
# qa compare on runs whose predictions are written by hand, through the core's own writers
# -------------------------------------------------------------------------------------------------


def records(per_cell: int) -> list[Example]:
    return [
        Example(f"{cat}-{n}-{i}", f"story {cat} {n} {i}", "q?", i % 2 == 0, cat, n)
        for cat in CATS for n in (8, 30) for i in range(per_cell)
    ]


def write_run(directory: Path, examples: list[Example], right: np.ndarray, seed: int = 0) -> Path:
    """A finished run directory whose test predictions are right exactly where ``right`` says."""
    from qa_core.tracking.local import write_json

    labels = np.array([e.answer for e in examples], dtype=np.float32)
    probs = np.where(right, labels, 1 - labels).astype(np.float32) * 0.8 + 0.1
    codes = np.array([CATS.index(e.category) for e in examples])
    nouns = np.array([e.noun_count for e in examples])
    report = metrics.compute(labels, probs, codes, nouns, CATS)
    (directory / "eval").mkdir(parents=True)
    write_predictions(directory / "eval", examples, probs, 0.5)
    write_json(directory / "config.json", {"plugin": "hand", "seed": seed, "dataset": "d"})
    write_json(directory / "summary.json", {"run_id": directory.name, "plugin": "hand", "status": "finished", "values": metrics.metric_names(report, "test")})
    return directory


def test_a_difference_within_noise_marks_no_winner(tmp_path):
    examples = records(40)
    rng = np.random.default_rng(0)
    a = rng.random(len(examples)) < 0.6
    b = a.copy()
    flip = np.flatnonzero(a[:40])[:3]  # simple/noun_8: a 3 records ahead (0.62 vs 0.55 or so)
    b[flip] = False
    comparison = compare_runs([write_run(tmp_path / "a", examples, a), write_run(tmp_path / "b", examples, b)])
    row = next(r for r in comparison.rows if r.name == "simple/noun_8")
    assert row.values[0] > row.values[1]  # a point comparison would have called #1 better
    assert row.best == [] and row.tests[0].method == "mcnemar" and row.tests[0].discordant == (3, 0)
    assert row.tests[0].p == pytest.approx(0.25) and row.verdict().startswith(NO_DIFFERENCE)
    assert all(r.best == [] for r in comparison.rows)
    assert comparison.pairing == {(0, 1): "paired"}
    text = format_table(comparison)
    assert " *" not in text.replace("* significantly", "") and "exact McNemar" in text


def test_a_real_difference_is_marked_after_holm(tmp_path):
    examples = records(40)
    a = np.ones(len(examples), dtype=bool)  # always right
    b = a.copy()
    b[40:80] = np.arange(40) % 2 == 0  # simple/noun_30: half wrong -> 20 discordant, p = 2 / 2**20
    b[0:2] = False  # simple/noun_8: 2 discordant, p = 0.5: not significant
    comparison = compare_runs([write_run(tmp_path / "a", examples, a), write_run(tmp_path / "b", examples, b)])
    rows = {r.name: r for r in comparison.rows}
    strong = rows["simple/noun_30"].tests[0]
    assert strong.discordant == (20, 0) and strong.p == pytest.approx(2 / 2**20)
    tested = [r.tests[0].p for r in rows.values() if r.section == "cells"]
    assert strong.p_holm == pytest.approx(holm(tested)[1])  # the family is the four cells
    assert rows["simple/noun_30"].best == [0]
    assert rows["simple/noun_8"].best == [] and rows["dense/noun_8"].best == []
    assert rows["test accuracy"].best == [0]  # 22 discordant, all one way
    out = format_table(comparison)
    assert re.search(r"^  simple/noun_30\s+1\.000 \[0\.91, 1\.00\] \(40\) \*\s+0\.500 \[0\.35, 0\.65\] \(40\)\s+#1>#2 p=", out, re.M)


def test_different_test_sets_fall_back_to_the_unpaired_test_and_say_so(tmp_path):
    examples = records(40)
    a = np.ones(len(examples), dtype=bool)
    other = records(40)[:-1]  # one record fewer: another test set
    comparison = compare_runs([write_run(tmp_path / "a", examples, a), write_run(tmp_path / "b", other, np.zeros(len(other), bool))])
    assert comparison.pairing == {(0, 1): "unpaired"}
    assert any("test sets differ" in note for note in comparison.notes)
    row = next(r for r in comparison.rows if r.name == "dense/noun_8")
    assert row.tests[0].method == "two-proportion" and row.best == [0]  # 40/40 against 0/40


def test_compare_json_keeps_every_test(tmp_path):
    examples = records(10)
    right = np.ones(len(examples), dtype=bool)
    comparison = compare_runs([write_run(tmp_path / "a", examples, right), write_run(tmp_path / "b", examples, right)])
    data = json.loads(json.dumps(comparison.to_json()))
    cell = next(r for r in data["rows"] if r["name"] == "dense/noun_30")
    assert cell["tests"][0]["method"] == "mcnemar" and cell["tests"][0]["p_holm"] == 1.0 and cell["better"] == []


def test_three_runs_mark_every_run_that_wins_a_test_and_loses_none(tmp_path):
    examples = records(40)
    best = np.ones(len(examples), dtype=bool)
    worse = best.copy()
    worse[40:80] = np.arange(40) % 2 == 0  # simple/noun_30: 20 wrong
    paths = [write_run(tmp_path / name, examples, right) for name, right in (("a", best), ("b", worse), ("c", best))]
    comparison = compare_runs(paths)
    row = next(r for r in comparison.rows if r.name == "simple/noun_30")
    assert len(row.tests) == 3 and set(comparison.pairing) == {(0, 1), (0, 2), (1, 2)}
    assert row.best == [0, 2]  # both beat #2; #1 and #3 are the same
    assert "#1>#2" in row.verdict() and "#3>#2" in row.verdict()
    assert next(r for r in comparison.rows if r.name == "dense/noun_8").best == []


def write_group(directory: Path, members: list[Path], seeds: list[int]) -> Path:
    """A seed-group directory over finished runs, written with the group module's own functions."""
    from qa_core.analysis.groups import AGGREGATE_FILE, GROUP_FILE, KIND, aggregate, summary_values
    from qa_core.analysis.runs import RunRecord
    from qa_core.tracking.local import write_json

    records = [RunRecord.load(m) for m in members]
    agg = aggregate([r.values for r in records], seeds)
    directory.mkdir(parents=True)
    write_json(directory / GROUP_FILE, {"kind": KIND, "seeds": seeds, "members": [{"seed": s, "run_id": m.name, "path": f"../{m.name}"} for s, m in zip(seeds, members)]})
    write_json(directory / AGGREGATE_FILE, agg)
    write_json(directory / "config.json", {"plugin": "hand", "seeds": seeds})
    write_json(directory / "summary.json", {"run_id": directory.name, "plugin": "hand", "status": "finished", "seeds": seeds, "values": summary_values(agg)})
    return directory


def test_groups_pool_the_discordant_records_of_matching_seeds_only(tmp_path):
    examples = records(10)
    right = np.ones(len(examples), dtype=bool)
    half = right.copy()
    half[10:20] = np.arange(10) % 2 == 0  # simple/noun_30: 5 wrong per run
    a = write_group(tmp_path / "ga", [write_run(tmp_path / f"a{s}", examples, right, s) for s in (0, 1, 2)], [0, 1, 2])
    b = write_group(tmp_path / "gb", [write_run(tmp_path / f"b{s}", examples, half, s) for s in (0, 1, 2)], [0, 1, 2])
    row = next(r for r in compare_runs([a, b]).rows if r.name == "simple/noun_30")
    assert row.tests[0].method == "mcnemar" and row.tests[0].discordant == (15, 0)  # 3 seeds x 5
    assert row.best == [0]  # one run alone (5 to 0, p = 0.0625) could not show it
    other = write_group(tmp_path / "gc", [write_run(tmp_path / f"c{s}", examples, half, s) for s in (5, 6)], [5, 6])
    comparison = compare_runs([a, other])
    assert comparison.pairing == {(0, 1): "unpaired"}  # no seed in common
    assert next(r for r in comparison.rows if r.name == "simple/noun_30").tests[0].method == "two-proportion"
