"""``qa compare``: runs side by side, whatever framework trained them.

Every number comes from the runs' own files (summary.json, config.json and the predictions in
eval/), under the metric names every framework's run shares, so an LSTM run and a Transformer run
on the same test set line up cell by cell. Every accuracy is shown with its Wilson 95% interval.

"Better" means significant. When two runs were scored on the same records (equal
``records_sha256`` in eval/predictions.json), their predictions pair by record id and each cell,
and the overall accuracy, get an exact McNemar test; otherwise a pooled two-proportion z-test on
the counts, with a note saying the test sets differ. The cell tests are one family per pair of
runs, Holm-corrected; ``*`` marks a run only where it significantly beats (corrected p < 0.05)
another run and is significantly worse than none; a row without a significant difference marks
none. Groups of seeds
(:mod:`qa_core.analysis.groups`) compare seed by seed: the discordant records of every seed both
groups ran are pooled into one McNemar test per cell. Loss and F1 carry no test, so no mark.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from ..metrics import wilson
from .runs import CellTable, RunRecord, lost_support
from .significance import ALPHA, holm, mcnemar_exact, two_proportion

MARK = "*"
NO_DIFFERENCE = "no significant difference"


@dataclass
class Test:
    """One pairwise test in one row: run ``a`` against run ``b`` (indices)."""

    a: int
    b: int
    method: str  # "mcnemar" (paired) or "two-proportion" (unpaired)
    p: float
    p_holm: float
    difference: float  # accuracy of a minus accuracy of b
    discordant: tuple[int, int] | None = None  # (a right b wrong, a wrong b right), paired only

    @property
    def significant(self) -> bool:
        return self.p_holm < ALPHA

    def to_json(self) -> dict[str, Any]:
        return {"runs": [self.a, self.b], "method": self.method, "p": self.p, "p_holm": self.p_holm, "difference": self.difference, "discordant": self.discordant, "significant": self.significant}


@dataclass
class Row:
    name: str
    values: list[Any]  # one per run; None where the run has no value
    texts: list[str]
    higher_is_better: bool | None = None
    section: str = ""
    tests: list[Test] = field(default_factory=list)

    @property
    def best(self) -> list[int]:
        """Indices of the runs marked better: each significantly beats (Holm-corrected p < 0.05)
        at least one other run in this row and is significantly worse than none. With two runs:
        the winner of a significant test. Empty when nothing is significant."""
        if self.higher_is_better is None or not self.tests:
            return []
        beats = {(t.a, t.b) if t.difference > 0 else (t.b, t.a) for t in self.tests if t.significant}
        winners, losers = {w for w, _ in beats}, {l for _, l in beats}
        return sorted(winners - losers)

    def verdict(self) -> str:
        """What the tests say, in words (empty for rows without tests)."""
        if not self.tests:
            return ""
        significant = [t for t in self.tests if t.significant]
        if not significant:
            return f"{NO_DIFFERENCE} (p={min(t.p_holm for t in self.tests):.2g})"
        return ", ".join(
            f"#{(t.a if t.difference > 0 else t.b) + 1}>#{(t.b if t.difference > 0 else t.a) + 1} p={t.p_holm:.2g}" for t in significant
        )


@dataclass
class Comparison:
    runs: list[RunRecord]
    rows: list[Row]
    cells: list[tuple[str, int]]
    notes: list[str] = field(default_factory=list)
    #: per pair of runs (a, b): "paired" (McNemar on the same records) or "unpaired"
    pairing: dict[tuple[int, int], str] = field(default_factory=dict)

    def labels(self) -> list[str]:
        from .plots import distinct_labels  # runs of one plugin differ by what sets them apart

        names = distinct_labels(self.runs)
        return [f"#{i} {name}" + (f" x{len(run.members)} seeds" if getattr(run, "members", None) else "") for i, (name, run) in enumerate(zip(names, self.runs), start=1)]

    def cell_accuracy(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(group names, accuracy [runs, groups], Wilson interval [2, runs, groups]): overall
        first, then every cell; NaN where a run lacks the group."""
        groups = ["overall"] + [f"{category}/{nouns}" for category, nouns in self.cells]
        correct = np.full((len(self.runs), len(groups)), np.nan)
        count = np.zeros((len(self.runs), len(groups)))
        for r, run in enumerate(self.runs):
            values = run.values
            names = ["metrics/test"] + [f"test/by_group/{c}/noun_{n}" for c, n in self.cells]
            for g, name in enumerate(names):
                n = values.get(f"{name}/count")
                a = values.get(f"{name}/accuracy")
                if isinstance(n, (int, float)) and isinstance(a, (int, float)) and n > 0:
                    count[r, g], correct[r, g] = n, a * n
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = np.where(count > 0, correct / count, np.nan)
        low, high = wilson(np.round(np.nan_to_num(correct)), count)
        for r, run in enumerate(self.runs):  # stored bounds win: a group's are across seeds
            for g, name in enumerate(["metrics/test"] + [f"test/by_group/{c}/noun_{n}" for c, n in self.cells]):
                stored = run.values.get(f"{name}/accuracy_low"), run.values.get(f"{name}/accuracy_high")
                if all(_has(v) for v in stored):
                    low[r, g], high[r, g] = stored
        return groups, accuracy, np.where(count > 0, np.stack([low, high]), np.nan)

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [
                {"label": label, "run_id": run.run_id, "path": str(run.path), "plugin": run.plugin, "plugin_version": run.plugin_version, "framework": run.framework}
                for label, run in zip(self.labels(), self.runs)
            ],
            "rows": [
                {"name": row.name, "section": row.section, "values": row.values, "better": row.best, "tests": [t.to_json() for t in row.tests]}
                for row in self.rows
            ],
            "pairing": [{"runs": list(pair), "test": kind} for pair, kind in self.pairing.items()],
            "alpha": ALPHA,
            "interval": "wilson 95%",
            "notes": self.notes,
        }

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["row", *[run.run_id for run in self.runs], "better", "significance"])
        for row in self.rows:
            writer.writerow([row.name, *["" if v is None else v for v in row.values], " ".join(f"#{i + 1}" for i in row.best), row.verdict()])
        return buffer.getvalue()


