"""`qa data audit`: can a cheap cue answer the questions without reading the story for real?

For every (category, noun count) cell the audit runs a battery of *cues*, each a guess at the
answer from surface features only, and scores it on records it was not fitted on:

    last_place      yes iff the asked place is the last place the story mentions
    first_place     yes (or no) iff the asked place is the first place mentioned
    place_count     yes (or no) iff the asked place is mentioned at least as often as any other place
    entity_count    yes (or no) iff the asked entity is mentioned more often than the cell's median
    question_only   a linear (ridge) classifier on the question's words alone
    bag_of_words    a linear (ridge) classifier on hashed words and bigrams of the story and the
                    question, and of the sentences that name the asked place
    learned         logistic regression on position and count features of the asked place (count,
                    lead over the next place, share, first/last sentence, last/first among places,
                    and their pairwise products) and of the entity (count, first/last sentence)

"Places" are the words any question of the cell asks about (``Is X in the P?``), so the audit
works for generated, bAbI and other English records alike. Every cue is fitted on one set of
records and scored on another: a data directory's train split and its test split, or for a
single file its two halves (fit on the first, score the second). A rule cue fits only its
direction (yes or no when the rule holds). Scored records are independent of the fit, so each
accuracy is a plain binomial proportion. (Cross-fitting, fit on each half and score the other,
scores twice as many records but the two halves' errors are correlated, so its intervals lie.)
Pairing a place feature with the entity's own positions ("the asked place is named in the
entity's last sentence") is left out: that is the reading the task asks for, not a shortcut.

Each accuracy comes with a 95% Wilson interval *simultaneous* over all the audit's cue x cell
tests (Bonferroni): with 63 tests, a plain 95% interval would miss 0.5 about three times in
every clean audit. Chance is the better constant answer on the scored records (0.5 for a
balanced cell). A cue whose interval lies above chance (or below one minus chance: a cue that
is reliably wrong is a cue too) is a **shortcut**; ``--strict`` exits 1 when there is any.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from statistics import NormalDist
from typing import Iterable, Sequence

import numpy as np

from .records import Example

CUES = ("last_place", "first_place", "place_count", "entity_count", "question_only", "bag_of_words", "learned")
_RULES = {"last_place": 0, "first_place": 1, "place_count": 2}  # columns of the rule matrix
_QUESTION = re.compile(r"^\s*is\s+(?:the\s+)?(?P<entity>[a-z]+)\s+in\s+the\s+(?P<place>[a-z]+)\s*\?\s*$", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")
_SENTENCE_END = re.compile(r"[.!?]")
HASH_DIMS = 256
FAMILY_LEVEL = 0.05


@dataclass(frozen=True)
class CueResult:
    category: str
    noun_count: int
    cue: str
    count: int
    correct: int
    low: float
    high: float
    chance: float = 0.5  # the better constant answer's accuracy on the scored records

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")

    @property
    def shortcut(self) -> bool:
        """Beats always answering the more common answer, or is reliably wrong (an inverted cue)."""
        return self.count > 0 and (self.low > self.chance or self.high < 1 - self.chance)


@dataclass(frozen=True)
class AuditReport:
    results: tuple[CueResult, ...]
    skipped: int  # records whose question is not "Is X in the P?"
    level: float  # the per-test level after the Bonferroni correction

    @property
    def shortcuts(self) -> list[CueResult]:
        return [r for r in self.results if r.shortcut]

    def max_deviation(self) -> float:
        return max((abs(r.accuracy - 0.5) for r in self.results if r.count), default=0.0)


def wilson(correct: int, count: int, level: float = 0.05) -> tuple[float, float]:
    """The Wilson score interval of ``correct / count`` at two-sided ``level``."""
    if count == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(1 - level / 2)
    p = correct / count
    denominator = 1 + z * z / count
    centre = (p + z * z / (2 * count)) / denominator
    half = z * np.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


# -- features ------------------------------------------------------------------------------------


@dataclass
class _Cell:
    labels: np.ndarray  # bool [n]
    rules: np.ndarray  # bool [n, 3]: asked place is last / first / most mentioned
    entity_counts: np.ndarray  # float [n]
    numeric: np.ndarray  # float [n, k]: position and count features of the asked place
    entity: np.ndarray  # float [n, 3]: the entity's count and first/last sentence
    question_words: list[list[str]]
    story_words: list[list[str]]


def _features(examples: Sequence[Example], places: frozenset[str]) -> _Cell:
    rules, entity_counts, numeric, entity_rows, question_words, story_words = [], [], [], [], [], []
    for example in examples:
        match = _QUESTION.match(example.question)
        entity, asked = match["entity"].lower(), match["place"].lower()
        sentences = [_WORD.findall(s.lower()) for s in _SENTENCE_END.split(example.story) if s.strip()]
        mentions = [(i, w) for i, words in enumerate(sentences) for w in words if w in places]
        counts: dict[str, int] = {}
        for _, word in mentions:
            counts[word] = counts.get(word, 0) + 1
        asked_at = [i for i, w in mentions if w == asked]
        entity_at = [i for i, words in enumerate(sentences) for w in words if w == entity]
        n = max(1, len(sentences))
        others = max((c for w, c in counts.items() if w != asked), default=0)
        own = counts.get(asked, 0)
        is_last = bool(mentions) and mentions[-1][1] == asked
        is_first = bool(mentions) and mentions[0][1] == asked
        rules.append((is_last, is_first, own >= others and own > 0))
        entity_counts.append(len(entity_at))
        numeric.append(
            (
                own,
                own - others,
                own / max(1, len(mentions)),
                (asked_at[0] + 1) / n if asked_at else 0.0,
                (asked_at[-1] + 1) / n if asked_at else 0.0,
                float(is_last),
                float(is_first),
                n,
                len(counts),
            )
        )
        entity_rows.append((len(entity_at), (entity_at[0] + 1) / n if entity_at else 0.0, (entity_at[-1] + 1) / n if entity_at else 0.0))
        question_words.append(_WORD.findall(example.question.lower()))
        context = [w for words in sentences if asked in words for w in words]
        story_words.append([w for words in sentences for w in words] + ["?"] + question_words[-1] + ["#"] + context)
    return _Cell(
        labels=np.fromiter((e.answer for e in examples), dtype=bool, count=len(examples)),
        rules=np.array(rules, dtype=bool).reshape(-1, 3),
        entity_counts=np.array(entity_counts, dtype=np.float64),
        numeric=np.array(numeric, dtype=np.float64).reshape(len(examples), -1),
        entity=np.array(entity_rows, dtype=np.float64).reshape(len(examples), 3),
        question_words=question_words,
        story_words=story_words,
    )


def _hashed(bags: list[list[str]], bigrams: bool) -> np.ndarray:
    """Bags of words (and bigrams) hashed into HASH_DIMS columns; crc32, so the same on any run."""
    out = np.zeros((len(bags), HASH_DIMS), dtype=np.float64)
    cache: dict[str, int] = {}
    for row, words in enumerate(bags):
        grams = words + [a + " " + b for a, b in zip(words, words[1:])] if bigrams else words
        for gram in grams:
            column = cache.get(gram)
            if column is None:
                column = cache[gram] = zlib.crc32(gram.encode()) % HASH_DIMS
            out[row, column] += 1.0
    return np.log1p(out)


def _with_products(x: np.ndarray) -> np.ndarray:
    upper = np.triu_indices(x.shape[1], 1)
    return np.hstack([x, (x[:, :, None] * x[:, None, :])[:, upper[0], upper[1]]])


# -- models --------------------------------------------------------------------------------------


def _logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 12) -> tuple[np.ndarray, np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method on standardised features."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    target = y.astype(np.float64)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
        gradient = z.T @ (p - target) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return mean, scale, w  # type: ignore[return-value]


def _ridge(x: np.ndarray, y: np.ndarray, l2: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ridge-regression classifier (least squares on -1/+1 targets): one solve, for the wide
    hashed bags of words, where Newton steps would cost a solve each."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    w = np.linalg.solve(z.T @ z + np.diag(penalty + 1e-9), z.T @ (2.0 * y - 1.0))
    return mean, scale, w


def _predict(model: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    mean, scale, w = model
    return np.hstack([(x - mean) / scale, np.ones((len(x), 1))]) @ w > 0


def _rule(feature: np.ndarray, labels: np.ndarray):
    def fit_predict(fit: np.ndarray, score: np.ndarray) -> np.ndarray:
        agree = np.mean(feature[fit] == labels[fit]) if len(fit) else 0.5
        return feature[score] if agree >= 0.5 else ~feature[score]

    return fit_predict


def _model(x: np.ndarray, labels: np.ndarray, fitter=_logistic):
    def fit_predict(fit: np.ndarray, score: np.ndarray) -> np.ndarray:
        if len(np.unique(labels[fit])) < 2:
            return np.full(len(score), bool(labels[fit][0]) if len(fit) else True)
        return _predict(fitter(x[fit], labels[fit]), x[score])

    return fit_predict


def _cue_predictions(cell: _Cell, fit: np.ndarray, score: np.ndarray) -> dict[str, np.ndarray]:
    """Each cue's guesses for the ``score`` rows, fitted on the ``fit`` rows."""
    y = cell.labels
    out = {name: _rule(cell.rules[:, column], y)(fit, score) for name, column in _RULES.items()}
    median = np.median(cell.entity_counts[fit]) if len(fit) else 0.0
    out["entity_count"] = _rule(cell.entity_counts > median, y)(fit, score)
    out["question_only"] = _model(_hashed(cell.question_words, bigrams=False), y, _ridge)(fit, score)
    out["bag_of_words"] = _model(_hashed(cell.story_words, bigrams=True), y, _ridge)(fit, score)
    out["learned"] = _model(np.hstack([_with_products(cell.numeric), cell.entity]), y)(fit, score)
    return {name: out[name] for name in CUES}


