"""``qa probe``: score a run's best model on fresh stories of growing difficulty.

For every category and noun count the core generator writes exactly ``per_cell`` new stories
(``generate_splits(per_cell=True)``), under the split name ``probe`` and a seed of its own, so
none of its random streams is one the training data was drawn from. The saved best model scores
them through :func:`qa_core.evaluation.evaluate_saved` (the same checkpoint and vocabulary checks
as ``qa evaluate``), and the accuracy of each cell gives one curve per category.

The *performance boundary* of a category is the first noun count, going up, whose accuracy falls
below the threshold (default 0.75); none when every probed noun count stays at or above it. With
it comes its uncertainty: the first noun count whose Wilson 95% interval lies wholly below the
threshold (its upper bound is below: the model is past the boundary there with 95% confidence).
Between the two the data cannot tell; more ``--per-cell`` stories narrow the gap.
Accuracy is taken on the *answerable* records: those whose supporting sentences the model's
``max_len`` kept. Records it cut are counted per cell, and a cell where even a perfect reader of
the kept text would stay below the threshold is named "capped by truncation".

``--axis length`` probes story length instead of noun count: stories of 8, 16, 32 and 64
sentences (``--lengths``) at one noun count (``--length-nouns``, default 8), so "is it the nouns
or the length?" has an answer. Cells are keyed by the length bucket's upper bound.

A cell the generator cannot tell (dense stories need at least 6 nouns to be shortcut-free, a
story of 30 nouns does not fit in 8 sentences) is skipped and named.
Everything goes under ``RUN_DIR/probe/``::

    probe.jsonl                    the generated stories
    probe.json                     settings, the curve per category, the boundaries, skipped cells
    curve.csv                      category, noun count, count, accuracy, loss
    accuracy_by_noun_count.png     the curves with the threshold line (with matplotlib)
    cell_heatmap.png               the same numbers as a category x noun-count heatmap
    eval/                          the usual eval files: per-cell metrics, misclassified stories, ...
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, QAError
from .runs import CellTable, RunRecord

DEFAULT_NOUN_COUNTS = (4, 8, 15, 30, 50)
#: ``--axis length``: story lengths (sentences, one per length bucket) at one noun count.
DEFAULT_LENGTHS = (8, 16, 32, 64)
DEFAULT_LENGTH_NOUNS = 8
AXES = ("noun_count", "length")
DEFAULT_PER_CELL = 100
DEFAULT_THRESHOLD = 0.75
#: Added to the run's seed; with the split name "probe" it keeps probe stories off the training
#: data's random streams even when the data was generated with the run's own seed.
SEED_OFFSET = 1_000_003
SPLIT = "probe"


@dataclass
class ProbeResult:
    run: RunRecord
    table: CellTable
    boundary: dict[str, int | None]
    threshold: float
    per_cell: int
    seed: int
    skipped: list[dict[str, Any]] = field(default_factory=list)
    #: the first noun count whose 95% upper bound is below the threshold (surely past it)
    confident_boundary: dict[str, int | None] = field(default_factory=dict)
    seen_in_training: int | None = None
    checkpoint_epoch: Any = None
    directory: Path | None = None
    files: list[Path] = field(default_factory=list)
    plot_note: str | None = None
    axis: str = "noun_count"
    #: (category, noun count or length) -> records whose supporting sentence max_len cut
    lost: dict[tuple[str, int], int] = field(default_factory=dict)
    #: cells where even a perfect reader of the kept text (a coin on the rest) stays below threshold
    capped: list[tuple[str, int]] = field(default_factory=list)
    length_nouns: int | None = None

    def to_json(self) -> dict[str, Any]:
        low, high = self.table.interval
        return {
            "run_id": self.run.run_id,
            "plugin": self.run.plugin,
            "plugin_version": self.run.plugin_version,
            "checkpoint_epoch": self.checkpoint_epoch,
            "seed": self.seed,
            "per_cell": self.per_cell,
            "threshold": self.threshold,
            "categories": list(self.table.categories),
            "noun_counts": list(self.table.noun_counts),
            "curve": {
                category: [
                    {
                        "noun_count": n, "accuracy": float(self.table.accuracy[i, j]), "count": int(self.table.count[i, j]), "loss": float(self.table.loss[i, j]),
                        "accuracy_low": float(low[i, j]), "accuracy_high": float(high[i, j]),
                    }
                    for j, n in enumerate(self.table.noun_counts)
                    if self.table.count[i, j]
                ]
                for i, category in enumerate(self.table.categories)
            },
            "boundary": self.boundary,
            "boundary_upper_bound": self.confident_boundary,
            "interval": "wilson 95%",
            "axis": self.axis,
            "length_noun_count": self.length_nouns,
            "accuracy_on": "answerable records (the encoding kept every supporting sentence)",
            "lost_to_max_len": [{"category": c, self.axis: x, "lost": n} for (c, x), n in self.lost.items()],
            "capped_by_truncation": [{"category": c, self.axis: x} for c, x in self.capped],
            "skipped": self.skipped,
            "seen_in_training": self.seen_in_training,
        }


def boundaries(table: CellTable, threshold: float, bound: str = "point") -> dict[str, int | None]:
    """Per category, the first noun count (ascending) whose accuracy is below ``threshold``:
    its point estimate (``bound="point"``) or the upper end of its 95% interval (``"upper"``:
    below with 95% confidence)."""
    values = table.accuracy if bound == "point" else table.interval[1]
    below = (table.count > 0) & (values < threshold)
    first = below.argmax(axis=1)
    return {
        category: (table.noun_counts[int(first[i])] if below[i].any() else None)
        for i, category in enumerate(table.categories)
    }


def probe_cells(categories: Sequence[str], noun_counts: Sequence[int]) -> tuple[dict[str, list[int]], list[dict[str, Any]]]:
    """The noun counts the generator can tell for each category, and the cells it cannot."""
    from ..data.generator import CATEGORIES, max_noun_count, min_noun_count

    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ConfigError(f"--categories: the generator has no category {unknown[0]!r} (choose from {', '.join(CATEGORIES)})")
    if any(n < 1 for n in noun_counts):
        raise ConfigError(f"--noun-counts: noun counts must be positive, got {sorted(noun_counts)}")
    usable: dict[str, list[int]] = {}
    skipped: list[dict[str, Any]] = []
    for category in categories:
        low, high = min_noun_count(category), max_noun_count(category)
        usable[category] = [n for n in noun_counts if low <= n <= high]
        for n in noun_counts:
            if not low <= n <= high:
                skipped.append({"category": category, "noun_count": n, "reason": f"{category} stories need {low}..{high} nouns"})
    if not any(usable.values()):
        raise ConfigError("--noun-counts: none of them can be generated for the chosen categories")
    return usable, skipped


def default_categories(run: RunRecord) -> list[str]:
    """The generator's categories the run was tested on (all of them for other data)."""
    from ..data.generator import CATEGORIES

    tested = set(run.test_cells().categories)
    return [c for c in CATEGORIES if c in tested] or list(CATEGORIES)


