"""Framework-agnostic metrics: numpy only, vectorised, one joint histogram for every breakdown.

A report is broken down by *record axes*: integer codes per prediction (the category code, the
noun count, and whatever else records carry: a length bucket, an "answerable" flag). Every
prediction gets one integer key, the row-major index of its codes over all axes, times 4, plus its
outcome (0 TN, 1 FP, 2 FN, 3 TP). A single ``np.bincount`` over those keys is the confusion matrix
of every joint cell at once; summing the joint histogram over the other axes gives the breakdown
by any set of axes (:meth:`MetricsReport.breakdown`). Adding an axis is data (one more entry in
``axes``), not code. Accuracy, precision, recall and F1 follow from the four counts of each group,
computed for all groups in one vector operation, and so do their Wilson 95% intervals
(:func:`wilson`). The loss is binary cross-entropy from the probabilities, so every framework is
scored by the same formula.

Metric *names* are built here too, by :func:`metric_names` and friends, and every tracker uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import threading
from functools import cached_property
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

#: Probabilities are clipped into [EPS, 1 - EPS] before the log, as Keras does.
EPS = 1e-7
_EPS32, _ONE_MINUS_EPS32 = np.float32(EPS), np.float32(1.0 - EPS)
DEFAULT_THRESHOLD = 0.5
#: Rows scored per block by :func:`compute`: a block's buffers and inputs (~44 bytes a row) fit a
#: 2 MB L2 cache; 32k and 64k were fastest of 16k-128k on 1M rows (docs/performance.md).
_BLOCK = 1 << 15
#: The two-sided 95% normal quantile, scipy.stats.norm.ppf(0.975).
Z95 = 1.959963984540054
#: The breakdown every report names per cell (``by_group``): category x noun count.
CELL_AXES = ("category", "noun_count")
#: Keys are int32 (4x cheaper than intp); the joint histogram must fit.
_MAX_KEYS = 1 << 30


def wilson(successes: Any, totals: Any, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (95% by default) of ``successes / totals``, elementwise.

    Chosen over the normal ("Wald") interval, which collapses to zero width at 0 of n and n of n
    and undercovers for small n, and over Clopper-Pearson, which is conservative (wider than 95%)
    and needs the beta quantile (scipy). The same as ``statsmodels.stats.proportion.
    proportion_confint(method="wilson")`` and ``scipy.stats.binomtest(k, n).proportion_ci(
    method="wilson")``. A total of 0 gives (0, 1): nothing is known."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(totals, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        z2_n = z * z / n
        denominator = 1.0 + z2_n
        centre = (p + z2_n / 2) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z2_n / (4 * n)) / denominator
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    empty = ~(n > 0)
    # The ends are exact: 0 of n has its lower bound at 0, n of n its upper at 1 (no rounding crumb).
    low = np.where(empty | (k <= 0), 0.0, low)
    high = np.where(empty | (k >= n), 1.0, high)
    return low, high


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
    # Wilson 95% intervals; a proportion with no denominator (precision with no "yes" said) has
    # value 0 and interval [0, 1].
    accuracy_low: float = 0.0
    accuracy_high: float = 1.0
    precision_low: float = 0.0
    precision_high: float = 1.0
    recall_low: float = 0.0
    recall_high: float = 1.0

    @property
    def errors(self) -> int:
        return self.fp + self.fn

    @property
    def correct(self) -> int:
        return self.tp + self.tn

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


#: The vector fields of :func:`group_arrays`, in GroupMetrics order.
_FIELDS = tuple(GroupMetrics.__dataclass_fields__)


def group_arrays(counts: np.ndarray, loss_sums: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every GroupMetrics field as a vector, one entry per row of ``counts`` ([g, 4]: TN FP FN TP):
    the whole breakdown in a handful of vector operations, intervals included."""
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 4)
    tn, fp, fn, tp = counts.T
    total = counts.sum(axis=1)
    said_yes, is_yes = tp + fp, tp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = np.where(total > 0, (tp + tn) / total, 0.0)
        precision = np.where(said_yes > 0, tp / said_yes, 0.0)
        recall = np.where(is_yes > 0, tp / is_yes, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        loss = np.where(total > 0, loss_sums / total, 0.0) if loss_sums is not None else np.zeros(len(total))
    # One interval call for the three proportions of every group.
    low, high = wilson(np.stack([tp + tn, tp, tp]), np.stack([total, said_yes, is_yes]))
    return {
        "count": total, "accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1, "loss": loss,
        "tn": tn, "fp": fp, "fn": fn, "tp": tp,
        "accuracy_low": low[0], "accuracy_high": high[0], "precision_low": low[1], "precision_high": high[1],
        "recall_low": low[2], "recall_high": high[2],
    }


def _groups(counts: np.ndarray, loss_sums: np.ndarray) -> list[GroupMetrics]:
    """GroupMetrics for each row of ``counts`` ([g, 4]: TN FP FN TP), computed as vectors."""
    arrays = group_arrays(counts, loss_sums)
    columns = [arrays[name].tolist() for name in _FIELDS]
    return [GroupMetrics(*row) for row in zip(*columns)]


@dataclass(frozen=True)
class Axis:
    """One record axis: a non-negative integer code per prediction, and the label of each code.

    ``labels=None`` means the code *is* the value (a noun count, a length bucket's lower bound):
    groups are keyed by the integer itself."""

    codes: np.ndarray
    labels: tuple[Any, ...] | None = None

    def size(self) -> int:
        if self.labels is not None:
            return len(self.labels)
        return int(self.codes.max()) + 1 if self.codes.size else 1

    def label(self, code: int) -> Any:
        return self.labels[code] if self.labels is not None else int(code)


def as_axis(value: Any) -> Axis:
    """An :class:`Axis` from an Axis, a ``(codes, labels)`` pair or a bare array of values."""
    if isinstance(value, Axis):
        axis = value
    elif isinstance(value, tuple) and len(value) == 2:
        axis = Axis(np.asarray(value[0]), None if value[1] is None else tuple(value[1]))
    else:
        axis = Axis(np.asarray(value))
    codes = axis.codes
    if codes.dtype == bool:
        codes = codes.view(np.int8)
    return Axis(np.asarray(codes, dtype=np.int32), axis.labels)


@dataclass(frozen=True)
class Breakdown:
    """Every non-empty group of a set of axes, as vectors: row ``i`` is group ``keys[i]``."""

    axes: tuple[str, ...]
    keys: list[tuple[Any, ...]]
    counts: np.ndarray  # int64 [g, 4]: TN FP FN TP
    loss_sums: np.ndarray  # float64 [g]

    def arrays(self) -> dict[str, np.ndarray]:
        """Every metric and interval as a vector over the groups (:func:`group_arrays`)."""
        return group_arrays(self.counts, self.loss_sums)

    def groups(self) -> dict[Any, GroupMetrics]:
        """``{key: GroupMetrics}``; a one-axis breakdown is keyed by the bare label."""
        keys = [key[0] for key in self.keys] if len(self.axes) == 1 else self.keys
        return dict(zip(keys, _groups(self.counts, self.loss_sums)))


@dataclass(frozen=True)
class MetricsReport:
    overall: GroupMetrics
    by_category: dict[str, GroupMetrics]
    by_noun_count: dict[int, GroupMetrics]
    by_group: dict[tuple[str, int], GroupMetrics]
    threshold: float
    #: The joint histogram: int64 [*axis sizes, 4], and the loss summed per joint cell.
    hist: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64), repr=False)
    loss_sums: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    #: Axis names in histogram order, and each axis's code labels (None: the code is the value).
    axes: tuple[str, ...] = ()
    labels: tuple[tuple[Any, ...] | None, ...] = ()
    #: Every axis's own breakdown: ``{"category": {...}, "noun_count": {...}, "length": {...}}``.
    by_axis: dict[str, dict[Any, GroupMetrics]] = field(default_factory=dict)
    #: The per-record axes scored (references to the caller's arrays, not copies).
    record_axes: dict[str, Axis] = field(default_factory=dict, repr=False)
    #: The scored labels and probabilities (references, not copies), for :attr:`misclassified`.
    scored: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: (np.zeros(0), np.zeros(0)), repr=False)

    @cached_property
    def misclassified(self) -> np.ndarray:
        """Row indices (into the scored split) whose prediction is wrong, in stored order.

        Found on first use, not while scoring: only the eval files need them, and the search is
        ~10% of scoring 1M predictions (every epoch's validation scoring skips it)."""
        labels, probs = self.scored
        return np.flatnonzero((np.asarray(labels) >= 0.5) != (np.asarray(probs) >= self.threshold))

    def record_labels(self, name: str) -> list[Any]:
        """Each record's label on axis ``name`` (its code, or the code's label)."""
        axis = self.record_axes[name]
        codes = axis.codes.tolist()
        return codes if axis.labels is None else [axis.labels[c] for c in codes]

    @property
    def accuracy(self) -> float:
        return self.overall.accuracy

    @property
    def loss(self) -> float:
        return self.overall.loss

    def breakdown(self, *names: str) -> Breakdown:
        """The groups of any set of axes (in the given order), summed from the joint histogram;
        a group no prediction fell into has no row."""
        return breakdown(self.hist, self.loss_sums, self.axes, self.labels, names)

    def to_json(self) -> dict[str, Any]:
        out = {
            "threshold": self.threshold,
            "interval": "wilson 95%",
            "overall": self.overall.to_json(),
            "by_category": {cat: m.to_json() for cat, m in self.by_category.items()},
            "by_noun_count": {str(n): m.to_json() for n, m in self.by_noun_count.items()},
            "by_group": {f"{cat}/noun_{n}": m.to_json() for (cat, n), m in self.by_group.items()},
        }
        for axis, groups in self.by_axis.items():
            if axis not in CELL_AXES:
                out[f"by_{axis}"] = {str(key): m.to_json() for key, m in groups.items()}
        return out