# -- the audit -----------------------------------------------------------------------------------


def audit(examples: Iterable[Example], fit_on: Iterable[Example] | None = None) -> AuditReport:
    """Run every cue on every (category, noun count) cell of ``examples``, fitted on ``fit_on``
    (e.g. the train split), or on the first half of each cell when not given (the second half
    is scored)."""
    cells = _by_cell(examples)
    fit_cells = _by_cell(fit_on) if fit_on is not None else None
    tests = max(1, len(cells[0]) * len(CUES))
    level = FAMILY_LEVEL / tests
    results = []
    for key in sorted(cells[0], key=lambda item: (_category_rank(item[0]), item[1])):
        scored = cells[0][key]
        if fit_cells is None:
            fitted, scored = scored[: len(scored) // 2], scored[len(scored) // 2 :]
        else:
            fitted = fit_cells[0].get(key, [])
        records = fitted + scored
        places = frozenset(_QUESTION.match(e.question)["place"].lower() for e in records)
        cell = _features(records, places)
        fit, score = np.arange(len(fitted)), np.arange(len(fitted), len(records))
        yes = float(cell.labels[score].mean()) if len(score) else 0.5
        for name, predicted in _cue_predictions(cell, fit, score).items():
            correct = int((predicted == cell.labels[score]).sum())
            low, high = wilson(correct, len(score), level)
            results.append(CueResult(key[0], key[1], name, len(score), correct, low, high, max(yes, 1 - yes)))
    return AuditReport(tuple(results), cells[1] + (fit_cells[1] if fit_cells else 0), level)


def _by_cell(examples: Iterable[Example]) -> tuple[dict[tuple[str, int], list[Example]], int]:
    """Records by (category, noun count), and how many were skipped (not "Is X in the P?")."""
    cells: dict[tuple[str, int], list[Example]] = {}
    skipped = 0
    for example in examples:
        if _QUESTION.match(example.question) is None:
            skipped += 1
        else:
            cells.setdefault((example.category, example.noun_count), []).append(example)
    return cells, skipped


def _category_rank(category: str) -> tuple[int, str]:
    from .generator import CATEGORIES

    return (CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES), category)