def probe(
    run_dir: Path,
    noun_counts: Sequence[int] = DEFAULT_NOUN_COUNTS,
    categories: Sequence[str] | None = None,
    per_cell: int = DEFAULT_PER_CELL,
    threshold: float = DEFAULT_THRESHOLD,
    seed: int | None = None,
    batch_size: int = 64,
    pm: Any = None,
    plots: bool = True,
    axis: str = "noun_count",
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    length_nouns: int = DEFAULT_LENGTH_NOUNS,
) -> ProbeResult:
    """Generate the probe sets, score the run's best model on them and write RUN_DIR/probe/.

    ``axis="length"`` probes story length instead: ``per_cell`` stories of every length in
    ``lengths`` (sentences) at ``length_nouns`` nouns. Either way, accuracy and boundary are
    computed on the *answerable* records (those whose supporting sentences the model's max_len
    kept), and cells that truncation alone keeps below the threshold are named."""
    from ..data.records import write_jsonl
    from ..evaluation import evaluate_saved
    from ..plugins import load_plugins
    from ..tracking.local import write_json

    run = RunRecord.load(run_dir)
    if per_cell < 1:
        raise ConfigError(f"--per-cell: expected a positive integer, got {per_cell}")
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"--threshold: expected an accuracy in (0, 1], got {threshold}")
    if axis not in AXES:
        raise ConfigError(f"--axis: expected one of {', '.join(AXES)}, got {axis!r}")
    categories = list(dict.fromkeys(categories or default_categories(run)))
    seed = int(run.config.get("seed", 0)) + SEED_OFFSET if seed is None else seed
    if axis == "length":
        examples, skipped = _length_probe_set(categories, sorted(set(lengths)), length_nouns, per_cell, seed)
    else:
        examples, skipped = _noun_probe_set(categories, sorted(set(noun_counts)), per_cell, seed)
    directory = run.path / "probe"
    data_file = directory / "probe.jsonl"
    write_jsonl(data_file, examples)

    threshold_decision = float(run.config.get("threshold", 0.5))
    # probe/ is rewritten as a whole by every probe (probe.jsonl, probe.json ...), its eval/ too
    report, _, meta = evaluate_saved(run.path, data_file, pm or load_plugins(), directory / "eval", batch_size, threshold_decision, plots=False, overwrite=True)
    table, lost = answerable_table(report, axis)
    result = ProbeResult(
        run, table, boundaries(table, threshold), threshold, per_cell, seed, skipped,
        confident_boundary=boundaries(table, threshold, "upper"),
        seen_in_training=_seen_in_training(run, examples), checkpoint_epoch=meta.get("epoch"), directory=directory,
        axis=axis, lost=lost, capped=_capped(table, lost, threshold), length_nouns=length_nouns if axis == "length" else None,
    )
    write_json(directory / "probe.json", result.to_json())
    (directory / "curve.csv").write_text(curve_csv(table), encoding="utf-8")
    result.files = [data_file, directory / "probe.json", directory / "curve.csv"]
    if plots:
        result.files += _write_plots(result, directory)
    return result