def _number(value: Any, digits: int) -> str:
    return "-" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.{digits}f}"


def _with_interval(values: Mapping[str, Any], prefix: str, digits: int = 3) -> str:
    """``0.538 [0.29, 0.77] (13)``: the accuracy, its 95% interval and the count. The interval is
    the stored one (Wilson for a run, across seeds for a group), else Wilson from the count."""
    accuracy, count = values.get(f"{prefix}/accuracy"), values.get(f"{prefix}/count")
    if not _has(accuracy) or not _has(count) or count <= 0:
        return "-"
    low, high = values.get(f"{prefix}/accuracy_low"), values.get(f"{prefix}/accuracy_high")
    if not (_has(low) and _has(high)):
        low, high = (float(x) for x in wilson(round(accuracy * count), count))
    return f"{accuracy:.{digits}f} [{low:.2f}, {high:.2f}] ({count:.0f})"


def compare_runs(paths: Sequence[Path]) -> Comparison:
    if len(paths) < 2:
        raise ConfigError("qa compare: give at least two run directories")
    from .groups import load_run_or_group

    runs = [load_run_or_group(path) for path in paths]
    rows: list[Row] = []

    def add(name: str, values: list[Any], texts: list[str], higher: bool | None = None, section: str = "run") -> Row:
        rows.append(Row(name, values, texts, higher, section))
        return rows[-1]

    add("plugin", [f"{r.plugin} {r.plugin_version}" for r in runs], [f"{r.plugin} {r.plugin_version}" for r in runs])
    add("framework", [r.framework for r in runs], [r.framework for r in runs])
    datasets = [str(r.fact("dataset", "?")) for r in runs]
    add("dataset", datasets, datasets)
    add("status", [r.status for r in runs], [r.status for r in runs])
    seeds = [[s for s, _ in r.members] if getattr(r, "members", None) else [r.fact("seed")] for r in runs]
    add("seeds", seeds, [",".join(str(s) for s in ss) for ss in seeds])
    epochs = [r.summary.get("epochs_run") for r in runs]
    add("epochs run", epochs, [str(e) if e is not None else "-" for e in epochs])
    best = [r.best or {} for r in runs]
    add("best epoch", [b.get("epoch") for b in best], [f"{b['epoch']} (val {b['accuracy']:.4f})" if "epoch" in b else "-" for b in best])
    seconds = [r.seconds for r in runs]
    add("training time (s)", seconds, [_number(s, 1) for s in seconds])

    overall = [r.test_overall() for r in runs]
    accuracy_row = add("test accuracy", [o.get("accuracy") for o in overall], [_with_interval(r.values, "metrics/test", 4) for r in runs], True, "test")
    for field_name, digits in (("loss", 4), ("f1", 4), ("count", 0)):
        values = [o.get(field_name) for o in overall]
        add(f"test {field_name}", values, [_number(v, digits) for v in values], None, "test")

    tables = [r.test_cells() for r in runs]
    categories = list(dict.fromkeys(c for t in tables for c in t.categories))
    nouns = sorted({n for t in tables for n in t.noun_counts})
    present = set().union(*(_cell_set(t) for t in tables))
    cells = [(c, n) for c in categories for n in nouns if (c, n) in present]
    counts_differ = False
    cell_rows = []
    for category, noun_count in cells:
        accuracy = [r.values.get(f"test/by_group/{category}/noun_{noun_count}/accuracy") for r in runs]
        counts = [r.values.get(f"test/by_group/{category}/noun_{noun_count}/count") for r in runs]
        counts_differ |= len({c for c, r in zip(counts, runs) if r.has_test}) > 1
        texts = [_with_interval(r.values, f"test/by_group/{category}/noun_{noun_count}") for r in runs]
        cell_rows.append(add(f"{category}/noun_{noun_count}", accuracy, texts, True, "cells"))

    comparison = Comparison(runs, rows, cells)
    _test_rows(comparison, accuracy_row, cell_rows)
    comparison.notes.extend(_notes(comparison, datasets, counts_differ))
    return comparison


