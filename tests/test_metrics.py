"""metrics.py against a plain, independent per-example computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qa_core import metrics

CATS = ("simple", "dense", "superdense")


def reference(labels, probs, cats, nouns, threshold=0.5):
    """Per-example Python: the obviously-correct version."""
    groups: dict = {}
    for y, p, c, n in zip(labels.tolist(), probs.tolist(), cats.tolist(), nouns.tolist()):
        pred = p >= threshold
        truth = y >= 0.5
        q = min(max(p, 1e-7), 1 - 1e-7)
        loss = -math.log(q if truth else 1 - q)
        for key in (("all",), ("cat", CATS[c]), ("noun", n), ("cell", CATS[c], n)):
            g = groups.setdefault(key, {"tn": 0, "fp": 0, "fn": 0, "tp": 0, "loss": 0.0})
            g[("t" if pred == truth else "f") + ("p" if pred else "n")] += 1
            g["loss"] += loss
    return groups


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(7)
    n = 5000
    labels = rng.integers(0, 2, n).astype(np.float32)
    probs = np.clip(labels * 0.3 + rng.random(n) * 0.7, 0, 1).astype(np.float32)
    cats = rng.integers(0, 3, n).astype(np.int32)
    nouns = rng.choice([8, 15, 30], n).astype(np.int32)
    return labels, probs, cats, nouns


@pytest.mark.parametrize("threshold", [0.5, 0.3])
# compute() scores in blocks: one block, uneven blocks (5000 = 4 x 1237 + 52) and one-row blocks
# must all add up to the reference, misclassified row numbers included.
@pytest.mark.parametrize("block", [1 << 17, 1237, 1])
def test_every_breakdown_matches_the_per_example_reference(sample, threshold, block, monkeypatch):
    labels, probs, cats, nouns = sample
    monkeypatch.setattr(metrics, "_BLOCK", block)
    report = metrics.compute(labels, probs, cats, nouns, CATS, threshold=threshold)
    ref = reference(labels, probs, cats, nouns, threshold)

    def check(group, r):
        assert (group.tn, group.fp, group.fn, group.tp) == (r["tn"], r["fp"], r["fn"], r["tp"])
        total = r["tn"] + r["fp"] + r["fn"] + r["tp"]
        assert group.count == total
        assert group.accuracy == pytest.approx((r["tp"] + r["tn"]) / total)
        precision = r["tp"] / (r["tp"] + r["fp"]) if r["tp"] + r["fp"] else 0.0
        recall = r["tp"] / (r["tp"] + r["fn"]) if r["tp"] + r["fn"] else 0.0
        assert group.precision == pytest.approx(precision)
        assert group.recall == pytest.approx(recall)
        assert group.f1 == pytest.approx(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        assert group.loss == pytest.approx(r["loss"] / total, rel=1e-5)

    check(report.overall, ref[("all",)])
    assert set(report.by_category) == set(CATS)
    for cat, group in report.by_category.items():
        check(group, ref[("cat", cat)])
    assert sorted(report.by_noun_count) == [8, 15, 30]
    for n, group in report.by_noun_count.items():
        check(group, ref[("noun", n)])
    assert len(report.by_group) == 9
    for (cat, n), group in report.by_group.items():
        check(group, ref[("cell", cat, n)])
    wrong = [i for i, (y, p) in enumerate(zip(labels, probs)) if (p >= threshold) != (y >= 0.5)]
    assert report.misclassified.tolist() == wrong


def test_groups_absent_from_the_data_are_absent_from_the_report():
    labels = np.array([1, 0, 1], np.float32)
    probs = np.array([0.9, 0.2, 0.1], np.float32)
    report = metrics.compute(labels, probs, np.array([0, 0, 2]), np.array([8, 8, 30]), CATS)
    assert list(report.by_category) == ["simple", "superdense"]
    assert list(report.by_group) == [("simple", 8), ("superdense", 30)]
    assert report.by_group[("superdense", 30)].accuracy == 0.0
    assert report.by_group[("superdense", 30)].precision == 0.0  # no positive prediction: 0, not NaN


def test_metric_names_use_the_shared_namespaces(sample):
    labels, probs, cats, nouns = sample
    names = metrics.metric_names(metrics.compute(labels, probs, cats, nouns, CATS), "val")
    assert names["metrics/val/accuracy"] == pytest.approx(float(np.mean((probs >= 0.5) == (labels >= 0.5))))
    assert names["val/by_category/dense/count"] == int((cats == 1).sum())
    assert names["val/by_noun_count/15/count"] == int((nouns == 15).sum())
    assert names["val/by_group/superdense/noun_30/count"] == int(((cats == 2) & (nouns == 30)).sum())
    assert sum(v for k, v in names.items() if k.startswith("val/confusion/")) == len(labels)
    assert metrics.top_epoch_names([{"epoch": 3, "accuracy": 0.9, "loss": 0.2, "checkpoint": "c"}]) == {
        "top_epochs/1/epoch": 3, "top_epochs/1/accuracy": 0.9, "top_epochs/1/loss": 0.2, "top_epochs/1/checkpoint": "c"}


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError):
        metrics.compute(np.zeros(3), np.zeros(2), np.zeros(3, int), np.zeros(3, int), CATS)


# -------------------------------------------------------------------------------------------------
# intervals and axes
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "k, n",
    [(0, 1), (1, 1), (0, 10), (10, 10), (1, 10), (5, 10), (9, 10), (0, 142), (124, 142), (142, 142), (37, 1000), (3, 7)],
)
def test_wilson_matches_scipy_including_the_ends(k, n):
    stats = pytest.importorskip("scipy.stats")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = metrics.wilson(k, n)
    assert float(low) == pytest.approx(ci.low, abs=1e-12)
    assert float(high) == pytest.approx(ci.high, abs=1e-12)
    if k == 0:
        assert float(low) == 0.0
    if k == n:
        assert float(high) == 1.0


def test_wilson_hand_checked_values_and_no_denominator():
    # Hand-checked (Newcombe 1998, table I: 81/263 -> 0.2553-0.3662; 15/148 -> 0.0624-0.1605)
    low, high = metrics.wilson(np.array([81, 15, 0]), np.array([263, 148, 0]))
    assert low[:2] == pytest.approx([0.2553, 0.0624], abs=5e-5)
    assert high[:2] == pytest.approx([0.3662, 0.1605], abs=5e-5)
    assert (low[2], high[2]) == (0.0, 1.0)  # n = 0: nothing known, and no NaN in a JSON file


def test_every_group_carries_intervals_of_accuracy_precision_and_recall(sample):
    labels, probs, cats, nouns = sample
    report = metrics.compute(labels, probs, cats, nouns, CATS)
    for group in [report.overall, *report.by_category.values(), *report.by_noun_count.values(), *report.by_group.values()]:
        for name, k, n in (("accuracy", group.correct, group.count), ("precision", group.tp, group.tp + group.fp), ("recall", group.tp, group.tp + group.fn)):
            low, high = metrics.wilson(k, n)
            assert (getattr(group, f"{name}_low"), getattr(group, f"{name}_high")) == (float(low), float(high))
            assert getattr(group, f"{name}_low") <= getattr(group, name) <= getattr(group, f"{name}_high")
    names = metrics.metric_names(report, "test")
    assert names["test/by_group/dense/noun_15/accuracy_low"] == report.by_group[("dense", 15)].accuracy_low
    assert names["metrics/test/recall_high"] == report.overall.recall_high


def test_a_group_of_one_and_an_empty_split():
    one = metrics.compute(np.array([1.0], np.float32), np.array([0.9], np.float32), np.array([1]), np.array([8]), CATS)
    assert one.by_group[("dense", 8)].accuracy_low == pytest.approx(0.2065, abs=1e-4)  # 1 of 1
    assert one.by_group[("dense", 8)].accuracy_high == 1.0
    empty = metrics.compute(np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, int), np.zeros(0, int), CATS)
    assert empty.overall.count == 0 and (empty.overall.accuracy_low, empty.overall.accuracy_high) == (0.0, 1.0)
    assert empty.by_group == {} and empty.by_category == {}


def test_any_set_of_axes_breaks_down_from_the_one_joint_histogram(sample):
    labels, probs, cats, nouns = sample
    rng = np.random.default_rng(3)
    length = rng.integers(0, 4, len(labels))
    answerable = rng.random(len(labels)) < 0.8
    report = metrics.compute(
        labels, probs, cats, nouns, CATS,
        axes={"length": metrics.Axis(length, ("xs", "s", "m", "l")), "answerable": answerable},
    )
    assert report.axes == ("category", "noun_count", "length", "answerable")
    assert set(report.by_axis["length"]) == {"xs", "s", "m", "l"}
    correct = (probs >= 0.5) == (labels >= 0.5)
    for (cat, size, flag), group in report.breakdown("category", "length", "answerable").groups().items():
        rows = (cats == CATS.index(cat)) & (length == ("xs", "s", "m", "l").index(size)) & (answerable == bool(flag))
        assert group.count == rows.sum() and group.correct == correct[rows].sum()
    # asked in another order: the same groups, keyed in that order
    swapped = report.breakdown("answerable", "category").groups()
    assert swapped[(1, "dense")].count == ((answerable) & (cats == 1)).sum()
    names = metrics.metric_names(report, "test")
    assert names["test/by_length/m/count"] == (length == 2).sum()
    assert names["test/by_answerable/0/count"] == (~answerable).sum()
    assert report.by_group == metrics.compute(labels, probs, cats, nouns, CATS).by_group  # extra axes leave cells alone
    with pytest.raises(KeyError):
        report.breakdown("colour")


def test_a_bad_axis_is_refused_with_its_name():
    with pytest.raises(ValueError, match="'length'.*no label"):
        metrics.compute(np.zeros(2), np.zeros(2), np.zeros(2, int), np.zeros(2, int), CATS, axes={"length": (np.array([0, 2]), ("a", "b"))})
    with pytest.raises(ValueError, match="'length'.*codes for"):
        metrics.compute(np.zeros(2), np.zeros(2), np.zeros(2, int), np.zeros(2, int), CATS, axes={"length": np.array([0])})


def test_a_category_code_without_a_name_is_refused_with_its_axis():
    # category codes are not checked before scoring (the encoder writes them); a code past the
    # names lands past the histogram and is named, not a numpy broadcast error
    with pytest.raises(ValueError, match="'category': code 5 has no label \\(3 labels\\)"):
        metrics.compute(np.ones(4, np.float32), np.ones(4, np.float32), np.array([0, 1, 5, 0]), np.full(4, 8), CATS)


def test_every_extra_axis_is_a_column_of_the_kept_predictions(tmp_path):
    import json

    from qa_core.data.records import Example
    from qa_core.evaluation import write_eval
    from qa_core.predictions import read_predictions

    examples = [Example(f"r{i}", f"story {i}", "q?", i % 2 == 0, CATS[i % 3], 8) for i in range(6)]
    labels = np.array([e.answer for e in examples], np.float32)
    probs = np.array([0.9, 0.8, 0.2, 0.1, 0.6, 0.4], np.float32)
    length = metrics.Axis(np.array([0, 1, 1, 0, 1, 0]), ("short", "long"))
    report = metrics.compute(labels, probs, np.arange(6) % 3, np.full(6, 8), CATS, axes={"length": length})
    write_eval(tmp_path, report, examples, probs)
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [r["length"] for r in rows] == ["short", "long", "long", "short", "long", "short"]
    kept = read_predictions(tmp_path)
    assert kept.correct.tolist() == ((probs >= 0.5) == (labels >= 0.5)).tolist()
    assert kept.extra["length"].tolist() == [r["length"] for r in rows]
    assert json.loads((tmp_path / "metrics.json").read_text())["by_length"]["long"]["count"] == 3


# -------------------------------------------------------------------------------------------------
# the block kernel against a straightforward reference (the fast path's keys, lanes, buffers)
# -------------------------------------------------------------------------------------------------

LENGTHS = ("short", "mid", "long", "unused")


def edgy_split(n: int, seed: int, probs_dtype=np.float32):
    """Random predictions with the awkward values in: p exactly 0, 1, 0.5 and the threshold,
    soft labels, an unused category, noun counts with gaps, an axis label no row has."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.array([0.0, 1.0, 1.0, 0.0, 0.3, 0.5, 0.7], np.float32), n)
    probs = rng.random(n).astype(probs_dtype)
    special = rng.random(n) < 0.3
    probs[special] = rng.choice(np.array([0.0, 1.0, 0.5, 0.25, 1e-9, 1 - 1e-9], probs_dtype), int(special.sum()))
    cats = rng.choice([0, 2], n).astype(np.int32)  # "dense" (1) has no row: no group
    nouns = rng.choice([0, 1, 8, 30], n).astype(np.int32)
    length = rng.integers(0, 3, n)  # "unused" (3) has no row
    return labels, probs, cats, nouns, length