def breakdown(
    hist: np.ndarray, loss_sums: np.ndarray, axes: Sequence[str], labels: Sequence[tuple[Any, ...] | None], names: Sequence[str]
) -> Breakdown:
    """The groups of the axes ``names`` (in that order) from a joint histogram over ``axes``."""
    unknown = [name for name in names if name not in axes]
    if unknown:
        raise KeyError(f"no axis {unknown[0]!r} in this report (axes: {', '.join(axes)})")
    order = [list(axes).index(name) for name in names]
    others = tuple(i for i in range(len(axes)) if i not in order)
    hist, loss = hist.sum(axis=others), loss_sums.sum(axis=others)
    if not order:
        return Breakdown((), [()], hist.reshape(1, 4), np.asarray(loss, dtype=np.float64).reshape(1))
    kept = sorted(order)
    perm = [kept.index(a) for a in order]  # the summed histogram's axes into the asked order
    hist, loss = hist.transpose(*perm, len(order)), loss.transpose(*perm)
    present = np.nonzero(hist.sum(axis=-1))
    columns = [
        idx.tolist() if labels[a] is None else [labels[a][c] for c in idx.tolist()]
        for a, idx in zip(order, present)
    ]
    return Breakdown(tuple(names), list(zip(*columns)), hist[present], loss[present])



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