def _noun_probe_set(categories: Sequence[str], noun_counts: Sequence[int], per_cell: int, seed: int) -> tuple[list, list]:
    from ..data.generator import generate_splits

    if not noun_counts:
        raise ConfigError("--noun-counts: give at least one noun count")
    usable, skipped = probe_cells(categories, noun_counts)
    examples = []
    for category, counts in usable.items():
        if counts:  # one call per category: each has its own range of noun counts
            examples += generate_splits({SPLIT: per_cell}, categories=[category], noun_counts=counts, seed=seed, per_cell=True)[SPLIT]
    return examples, skipped


def _length_probe_set(categories: Sequence[str], lengths: Sequence[int], nouns: int, per_cell: int, seed: int) -> tuple[list, list]:
    """Stories of each length at one noun count; a length the nouns cannot fit in is skipped."""
    from ..data.generator import generate_cell
    from ..types import length_bucket

    if not lengths or min(lengths) < 1:
        raise ConfigError(f"--lengths: expected positive sentence counts, got {list(lengths)}")
    buckets = length_bucket(np.array(lengths)).tolist()
    if len(set(buckets)) < len(buckets):
        raise ConfigError(f"--lengths: {list(lengths)} share a length bucket (1-4, 5-8, 9-16, 17-32, ...): take one length per bucket")
    usable, skipped = probe_cells(categories, [nouns])
    examples: list = []
    for category in (c for c, counts in usable.items() if counts):
        for length in lengths:
            try:
                examples += generate_cell(category, nouns, per_cell, seed=seed, split=SPLIT, sentences=length)
            except ConfigError as exc:
                skipped.append({"category": category, "length": length, "reason": str(exc)})
    if not examples:
        raise ConfigError(f"--lengths: no story of {nouns} nouns fits any of {list(lengths)} sentences")
    return examples, skipped


def answerable_table(report: Any, axis: str) -> tuple[CellTable, dict[tuple[str, int], int]]:
    """The category x ``axis`` table on the answerable records, and the lost count per cell.
    Length cells are keyed by the bucket's upper bound (8 for 5-8), so they sort and plot."""
    from ..types import LENGTH_BUCKETS

    flagged = "answerable" in report.axes
    groups = report.breakdown("category", axis, *(["answerable"] if flagged else [])).groups()
    cells: dict[tuple[str, int], dict] = {}
    lost: dict[tuple[str, int], int] = {}
    for key, group in groups.items():
        category, value = key[0], key[1]
        if axis == "length":
            value = 2 ** (LENGTH_BUCKETS.index(value) + 2)
        if flagged and key[2] == "no":
            lost[(category, value)] = group.count
        else:
            cells[(category, value)] = group.to_json()
    for cell in lost:
        cells.setdefault(cell, {"count": 0})
    return CellTable.from_cells(cells), lost


def _capped(table: CellTable, lost: dict[tuple[str, int], int], threshold: float) -> list[tuple[str, int]]:
    """Cells where a perfect reader of the kept text, guessing on the lost records, stays below
    the threshold: the window, not the model, decides them."""
    capped = []
    for (category, value), cut in lost.items():
        kept = int(table.count[table.categories.index(category), table.noun_counts.index(value)])
        if (kept + 0.5 * cut) / (kept + cut) < threshold:
            capped.append((category, value))
    return capped