def straightforward(labels, probs, cats, nouns, length, threshold):
    """Per row: the outcome counts and the losses of every group, in plain Python."""
    losses = metrics.per_example_loss(labels, probs).tolist()  # the per-row definition
    groups: dict = {}
    for i, (y, p) in enumerate(zip(labels.tolist(), probs.tolist())):
        truth, said = y >= 0.5, p >= np.asarray(threshold, probs.dtype)
        row = (CATS[cats[i]], int(nouns[i]), LENGTHS[length[i]])
        for key in [("all",), ("category", row[0]), ("noun_count", row[1]), ("length", row[2]), ("cell", row[0], row[1])]:
            g = groups.setdefault(key, {"tn": 0, "fp": 0, "fn": 0, "tp": 0, "losses": []})
            g[("t" if said == truth else "f") + ("p" if said else "n")] += 1
            g["losses"].append(losses[i])
    return groups


def check_group(group, ref):
    assert (group.tn, group.fp, group.fn, group.tp) == (ref["tn"], ref["fp"], ref["fn"], ref["tp"])
    total = len(ref["losses"])
    assert group.count == total
    assert group.accuracy == (ref["tp"] + ref["tn"]) / total
    # the same float32 losses, summed in another order: equal to the exactly rounded sum
    assert group.loss == pytest.approx(math.fsum(ref["losses"]) / total, rel=1e-12, abs=0)
    low, high = metrics.wilson(ref["tp"] + ref["tn"], total)
    assert (group.accuracy_low, group.accuracy_high) == (float(low), float(high))


