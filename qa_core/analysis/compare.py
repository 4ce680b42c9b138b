"""``qa compare``: runs side by side, whatever framework trained them.

Every number comes from the runs' own files (summary.json and config.json), under the metric
names every framework's run shares, so an LSTM run and a Transformer run on the same test set
line up cell by cell. Rows with a direction (test accuracy and loss, each category x noun-count
cell's accuracy) mark the better run with ``*``; ties mark every run that reaches the best value,
and a row where all runs are equal marks none.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from .runs import CellTable, RunRecord

MARK = "*"


@dataclass
class Row:
    name: str
    values: list[Any]  # one per run; None where the run has no value
    texts: list[str]
    higher_is_better: bool | None = None  # None: no run is marked
    section: str = ""

    @property
    def best(self) -> list[int]:
        """Indices of the runs marked better (empty when there is nothing to tell apart)."""
        if self.higher_is_better is None:
            return []
        present = [(i, float(v)) for i, v in enumerate(self.values) if isinstance(v, (int, float)) and math.isfinite(v)]
        if len(present) < 2:
            return []
        scores = [v if self.higher_is_better else -v for _, v in present]
        top = max(scores)
        winners = [i for (i, _), score in zip(present, scores) if math.isclose(score, top, rel_tol=0, abs_tol=1e-12)]
        return [] if len(winners) == len(present) else winners


@dataclass
class Comparison:
    runs: list[RunRecord]
    rows: list[Row]
    cells: list[tuple[str, int]]
    notes: list[str] = field(default_factory=list)

    def labels(self) -> list[str]:
        return [f"#{i} {run.plugin}" for i, run in enumerate(self.runs, start=1)]

    def cell_accuracy(self) -> tuple[list[str], np.ndarray]:
        """(group names, accuracy [runs, groups]): overall first, then every cell; NaN if absent."""
        groups = ["overall"] + [f"{category}/{nouns}" for category, nouns in self.cells]
        accuracy = np.full((len(self.runs), len(groups)), np.nan)
        for r, run in enumerate(self.runs):
            values = run.values
            accuracy[r, 0] = values.get("metrics/test/accuracy", np.nan)
            for g, (category, nouns) in enumerate(self.cells, start=1):
                accuracy[r, g] = values.get(f"test/by_group/{category}/noun_{nouns}/accuracy", np.nan)
        return groups, accuracy

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [
                {"label": label, "run_id": run.run_id, "path": str(run.path), "plugin": run.plugin, "plugin_version": run.plugin_version, "framework": run.framework}
                for label, run in zip(self.labels(), self.runs)
            ],
            "rows": [{"name": row.name, "section": row.section, "values": row.values, "better": row.best} for row in self.rows],
            "notes": self.notes,
        }

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["row", *[run.run_id for run in self.runs], "better"])
        for row in self.rows:
            writer.writerow([row.name, *["" if v is None else v for v in row.values], " ".join(f"#{i + 1}" for i in row.best)])
        return buffer.getvalue()


def _number(value: Any, digits: int) -> str:
    return "-" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.{digits}f}"


def compare_runs(paths: Sequence[Path]) -> Comparison:
    if len(paths) < 2:
        raise ConfigError("qa compare: give at least two run directories")
    runs = [RunRecord.load(path) for path in paths]
    rows: list[Row] = []

    def add(name: str, values: list[Any], texts: list[str], higher: bool | None = None, section: str = "run") -> None:
        rows.append(Row(name, values, texts, higher, section))

    add("plugin", [f"{r.plugin} {r.plugin_version}" for r in runs], [f"{r.plugin} {r.plugin_version}" for r in runs])
    add("framework", [r.framework for r in runs], [r.framework for r in runs])
    datasets = [str(r.fact("dataset", "?")) for r in runs]
    add("dataset", datasets, datasets)
    add("status", [r.status for r in runs], [r.status for r in runs])
    epochs = [r.summary.get("epochs_run") for r in runs]
    add("epochs run", epochs, [str(e) if e is not None else "-" for e in epochs])
    best = [r.best or {} for r in runs]
    add("best epoch", [b.get("epoch") for b in best], [f"{b['epoch']} (val {b['accuracy']:.4f})" if "epoch" in b else "-" for b in best])
    seconds = [r.seconds for r in runs]
    add("training time (s)", seconds, [_number(s, 1) for s in seconds])

    overall = [r.test_overall() for r in runs]
    for field_name, higher, digits in (("accuracy", True, 4), ("loss", False, 4), ("f1", True, 4), ("count", None, 0)):
        values = [o.get(field_name) for o in overall]
        add(f"test {field_name}", values, [_number(v, digits) for v in values], higher, "test")

    tables = [r.test_cells() for r in runs]
    categories = list(dict.fromkeys(c for t in tables for c in t.categories))
    nouns = sorted({n for t in tables for n in t.noun_counts})
    present = set().union(*(_cell_set(t) for t in tables))
    cells = [(c, n) for c in categories for n in nouns if (c, n) in present]
    counts_differ = False
    for category, noun_count in cells:
        accuracy = [r.values.get(f"test/by_group/{category}/noun_{noun_count}/accuracy") for r in runs]
        counts = [r.values.get(f"test/by_group/{category}/noun_{noun_count}/count") for r in runs]
        counts_differ |= len({c for c, r in zip(counts, runs) if r.has_test}) > 1
        texts = [f"{a:.3f} ({c})" if a is not None else "-" for a, c in zip(accuracy, counts)]
        add(f"{category}/noun_{noun_count}", accuracy, texts, True, "cells")

    notes = []
    for i, run in enumerate(runs, start=1):
        if not run.has_test:
            notes.append(f"#{i}: no test results (status {run.status}); its cells show '-'")
    if counts_differ:
        notes.append("the runs' test sets differ (cell counts are not the same): compare with care")
    elif len(set(datasets)) > 1:
        notes.append(f"the runs name different datasets ({', '.join(sorted(set(datasets)))})")
    return Comparison(runs, rows, cells, notes)


def _cell_set(table: CellTable) -> set[tuple[str, int]]:
    return {(category, nouns) for category, nouns, *_ in table.cells()}


def format_table(comparison: Comparison) -> str:
    """The side-by-side table as text (what ``qa compare`` prints)."""
    labels = comparison.labels()
    lines = ["runs:"]
    label_width = max(len(label) for label in labels)
    for label, run in zip(labels, comparison.runs):
        lines.append(f"  {label:<{label_width}}  {run.run_id}  ({run.path})")
    cells_text = [[text + (f" {MARK}" if i in row.best else "") for i, text in enumerate(row.texts)] for row in comparison.rows]
    name_width = max(len(row.name) + (2 if row.section == "cells" else 0) for row in comparison.rows)
    widths = [max(len(label), *(len(texts[i]) for texts in cells_text)) for i, label in enumerate(labels)]
    lines.append("")
    lines.append(" " * name_width + "  " + "  ".join(label.ljust(w) for label, w in zip(labels, widths)).rstrip())
    section = None
    for row, texts in zip(comparison.rows, cells_text):
        if row.section != section and row.section in ("test", "cells"):
            lines.append("test, accuracy (count) per cell:" if row.section == "cells" else "test:")
        section = row.section
        name = ("  " + row.name) if row.section == "cells" else row.name
        lines.append(name.ljust(name_width) + "  " + "  ".join(t.ljust(w) for t, w in zip(texts, widths)).rstrip())
    lines.append(f"{MARK} better run in that row")
    lines.extend(f"note: {note}" for note in comparison.notes)
    return "\n".join(lines)


def write_outputs(comparison: Comparison, out_dir: Path, plot: bool) -> tuple[list[Path], str | None]:
    """compare.json and compare.csv into ``out_dir``, and compare.png when ``plot``.
    Returns (files written, why the plot is missing or None)."""
    from ..tracking.local import write_json
    from . import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "compare.json", comparison.to_json())
    (out_dir / "compare.csv").write_text(comparison.to_csv(), encoding="utf-8")
    written = [out_dir / "compare.json", out_dir / "compare.csv"]
    if not plot:
        return written, None
    groups, accuracy = comparison.cell_accuracy()
    labels = [f"{label} ({run.framework})" for label, run in zip(comparison.labels(), comparison.runs)]
    try:
        figure = plots.compare_chart(labels, groups, accuracy, "Test accuracy by cell")
    except plots.PlottingUnavailable as exc:
        return written, str(exc)
    written.append(plots.save_png(figure, out_dir / plots.COMPARE))
    return written, None


def dumps(comparison: Comparison) -> str:
    return json.dumps(comparison.to_json(), indent=2, default=str)