def _notes(comparison: Comparison, datasets: list[str], counts_differ: bool) -> list[str]:
    """What the reader must know to read the table: missing results, which test was used."""
    notes = []
    for i, run in enumerate(comparison.runs, start=1):
        if not run.has_test:
            notes.append(f"#{i}: no test results (status {run.status}); its cells show '-'")
        lost = lost_support(run)
        if lost:
            cells_text = ", ".join(f"{c}/noun_{n} {k}" for (c, n), k in sorted(lost.items(), key=lambda item: -item[1]))
            notes.append(
                f"#{i}: {sum(lost.values())} test records lost a supporting sentence to max_len={(getattr(run, 'config', None) or {}).get('max_len')} "
                f"({cells_text}); those cells' accuracies include records no model could answer (eval/groups.csv: answerable_accuracy)"
            )
    unpaired = [pair for pair, kind in comparison.pairing.items() if kind != "paired"]
    if unpaired or counts_differ:
        which = ", ".join(f"#{a + 1}/#{b + 1}" for a, b in unpaired)
        notes.append(
            f"the runs' test sets differ or their predictions are not kept ({which or 'cell counts differ'}): "
            "unpaired two-proportion tests, weaker than a paired test on the same records"
        )
    elif len(set(datasets)) > 1:
        notes.append(f"the runs name different datasets ({', '.join(sorted(set(datasets)))})")
    return notes


def _cell_set(table: CellTable) -> set[tuple[str, int]]:
    return {(category, nouns) for category, nouns, *_ in table.cells()}


