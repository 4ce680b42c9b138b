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

A cell the generator cannot tell (superdense stories need at least 5 nouns) is skipped and named.
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
) -> ProbeResult:
    """Generate the probe sets, score the run's best model on them and write RUN_DIR/probe/."""
    from ..data.generator import generate_splits
    from ..data.records import write_jsonl
    from ..evaluation import evaluate_saved
    from ..plugins import load_plugins
    from ..tracking.local import write_json

    run = RunRecord.load(run_dir)
    if per_cell < 1:
        raise ConfigError(f"--per-cell: expected a positive integer, got {per_cell}")
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"--threshold: expected an accuracy in (0, 1], got {threshold}")
    noun_counts = sorted(set(noun_counts))
    if not noun_counts:
        raise ConfigError("--noun-counts: give at least one noun count")
    categories = list(dict.fromkeys(categories or default_categories(run)))
    usable, skipped = probe_cells(categories, noun_counts)
    seed = int(run.config.get("seed", 0)) + SEED_OFFSET if seed is None else seed

    examples = []
    for category, counts in usable.items():
        if counts:  # one call per category: each has its own range of noun counts
            examples += generate_splits({SPLIT: per_cell}, categories=[category], noun_counts=counts, seed=seed, per_cell=True)[SPLIT]
    directory = run.path / "probe"
    data_file = directory / "probe.jsonl"
    write_jsonl(data_file, examples)

    threshold_decision = float(run.config.get("threshold", 0.5))
    # probe/ is rewritten as a whole by every probe (probe.jsonl, probe.json ...), its eval/ too
    report, _, meta = evaluate_saved(run.path, data_file, pm or load_plugins(), directory / "eval", batch_size, threshold_decision, plots=False, overwrite=True)
    table = CellTable.from_report(report)
    result = ProbeResult(
        run, table, boundaries(table, threshold), threshold, per_cell, seed, skipped,
        confident_boundary=boundaries(table, threshold, "upper"),
        seen_in_training=_seen_in_training(run, examples), checkpoint_epoch=meta.get("epoch"), directory=directory,
    )
    write_json(directory / "probe.json", result.to_json())
    (directory / "curve.csv").write_text(curve_csv(table), encoding="utf-8")
    result.files = [data_file, directory / "probe.json", directory / "curve.csv"]
    if plots:
        result.files += _write_plots(result, directory)
    return result


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
    lines.append(f"{'category':<{width}}  " + "  ".join(f"{f'n={n}':>18}" for n in table.noun_counts))
    for i, category in enumerate(table.categories):
        cells = [
            f"{table.accuracy[i, j]:.3f} [{low[i, j]:.2f}, {high[i, j]:.2f}]" if table.count[i, j] else f"{'-':>18}"
            for j in range(len(table.noun_counts))
        ]
        lines.append(f"{category:<{width}}  " + "  ".join(cells))
    lines.append(f"performance boundary (first noun count with accuracy < {result.threshold:g}; then where the 95% interval's upper bound is):")
    for i, (category, noun_count) in enumerate(result.boundary.items()):
        probed = [n for j, n in enumerate(table.noun_counts) if table.count[i, j]]
        if noun_count is None:
            text = f"none (accuracy >= {result.threshold:g} up to {probed[-1]} nouns)"
        else:
            text = f"{noun_count} nouns" + (" (already below at the smallest noun count probed)" if noun_count == probed[0] else "")
        sure = result.confident_boundary.get(category)
        text += f"; surely below from {sure} nouns" if sure is not None else "; not surely below at any probed noun count"
        lines.append(f"  {category:<{width}}  {text}")
    if result.skipped:
        lines.append("skipped: " + ", ".join(f"{s['category']}/noun_{s['noun_count']} ({s['reason']})" for s in result.skipped))
    if result.seen_in_training:
        lines.append(f"note: {result.seen_in_training} probe stories also occur in the training data")
    return "\n".join(lines)