def record_axes(
    categories: np.ndarray | None,
    noun_counts: np.ndarray | None,
    category_names: Sequence[str],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Axis]:
    """The axes of a scoring: category (coded into ``category_names``) and noun count when given,
    then every ``extra`` axis (an :class:`Axis`, ``(codes, labels)`` or an array of values)."""
    axes: dict[str, Axis] = {}
    if categories is not None:
        axes["category"] = Axis(np.asarray(categories, dtype=np.int32), tuple(category_names))
    if noun_counts is not None:
        axes["noun_count"] = Axis(np.asarray(noun_counts, dtype=np.int32))
    for name, value in (extra or {}).items():
        if name in axes:
            raise ValueError(f"axis {name!r} given twice")
        axis = as_axis(value)
        if axis.codes.size and int(axis.codes.min()) < 0:
            raise ValueError(f"axis {name!r}: codes must be non-negative integers")
        if axis.labels is not None and axis.codes.size and int(axis.codes.max()) >= len(axis.labels):
            raise ValueError(f"axis {name!r}: code {int(axis.codes.max())} has no label ({len(axis.labels)} labels)")
        axes[name] = axis
    return axes


class _CodeBeyondAxis(Exception):
    """A row's code is past its axis's labels (its key past the histogram); compute names it."""