@pytest.mark.parametrize("n", [0, 1, 2, 37, 1000])
# the default block (one short block); blocks of 64 and 7 rows, where splits longer than a block
# count in lanes and end on a short block
@pytest.mark.parametrize("block", [None, 64, 7])
@pytest.mark.parametrize("threshold, probs_dtype", [(0.5, np.float32), (0.25, np.float32), (0.5, np.float64)])
def test_the_block_kernel_matches_a_straightforward_reference(n, block, threshold, probs_dtype, monkeypatch):
    if block is not None:
        monkeypatch.setattr(metrics, "_BLOCK", block)
    labels, probs, cats, nouns, length = edgy_split(n, seed=n + 11, probs_dtype=probs_dtype)
    report = metrics.compute(labels, probs, cats, nouns, CATS, threshold=threshold, axes={"length": metrics.Axis(length, LENGTHS)})
    ref = straightforward(labels, probs, cats, nouns, length, threshold)
    assert report.overall.count == n
    if n:
        check_group(report.overall, ref[("all",)])
    for axis, groups in report.by_axis.items():
        assert set(groups) == {key[1] for key in ref if key[0] == axis}  # an empty group has no entry
        for value, group in groups.items():
            check_group(group, ref[(axis, value)])
    assert set(report.by_group) == {key[1:] for key in ref if key[0] == "cell"}
    for cell, group in report.by_group.items():
        check_group(group, ref[("cell", *cell)])
    assert report.hist.sum() == n and report.hist.shape == (len(CATS), int(nouns.max()) + 1 if n else 1, len(LENGTHS), 4)
    assert not np.signbit(report.loss_sums).any()  # no -0.0 in a cell without rows