def format_report(report: AuditReport) -> list[str]:
    """The audit as lines of text: one row per cell and cue, then the verdict."""
    lines = [f"{'category':<14} {'nouns':>5} {'cue':<14} {'count':>6} {'accuracy':>8}  {'interval':<15} verdict"]
    for r in report.results:
        verdict = "SHORTCUT" if r.shortcut else "chance"
        lines.append(
            f"{r.category:<14} {r.noun_count:>5} {r.cue:<14} {r.count:>6} {r.accuracy:>8.3f}  [{r.low:.3f}, {r.high:.3f}]  {verdict}"
        )
    tests = len(report.results)
    lines.append(
        f"intervals: Wilson, simultaneous 95% over {tests} cue x cell tests (each at {1 - report.level:.4%}); "
        f"largest |accuracy - 0.5| = {report.max_deviation():.3f}"
    )
    if report.skipped:
        lines.append(f"skipped {report.skipped} record(s) whose question is not 'Is X in the P?'")
    unbalanced = sorted({(r.category, r.noun_count, r.chance) for r in report.results if abs(r.chance - 0.5) > 0.005})
    for category, noun_count, chance in unbalanced:
        lines.append(f"chance in {category}-{noun_count} is {chance:.3f} (the scored answers are not 50/50)")
    shortcuts = report.shortcuts
    if shortcuts:
        cells = sorted({(r.category, r.noun_count) for r in shortcuts}, key=lambda c: (_category_rank(c[0]), c[1]))
        lines.append(
            f"verdict: {len(shortcuts)} shortcut(s) in {len(cells)} cell(s): "
            + ", ".join(f"{c}-{n}" for c, n in cells)
        )
    else:
        lines.append("verdict: no cue beats chance in any cell")
    return lines