def _beyond_axis(axes: Mapping[str, Axis]) -> str:
    """The line for a code past its axis's labels, found only once one was seen."""
    for name, axis in axes.items():
        if axis.labels is not None and axis.codes.size and int(axis.codes.max()) >= len(axis.labels):
            return f"axis {name!r}: code {int(axis.codes.max())} has no label ({len(axis.labels)} labels)"
    return "a record axis code is past its axis's size"


class _Buffers:
    """The scratch arrays of one block, allocated once per scoring and reused by every block, so
    they stay in the CPU cache (a fresh temporary per operation would cost a new buffer each).
    Two 4-byte buffers serve twice: the int32 key and its term, then the float32 likelihood and
    its log; ~28 bytes a row in all, so a block and its 16 bytes a row of input fit a 2 MB L2."""

    def __init__(self, rows: int, lanes: int) -> None:
        self.lanes = lanes
        self.truth = np.empty(rows, dtype=bool)
        self.predicted = np.empty(rows, dtype=bool)
        self.truth8, self.predicted8 = self.truth.view(np.int8), self.predicted.view(np.int8)  # to add
        self.outcome = np.empty(rows, dtype=np.int8)
        # Row i's lane (i % lanes), pre-scaled to its place in the key: lane * 4.
        self.lane = ((np.arange(rows) % lanes) * 4).astype(np.int8)
        # Keys are built in int32 (half the bytes of intp; a mixed-type ufunc is slower still),
        # then converted once for the two bincounts, which count in intp (an int32 key would be
        # converted inside each call).
        self.key32 = np.empty(rows, dtype=np.int32)
        self.term = np.empty(rows, dtype=np.int32)
        self.key = np.empty(rows, dtype=np.intp)
        self.likelihood = self.key32.view(np.float32)
        self.log32 = self.term.view(np.float32)
        self.log = np.empty(rows, dtype=np.float64)

    def head(self, rows: int) -> "_Buffers":
        """The same buffers cut to the first ``rows`` (for the last, shorter block)."""
        cut = object.__new__(_Buffers)
        cut.__dict__ = {name: value[:rows] if isinstance(value, np.ndarray) else value for name, value in self.__dict__.items()}
        return cut


_scratch = threading.local()


def _buffers(lanes: int) -> _Buffers:
    """This thread's block buffers for ``lanes``, kept between scorings (~1 MB): fresh ones are
    page-faulted in by every call, which costs a quarter of scoring a 32k-row split."""
    cache = _scratch.__dict__.setdefault("by_lanes", {})
    buffers = cache.get(lanes)
    if buffers is None or buffers.lane.shape[0] != _BLOCK:
        buffers = cache[lanes] = _Buffers(_BLOCK, lanes)
    return buffers


def _lanes(n_cells: int) -> int:
    """Sub-histograms per cell: consecutive rows count into different bins (row i into lane
    i % 4), so a split where most rows share one key (one cell and a model that is nearly always
    right) does not chain every increment on the one before: 1M rows of one key 6.7 -> 1.1 ms,
    no cost when keys are mixed. Only for small histograms: each block's bincount output grows
    with the lanes, and only a few keys can be that dense."""
    return 4 if n_cells <= 256 else 1


def _block_keys(codes: Sequence[np.ndarray], strides: Sequence[np.int32], buf: _Buffers) -> np.ndarray:
    """Each row's key into the joint histogram, ``sum(code * stride) + lane * 4 + outcome``
    (the outcome and lane already in ``buf.outcome``), as intp, what np.bincount counts in."""
    if not codes:
        np.copyto(buf.key, buf.outcome)
        return buf.key
    key32, term = buf.key32, buf.term
    np.multiply(codes[0], strides[0], out=key32)
    for axis_codes, stride in zip(codes[1:], strides[1:]):
        np.multiply(axis_codes, stride, out=term)
        key32 += term
    key32 += buf.outcome
    np.copyto(buf.key, key32)
    return buf.key