def curve_csv(table: CellTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["category", "noun_count", "count", "accuracy", "loss", "accuracy_low", "accuracy_high"])
    low, high = table.interval
    row, col = {c: i for i, c in enumerate(table.categories)}, {n: j for j, n in enumerate(table.noun_counts)}
    writer.writerows(
        (category, nouns, count, accuracy, loss, float(low[row[category], col[nouns]]), float(high[row[category], col[nouns]]))
        for category, nouns, accuracy, count, loss in table.cells()
    )
    return buffer.getvalue()


def _write_plots(result: ProbeResult, directory: Path) -> list[Path]:
    from . import plots

    title = f"Probe of {result.run.plugin} ({result.per_cell} stories per cell)"
    try:
        figures = {
            plots.ACCURACY_BY_NOUN_COUNT: plots.accuracy_by_noun_count(result.table, title, threshold=result.threshold),
            plots.CELL_HEATMAP: plots.cell_heatmap(result.table, title),
        }
    except plots.PlottingUnavailable as exc:
        result.plot_note = f"plots skipped, the numbers are written: {exc}"
        return []
    return plots.write_figures(figures, directory)


def _seen_in_training(run: RunRecord, examples: Sequence[Any]) -> int | None:
    """How many probe stories also occur in the run's training data; None if it cannot be read
    (e.g. the run was started from another directory)."""
    from ..data.loading import find_split_files, read_examples

    sources = run.config.get("data_sources") or {}
    try:
        if sources.get("train"):
            paths = [Path(sources["train"])]
        elif sources.get("data_dir"):
            paths = find_split_files(sources["data_dir"]).get("train", [])
        else:
            return None
        stories = {e.story for path in paths for e in read_examples(path)}
    except (QAError, OSError):
        return None
    if not stories:
        return None
    return int(np.fromiter((e.story in stories for e in examples), dtype=bool, count=len(examples)).sum())


def format_probe(result: ProbeResult) -> str:
    """The accuracy curve as a table, then the boundary of each category."""
    table = result.table
    run = result.run
    lines = [
        f"probe of run {run.run_id}: {run.plugin} {run.plugin_version}, checkpoint of epoch {result.checkpoint_epoch}; "
        f"{result.per_cell} fresh stories per cell, seed {result.seed}"
    ]
    width = max([len("category"), *(len(c) for c in table.categories)])
    low, high = table.interval
    mark = "n=" if result.axis == "noun_count" else "s<="
    if result.axis == "length":
        lines[0] += f"; story length in sentences at {result.length_nouns} nouns"
    lines.append(f"{'category':<{width}}  " + "  ".join(f"{f'{mark}{n}':>18}" for n in table.noun_counts))
    for i, category in enumerate(table.categories):
        cells = [
            f"{table.accuracy[i, j]:.3f} [{low[i, j]:.2f}, {high[i, j]:.2f}]" if table.count[i, j] else f"{'-':>18}"
            for j in range(len(table.noun_counts))
        ]
        lines.append(f"{category:<{width}}  " + "  ".join(cells))
    what = "noun count" if result.axis == "noun_count" else "length"
    unit = "nouns" if result.axis == "noun_count" else "sentences"
    lines.append(f"performance boundary (first {what} with accuracy < {result.threshold:g}, on answerable records; then where the 95% interval's upper bound is):")
    for i, (category, noun_count) in enumerate(result.boundary.items()):
        probed = [n for j, n in enumerate(table.noun_counts) if table.count[i, j]]
        if noun_count is None:
            text = f"none (accuracy >= {result.threshold:g} up to {probed[-1] if probed else '-'} {unit})"
        else:
            text = f"{noun_count} {unit}" + (f" (already below at the smallest {what} probed)" if probed and noun_count == probed[0] else "")
        sure = result.confident_boundary.get(category)
        text += f"; surely below from {sure} {unit}" if sure is not None else f"; not surely below at any probed {what}"
        lines.append(f"  {category:<{width}}  {text}")
    if result.lost:
        lines.append(
            "lost to max_len (not scored above): "
            + ", ".join(f"{c}/{mark}{x} {n}" for (c, x), n in result.lost.items())
        )
    if result.capped:
        lines.append(
            "capped by truncation (even a perfect reader of the kept text stays below the threshold): "
            + ", ".join(f"{c}/{mark}{x}" for c, x in result.capped)
        )
    if result.skipped:
        lines.append("skipped: " + ", ".join(
            f"{s['category']}/{'noun_' + str(s['noun_count']) if 'noun_count' in s else 's' + str(s['length'])} ({s['reason']})"
            for s in result.skipped
        ))
    if result.seen_in_training:
        lines.append(f"note: {result.seen_in_training} probe stories also occur in the training data")
    return "\n".join(lines)
