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