def test_one_dense_key_counts_the_same_in_lanes(monkeypatch):
    # every row in one cell and right: the case the lanes exist for (consecutive equal keys)
    monkeypatch.setattr(metrics, "_BLOCK", 16)
    n = 1001
    labels, probs = np.ones(n, np.float32), np.full(n, 0.875, np.float32)
    report = metrics.compute(labels, probs, np.zeros(n, np.int32), np.full(n, 8, np.int32), CATS)
    assert report.by_group == {("simple", 8): report.overall}
    assert (report.overall.tp, report.overall.count) == (n, n)
    assert report.overall.loss == pytest.approx(-math.log(0.875), rel=1e-7)
    without = metrics.compute(labels, probs, np.zeros(n, np.int32), np.full(n, 8, np.int32), CATS, with_loss=False)
    assert without.overall.loss == 0.0 and not np.signbit(without.loss_sums).any()


def test_threads_scoring_at_once_do_not_share_block_buffers(monkeypatch):
    # the block buffers are kept between calls, one set per thread; shared, these would mix
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(metrics, "_BLOCK", 256)
    splits = [edgy_split(5000, seed) for seed in range(6)]

    def score(split):
        labels, probs, cats, nouns, _ = split
        return metrics.compute(labels, probs, cats, nouns, CATS)

    alone = [score(split) for split in splits]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(score, splits * 4))
    for i, report in enumerate(together):
        assert np.array_equal(report.hist, alone[i % 6].hist)
        assert np.array_equal(report.loss_sums, alone[i % 6].loss_sums)
