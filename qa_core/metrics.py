"""Framework-agnostic metrics: numpy only, vectorised, one joint histogram for every breakdown.

Every prediction gets one integer key, ``((category * N + noun_count) * 4 + outcome)`` where
outcome is 0 TN, 1 FP, 2 FN, 3 TP. A single ``np.bincount`` over those keys is the confusion matrix
of every category x noun-count cell at once; summing its axes gives the per-category, per-noun-count
and overall matrices. Accuracy, precision, recall and F1 follow from the four counts of each group,
computed for all groups in one vector operation. The loss is binary cross-entropy from the
probabilities, so every framework is scored by the same formula.

Metric *names* are built here too, by :func:`metric_names` and friends, and every tracker uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

#: Probabilities are clipped into [EPS, 1 - EPS] before the log, as Keras does.
EPS = 1e-7
DEFAULT_THRESHOLD = 0.5
#: Rows scored per block by :func:`compute` (fastest of 16k-256k, measured on 1M and 10M rows).
_BLOCK = 1 << 17


@dataclass(frozen=True)
class GroupMetrics:
    count: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    loss: float
    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def errors(self) -> int:
        return self.fp + self.fn

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class MetricsReport:
    overall: GroupMetrics
    by_category: dict[str, GroupMetrics]
    by_noun_count: dict[int, GroupMetrics]
    by_group: dict[tuple[str, int], GroupMetrics]
    threshold: float
    #: Row indices (into the scored split) whose prediction is wrong, in stored order.
    misclassified: np.ndarray

    @property
    def accuracy(self) -> float:
        return self.overall.accuracy

    @property
    def loss(self) -> float:
        return self.overall.loss

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "overall": self.overall.to_json(),
            "by_category": {cat: m.to_json() for cat, m in self.by_category.items()},
            "by_noun_count": {str(n): m.to_json() for n, m in self.by_noun_count.items()},
            "by_group": {f"{cat}/noun_{n}": m.to_json() for (cat, n), m in self.by_group.items()},
        }


def _groups(counts: np.ndarray, loss_sums: np.ndarray) -> list[GroupMetrics]:
    """GroupMetrics for each row of ``counts`` ([g, 4]: TN FP FN TP), computed as vectors."""
    counts = counts.astype(np.int64)
    tn, fp, fn, tp = counts.T
    total = counts.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = np.where(total > 0, (tp + tn) / total, 0.0)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        loss = np.where(total > 0, loss_sums / total, 0.0)
    return [
        GroupMetrics(int(n), float(a), float(p), float(r), float(f), float(l), int(a0), int(a1), int(a2), int(a3))
        for n, a, p, r, f, l, a0, a1, a2, a3 in zip(
            total.tolist(), accuracy.tolist(), precision.tolist(), recall.tolist(), f1.tolist(),
            loss.tolist(), tn.tolist(), fp.tolist(), fn.tolist(), tp.tolist(),
        )
    ]


def per_example_loss(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Binary cross-entropy of each prediction (natural log), probabilities clipped by EPS.

    float32 throughout: the log is the most expensive step of scoring, and half the width is
    almost twice as fast; sums are taken in float64 by the caller. The likelihood of the true
    answer is ``|p - (1 - y)|`` (p for a yes, 1 - p for a no: the same float32 values as
    ``np.where(y, p, 1 - p)``), computed in place, which is ~7x faster than the select."""
    p = np.asarray(probs, dtype=np.float32)
    likelihood = (np.asarray(labels) >= 0.5).astype(np.float32)
    likelihood -= np.float32(1.0)
    likelihood += p
    np.abs(likelihood, out=likelihood)
    np.clip(likelihood, EPS, 1.0 - EPS, out=likelihood)
    np.log(likelihood, out=likelihood)
    np.negative(likelihood, out=likelihood)
    return likelihood