def _log_likelihood(truth: np.ndarray, probs: np.ndarray, buf: _Buffers) -> np.ndarray:
    """log of each row's likelihood of its true answer (minus its loss): the same float32 values
    as ``-per_example_loss``, then converted into float64, the type np.bincount sums in (the
    conversion inside bincount is a slow generic cast; so is a float32 log into float64)."""
    likelihood, is_no = buf.likelihood, buf.log32  # (the log overwrites is_no once it is used)
    np.logical_not(truth, out=buf.predicted)  # (the prediction is already in the outcome)
    np.copyto(is_no, buf.predicted)  # 0.0 for a yes, 1.0 for a no
    np.subtract(probs, is_no, out=likelihood)  # p for a yes, p - 1 for a no
    np.abs(likelihood, out=likelihood)
    likelihood.clip(_EPS32, _ONE_MINUS_EPS32, out=likelihood)  # (np.clip's wrapper costs 2x per block)
    np.log(likelihood, out=buf.log32)
    np.copyto(buf.log, buf.log32)
    return buf.log


def _joint_histogram(
    labels: np.ndarray, probs: np.ndarray, axes: Sequence[Axis], sizes: Sequence[int], threshold: float, with_loss: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(outcome counts [cells * 4], loss sums [cells]) over the joint cells.

    Each row gets one key, ``cell * 4 * lanes + lane * 4 + outcome``, and each block of rows two
    bincounts over the same keys: one counts, one sums the log-likelihood. Every temporary lives
    in a reused block-sized buffer (:class:`_Buffers`)."""
    n_cells = int(np.prod(sizes, dtype=np.int64))
    rows = labels.shape[0]
    lanes = _lanes(n_cells) if rows > _BLOCK else 1
    width = 4 * lanes  # keys per cell
    strides = [np.int32(np.prod(sizes[i + 1:], dtype=np.int64) * width) for i in range(len(sizes))]
    n_keys = n_cells * width
    hist = np.zeros(n_keys, dtype=np.int64)
    log_sums = np.zeros(n_keys)
    # The loss is computed in float32 (the log is its most expensive step, and half the width is
    # almost twice as fast); the outcome compares the probabilities as given.
    probs32 = np.asarray(probs, dtype=np.float32) if with_loss else probs
    full = _buffers(lanes)
    for start in range(0, rows, _BLOCK):
        block = slice(start, start + _BLOCK)
        buf = full if rows - start >= _BLOCK else full.head(rows - start)
        truth = np.greater_equal(labels[block], 0.5, out=buf.truth)
        np.greater_equal(probs[block], threshold, out=buf.predicted)
        outcome = buf.outcome
        np.add(buf.truth8, buf.truth8, out=outcome)  # 0 TN, 1 FP, 2 FN, 3 TP
        outcome += buf.predicted8
        outcome += buf.lane
        key = _block_keys([axis.codes[block] for axis in axes], strides, buf)
        counts = np.bincount(key, minlength=n_keys)
        if counts.shape[0] > n_keys:
            raise _CodeBeyondAxis  # a code past its labels (category codes are not checked up front)
        hist += counts
        if with_loss:
            log_sums += np.bincount(key, weights=_log_likelihood(truth, probs32[block], buf), minlength=n_keys)
    counts = hist if lanes == 1 else hist.reshape(n_cells, lanes, 4).sum(axis=1).reshape(-1)
    # The loss is minus the log-likelihood: negating a sum is exact, so it is done once per cell
    # (as 0 - sum, so that a cell without rows has +0.0, not -0.0).
    return counts, np.subtract(0.0, log_sums.reshape(n_cells, width).sum(axis=1))


def compute(
    labels: np.ndarray,
    probs: np.ndarray,
    categories: np.ndarray | None = None,
    noun_counts: np.ndarray | None = None,
    category_names: Sequence[str] = (),
    threshold: float = DEFAULT_THRESHOLD,
    with_loss: bool = True,
    *,
    axes: Mapping[str, Any] | None = None,
) -> MetricsReport:
    """Every metric with its interval, overall and per group of every axis and per cell, from one
    joint histogram. ``axes`` adds record axes beside category and noun count, e.g.
    ``axes={"length": Axis(buckets, ("short", "long")), "answerable": flags}``."""
    labels = np.asarray(labels)
    probs = np.asarray(probs)
    if probs.shape != labels.shape:
        raise ValueError(f"{probs.shape[0] if probs.ndim else 0} probabilities for {labels.shape[0]} labels")
    all_axes = record_axes(categories, noun_counts, category_names, axes)
    for name, axis in all_axes.items():
        if axis.codes.shape != labels.shape:
            raise ValueError(f"axis {name!r}: {axis.codes.shape[0] if axis.codes.ndim else 0} codes for {labels.shape[0]} labels")
    sizes = [axis.size() for axis in all_axes.values()]
    if int(np.prod(sizes, dtype=np.int64)) * 4 > _MAX_KEYS:
        raise ValueError(f"the joint histogram of axes {dict(zip(all_axes, sizes))} is too large; bucket an axis")
    try:
        hist, loss_cells = _joint_histogram(labels, probs, list(all_axes.values()), sizes, threshold, with_loss)
    except _CodeBeyondAxis:
        raise ValueError(_beyond_axis(all_axes)) from None
    names = tuple(all_axes)
    code_labels = tuple(axis.labels for axis in all_axes.values())
    hist, loss_cells = hist.reshape(*sizes, 4), loss_cells.reshape(sizes)

    wanted = [(), *((name,) for name in names)] + ([CELL_AXES] if all(a in names for a in CELL_AXES) else [])
    parts = [breakdown(hist, loss_cells, names, code_labels, axis_names) for axis_names in wanted]
    # One vector pass over the groups of every breakdown at once: a few dozen numpy calls in all,
    # not per breakdown (on small splits, scored every epoch, that constant is the whole cost).
    metrics = _groups(np.concatenate([p.counts for p in parts]), np.concatenate([p.loss_sums for p in parts]))
    ends = np.cumsum([len(p.keys) for p in parts]).tolist()
    grouped = [
        dict(zip([k[0] for k in p.keys] if len(p.axes) == 1 else p.keys, metrics[start:end]))
        for p, start, end in zip(parts, [0, *ends], ends)
    ]
    overall = grouped[0][()]
    by_axis = dict(zip(names, grouped[1 : len(names) + 1]))
    by_group = grouped[len(names) + 1] if len(grouped) > len(names) + 1 else {}
    return MetricsReport(
        overall, by_axis.get("category", {}), by_axis.get("noun_count", {}), by_group, threshold,
        hist, loss_cells, names, code_labels, by_axis, all_axes, (labels, probs),
    )


def split_axes(split: Any) -> dict[str, Any]:
    """The record axes an encoded split carries beyond category and noun count: its ``axes``
    mapping (name -> :class:`Axis` or codes), when it has one."""
    return dict(getattr(split, "axes", None) or {})


def compute_for_split(split: Any, probs: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> MetricsReport:
    """:func:`compute` over an :class:`~qa_core.types.EncodedSplit`, with every axis it carries."""
    return compute(split.labels, probs, split.categories, split.noun_counts, split.category_names, threshold, axes=split_axes(split))


# -------------------------------------------------------------------------------------------------
# Names: one place builds every metric name; every tracker (local files, Neptune, ...) uses them.
# -------------------------------------------------------------------------------------------------

#: Interval bounds are named ``<metric>_low`` / ``<metric>_high`` beside the metric.
INTERVAL_FIELDS = ("accuracy_low", "accuracy_high", "precision_low", "precision_high", "recall_low", "recall_high")
OVERALL_FIELDS = ("loss", "accuracy", "precision", "recall", "f1", "count", *INTERVAL_FIELDS)
GROUP_FIELDS = ("accuracy", "count", "loss", "accuracy_low", "accuracy_high")


def metric_names(report: MetricsReport, split: str) -> dict[str, float]:
    """Flatten a report into ``{name: value}`` under the shared namespaces: overall, per category,
    per noun count, per cell (``by_group``) and per group of every other axis (``by_<axis>``)."""
    out: dict[str, float] = {f"metrics/{split}/{field}": getattr(report.overall, field) for field in OVERALL_FIELDS}
    for field in ("tn", "fp", "fn", "tp"):
        out[f"{split}/confusion/{field}"] = getattr(report.overall, field)
    by_axis = report.by_axis or {"category": report.by_category, "noun_count": report.by_noun_count}
    for axis, groups in by_axis.items():
        for key, group in groups.items():
            for field in GROUP_FIELDS:
                out[f"{split}/by_{axis}/{key}/{field}"] = getattr(group, field)
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