def _test_rows(comparison: Comparison, accuracy_row: Row, cell_rows: list[Row]) -> None:
    """Fill in the tests of the accuracy rows: every pair of runs, paired where it can be; the
    cells of a pair are one Holm family, the overall accuracy a test of its own."""
    runs, cells = comparison.runs, comparison.cells
    for a in range(len(runs)):
        for b in range(a + 1, len(runs)):
            if not (runs[a].has_test and runs[b].has_test):
                continue
            paired = paired_counts(runs[a], runs[b], cells)
            if paired is not None:
                comparison.pairing[(a, b)] = "paired"
                (overall_b, overall_c), (cell_b, cell_c) = paired
                p_overall = mcnemar_exact([overall_b], [overall_c])
                p_cells = mcnemar_exact(cell_b, cell_c)
                discordant = [(int(x), int(y)) for x, y in zip(cell_b.tolist(), cell_c.tolist())]
                method, overall_discordant = "mcnemar", (int(overall_b), int(overall_c))
            else:
                comparison.pairing[(a, b)] = "unpaired"
                (correct_a, count_a), (correct_b, count_b) = _counts(runs[a], cells), _counts(runs[b], cells)
                p_all = two_proportion(correct_a, count_a, correct_b, count_b)
                p_overall, p_cells = p_all[:1], p_all[1:]
                discordant, method, overall_discordant = [None] * len(cells), "two-proportion", None
            _add_test(accuracy_row, a, b, method, float(p_overall[0]), float(p_overall[0]), overall_discordant)
            # rows where a run lacks the cell get no test and take no part in the correction
            testable = [i for i, row in enumerate(cell_rows) if _has(row.values[a]) and _has(row.values[b])]
            corrected = holm(p_cells[testable])
            for i, p_holm in zip(testable, corrected.tolist()):
                _add_test(cell_rows[i], a, b, method, float(p_cells[i]), p_holm, discordant[i])