def compute(
    labels: np.ndarray,
    probs: np.ndarray,
    categories: np.ndarray,
    noun_counts: np.ndarray,
    category_names: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
    with_loss: bool = True,
) -> MetricsReport:
    """Every metric, overall and per category / noun count / cell, from one histogram."""
    labels = np.asarray(labels)
    probs = np.asarray(probs)
    if probs.shape != labels.shape:
        raise ValueError(f"{probs.shape[0] if probs.ndim else 0} probabilities for {labels.shape[0]} labels")
    categories = np.asarray(categories, dtype=np.int32)
    nouns = np.asarray(noun_counts, dtype=np.int32)
    n_cat = len(category_names)
    n_noun = int(nouns.max()) + 1 if nouns.size else 1
    n_cells = n_cat * n_noun
    hist = np.zeros(n_cells * 4, dtype=np.int64)
    loss_cells = np.zeros(n_cells)
    wrong = [np.zeros(0, dtype=np.intp)]
    # In blocks: every temporary of a block stays in the CPU cache and is recycled by the
    # allocator; whole-array temporaries cost a fresh page-faulted buffer each. 1M rows: 9.4 ms
    # whole, 4.6 ms in blocks; 10M: 88 ms -> 49 ms (benchmarks/grouped_metrics.py).
    for start in range(0, labels.shape[0], _BLOCK):
        stop = start + _BLOCK
        truth = labels[start:stop] >= 0.5
        predicted = probs[start:stop] >= threshold
        outcome = truth.view(np.int8) * np.int8(2) + predicted.view(np.int8)
        # int32 keys: the key range is tiny, and int32 arithmetic is ~4x cheaper than intp.
        cell = categories[start:stop] * np.int32(n_noun) + nouns[start:stop]
        hist += np.bincount(cell * np.int32(4) + outcome, minlength=n_cells * 4)
        if with_loss:
            # float64 weights given explicitly: bincount's own float32 -> float64 conversion is a
            # slow generic cast (~3x the whole bincount); the sums are the same either way.
            weights = per_example_loss(truth, probs[start:stop]).astype(np.float64)
            loss_cells += np.bincount(cell, weights=weights, minlength=n_cells)
        block_wrong = np.flatnonzero(truth != predicted)
        block_wrong += start
        wrong.append(block_wrong)
    hist = hist.reshape(n_cat, n_noun, 4)
    loss_cells = loss_cells.reshape(n_cat, n_noun)

    overall = _groups(hist.sum(axis=(0, 1))[None, :], loss_cells.sum(keepdims=True).reshape(1))[0]
    by_cat_counts = hist.sum(axis=1)
    present_cats = np.flatnonzero(by_cat_counts.sum(axis=1))
    by_category = dict(
        zip(
            (category_names[i] for i in present_cats),
            _groups(by_cat_counts[present_cats], loss_cells.sum(axis=1)[present_cats]),
        )
    )
    by_noun_counts = hist.sum(axis=0)
    present_nouns = np.flatnonzero(by_noun_counts.sum(axis=1))
    by_noun_count = dict(
        zip(present_nouns.tolist(), _groups(by_noun_counts[present_nouns], loss_cells.sum(axis=0)[present_nouns]))
    )
    cat_idx, noun_idx = np.nonzero(hist.sum(axis=2))
    by_group = dict(
        zip(
            ((category_names[c], int(n)) for c, n in zip(cat_idx.tolist(), noun_idx.tolist())),
            _groups(hist[cat_idx, noun_idx], loss_cells[cat_idx, noun_idx]),
        )
    )
    return MetricsReport(overall, by_category, by_noun_count, by_group, threshold, np.concatenate(wrong))


def compute_for_split(split: Any, probs: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> MetricsReport:
    """:func:`compute` over an :class:`~qa_core.types.EncodedSplit`."""
    return compute(split.labels, probs, split.categories, split.noun_counts, split.category_names, threshold)


# -------------------------------------------------------------------------------------------------
# Names: one place builds every metric name; every tracker (local files, Neptune, ...) uses them.
# -------------------------------------------------------------------------------------------------

OVERALL_FIELDS = ("loss", "accuracy", "precision", "recall", "f1", "count")
GROUP_FIELDS = ("accuracy", "count", "loss")


def metric_names(report: MetricsReport, split: str) -> dict[str, float]:
    """Flatten a report into ``{name: value}`` under the shared namespaces."""
    out: dict[str, float] = {f"metrics/{split}/{field}": getattr(report.overall, field) for field in OVERALL_FIELDS}
    for field in ("tn", "fp", "fn", "tp"):
        out[f"{split}/confusion/{field}"] = getattr(report.overall, field)
    for cat, group in report.by_category.items():
        for field in GROUP_FIELDS:
            out[f"{split}/by_category/{cat}/{field}"] = getattr(group, field)
    for noun, group in report.by_noun_count.items():
        for field in GROUP_FIELDS:
            out[f"{split}/by_noun_count/{noun}/{field}"] = getattr(group, field)
    for (cat, noun), group in report.by_group.items():
        for field in GROUP_FIELDS:
            out[f"{split}/by_group/{cat}/noun_{noun}/{field}"] = getattr(group, field)
    return out


def train_metric_names(loss: float, accuracy: float) -> dict[str, float]:
    return {"metrics/train/loss": loss, "metrics/train/accuracy": accuracy}


def best_names(epoch: int, accuracy: float, loss: float, checkpoint: str) -> dict[str, Any]:
    return {"best/epoch": epoch, "best/accuracy": accuracy, "best/loss": loss, "best/checkpoint": checkpoint}


def top_epoch_names(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``top_epochs/<rank>/{epoch,accuracy,loss,checkpoint}`` for the current top-k, rank from 1."""
    out: dict[str, Any] = {}
    for rank, entry in enumerate(entries, start=1):
        for field in ("epoch", "accuracy", "loss", "checkpoint"):
            out[f"top_epochs/{rank}/{field}"] = entry[field]
    return out