def _has(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _add_test(row: Row, a: int, b: int, method: str, p: float, p_holm: float, discordant: tuple[int, int] | None) -> None:
    if _has(row.values[a]) and _has(row.values[b]):
        row.tests.append(Test(a, b, method, p, p_holm, float(row.values[a]) - float(row.values[b]), discordant))


def _counts(run: Any, cells: Sequence[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(correct, count) of the overall test split then every cell, pooled over a group's members."""
    members = [m for _, m in getattr(run, "members", None) or [(None, run)]]
    names = ["metrics/test"] + [f"test/by_group/{c}/noun_{n}" for c, n in cells]
    correct, count = np.zeros(len(names)), np.zeros(len(names))
    for member in members:
        values = member.values
        n = np.array([float(values.get(f"{name}/count", 0) or 0) for name in names])
        accuracy = np.array([float(values.get(f"{name}/accuracy", 0) or 0) for name in names])
        correct += np.round(accuracy * n)
        count += n
    return correct, count


def paired_counts(a: Any, b: Any, cells: Sequence[tuple[str, int]]) -> tuple[tuple[int, int], tuple[np.ndarray, np.ndarray]] | None:
    """Discordant counts ``(a right b wrong, a wrong b right)`` overall and per cell, summed over
    the seeds both sides ran; None when any matched pair was not scored on the same records (or
    kept no predictions). Single runs pair with each other whatever their seeds."""
    pairs = match_members(a, b)
    if not pairs:
        return None
    cell_index = {cell: i for i, cell in enumerate(cells)}
    b_cells, c_cells = np.zeros(len(cells), np.int64), np.zeros(len(cells), np.int64)
    overall = np.zeros(2, np.int64)
    for run_a, run_b in pairs:
        pa, pb = run_a.predictions(), run_b.predictions()
        if pa is None or pb is None or not pa.records_sha256 or pa.records_sha256 != pb.records_sha256:
            return None
        pa, pb = pa.by_id(), pb.by_id()
        if len(pa) != len(pb) or not np.array_equal(pa.ids, pb.ids) or len(set(pa.ids.tolist())) != len(pa):
            return None
        code = np.array([cell_index.get((c, int(n)), -1) for c, n in zip(pa.categories.tolist(), pa.noun_counts.tolist())], dtype=np.int64)
        known = code >= 0
        only_a, only_b = pa.correct & ~pb.correct, ~pa.correct & pb.correct
        overall += (int(only_a.sum()), int(only_b.sum()))
        b_cells += np.bincount(code[known], weights=only_a[known], minlength=len(cells)).astype(np.int64)
        c_cells += np.bincount(code[known], weights=only_b[known], minlength=len(cells)).astype(np.int64)
    return (int(overall[0]), int(overall[1])), (b_cells, c_cells)


def match_members(a: Any, b: Any) -> list[tuple[RunRecord, RunRecord]]:
    """The member runs to pair: two single runs pair whatever their seeds; groups pair by seed."""
    members_a = getattr(a, "members", None)
    members_b = getattr(b, "members", None)
    if members_a is None and members_b is None:
        return [(a, b)]
    seeds_a = dict(members_a or [(a.fact("seed"), a)])
    seeds_b = dict(members_b or [(b.fact("seed"), b)])
    return [(seeds_a[s], seeds_b[s]) for s in seeds_a if s in seeds_b]


def format_table(comparison: Comparison) -> str:
    """The side-by-side table as text (what ``qa compare`` prints)."""
    labels = comparison.labels()
    lines = ["runs:"]
    label_width = max(len(label) for label in labels)
    for label, run in zip(labels, comparison.runs):
        lines.append(f"  {label:<{label_width}}  {run.run_id}  ({run.path})")
    cells_text = [[text + (f" {MARK}" if i in row.best else "") for i, text in enumerate(row.texts)] + [row.verdict()] for row in comparison.rows]
    name_width = max(len(row.name) + (2 if row.section == "cells" else 0) for row in comparison.rows)
    headers = [*labels, "significance"]
    widths = [max(len(label), *(len(texts[i]) for texts in cells_text)) for i, label in enumerate(headers)]
    lines.append("")
    lines.append(" " * name_width + "  " + "  ".join(label.ljust(w) for label, w in zip(headers, widths)).rstrip())
    section = None
    for row, texts in zip(comparison.rows, cells_text):
        if row.section != section and row.section in ("test", "cells"):
            lines.append("test, accuracy [95% interval] (count) per cell:" if row.section == "cells" else "test:")
        section = row.section
        name = ("  " + row.name) if row.section == "cells" else row.name
        lines.append(name.ljust(name_width) + "  " + "  ".join(t.ljust(w) for t, w in zip(texts, widths)).rstrip())
    methods = {kind for kind in comparison.pairing.values()}
    how = " and ".join(
        {"paired": "exact McNemar on the paired predictions", "unpaired": "two-proportion z-test (test sets differ)"}[m] for m in sorted(methods)
    )
    lines.append(f"{MARK} significantly better than another run in that row, worse than none: {how or 'no test'}; cells Holm-corrected, p < {ALPHA:g}")
    groups = any(getattr(run, "members", None) for run in comparison.runs)
    lines.append("intervals: Wilson 95%" + ("; a group's: the wider of the across-seed t interval and Wilson's" if groups else ""))
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
    groups, accuracy, interval = comparison.cell_accuracy()
    labels = [f"{label} ({run.framework})" for label, run in zip(comparison.labels(), comparison.runs)]
    try:
        figure = plots.compare_chart(labels, groups, accuracy, "Test accuracy by cell", interval=interval)
    except plots.PlottingUnavailable as exc:
        return written, str(exc)
    written.append(plots.save_png(figure, out_dir / plots.COMPARE))
    return written, None


def dumps(comparison: Comparison) -> str:
    return json.dumps(comparison.to_json(), indent=2, default=str)
