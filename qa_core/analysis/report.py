"""``qa report``: one self-contained HTML file per run.

The page holds everything a reader needs with no server and no other file: the run's facts, the
test results (overall, confusion matrix, every category x noun-count cell with its count, per
category, per noun count), the cells with the most errors, the best and top-k epochs, the epoch
history, the probe results when ``qa probe`` has run, the configuration, and the plots embedded
as base64 PNG (``data:`` URLs). CSS is inline; there is no script. Every table has an ``id``
(``summary``, ``test-overall``, ``confusion``, ``cells``, ``by-category``, ``by-noun-count``,
``errors``, ``top-epochs``, ``epochs``, ``probe``, ``config``) and every image one too
(``plot-<file stem>``), so the page can be checked and scraped.

Without matplotlib the page is still written, with a line saying how to install the plots.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..fsutil import atomic_write
from .runs import CellTable, RunRecord, groups_from_values, lost_support

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 70em; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
figure { display: inline-block; margin: 0.5em; } img { max-width: 100%; border: 1px solid #eee; }
.note { color: #666; font-style: italic; }
.flag { background: #fff3cd; border-left: 4px solid #b8860b; padding: 0.4em 0.8em; margin: 0.4em 0; }
details.story { max-width: 50em; } details.story p { white-space: pre-wrap; margin: 0.3em 0; }
"""


TEXT = ' class="text"'
INTERVAL_NOTE = "Intervals: Wilson 95% (the uncertainty of this model's accuracy on a test set of this size)."
INTERVAL_NOTE_GROUP = (
    "A group of seeds: every figure is the mean over the seeds; accuracy intervals are the wider of the "
    "across-seed 95% interval of the mean (Student's t) and the mean's Wilson 95% interval."
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def table(table_id: str, header: Sequence[str], rows: Iterable[Sequence[Any]], text_columns: int = 1) -> str:
    """An HTML table; the first ``text_columns`` columns are left-aligned labels. A cell given as
    ``(text, style)`` gets that inline style."""
    out = [f'<table id="{_e(table_id)}">', "<tr>" + "".join(f'<th{TEXT if i < text_columns else ""}>{_e(h)}</th>' for i, h in enumerate(header)) + "</tr>"]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text, style = cell if isinstance(cell, tuple) else (cell, "")
            attrs = (TEXT if i < text_columns else "") + (f' style="{_e(style)}"' if style else "")
            cells.append(f"<td{attrs}>{_e(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _accuracy_colour(accuracy: float) -> str:
    """One hue, darker with accuracy (white 0 .. mid blue 1): no red/green to tell apart, and
    light enough everywhere to read black text on."""
    return f"background: hsl(210, 70%, {95 - 30 * max(0.0, min(1.0, accuracy)):.0f}%)"


def _interval(values: dict[str, Any], prefix: str) -> str:
    """``[0.41, 0.61]``: the stored 95% bounds of ``<prefix>``, else Wilson's from its count."""
    from ..metrics import wilson

    low, high = values.get(f"{prefix}_low"), values.get(f"{prefix}_high")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        accuracy, count = values.get(prefix), values.get(f"{prefix.rsplit('/', 1)[0]}/count")
        if not isinstance(accuracy, (int, float)) or not isinstance(count, (int, float)) or not prefix.endswith("accuracy"):
            return "-"
        low, high = (float(x) for x in wilson(round(accuracy * count), count))
    return f"[{low:.2f}, {high:.2f}]"


def cells_table(cells: CellTable, table_id: str = "cells") -> str:
    rows = []
    low, high = cells.interval
    for i, category in enumerate(cells.categories):
        row: list[Any] = [category]
        for j in range(len(cells.noun_counts)):
            if cells.count[i, j]:
                text = f"{cells.accuracy[i, j]:.3f} [{low[i, j]:.2f}, {high[i, j]:.2f}] ({cells.count[i, j]})"
                row.append((text, _accuracy_colour(cells.accuracy[i, j])))
            else:
                row.append("-")
        rows.append(row)
    return table(table_id, ["category", *(f"{n} nouns" for n in cells.noun_counts)], rows)


def _image(name: str, png: bytes, caption: str, mime: str = "image/png") -> str:
    stem = name.rsplit(".", 1)[0]
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img id="plot-{_e(stem)}" alt="{_e(caption)}" src="data:{mime};base64,{data}"><figcaption>{_e(caption)}</figcaption></figure>'


CAPTIONS = {
    "training_curves.png": "Training and validation loss and accuracy per epoch",
    "accuracy_by_noun_count.png": "Test accuracy by noun count, one line per category",
    "cell_heatmap.png": "Test accuracy by category x noun count, with sample counts",
    "confusion_matrix.png": "Test confusion matrix",
}


#: Image formats a page can embed (PDF cannot be an <img>).
REPORT_FORMATS = ("png", "svg")
MIME = {"png": "image/png", "svg": "image/svg+xml"}


def _figures(run: RunRecord, fmt: str = "png", dpi: int = 100) -> tuple[list[tuple[str, bytes, str]], str | None]:
    """(file name, image bytes, caption) of every plot, or the reason there are none."""
    from . import plots

    try:
        figures = plots.run_figures(run)
    except plots.PlottingUnavailable as exc:
        return [], str(exc)
    return [(name, plots.figure_bytes(figure, fmt, dpi), CAPTIONS.get(name, name)) for name, figure in figures.items()], None


def build_report(run: RunRecord, fmt: str = "png", dpi: int = 100) -> tuple[str, list[str], str | None]:
    """(HTML text, ids of the embedded images, why plots are missing or None); the plots are
    embedded as ``fmt`` (png or svg)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>qa report: {_e(run.run_id)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{_e(_run_heading(run))}</h1>",
        f'<p class="note">Report written {_e(time.strftime("%Y-%m-%d %H:%M:%S"))} from {_e(run.path)}</p>',
        _summary_section(run),
    ]
    parts += run_flags(run)
    parts += hyperparameters_section(run)
    parts.extend(_members(run))
    parts += _test_section(run)
    lost = lost_support(run)
    if lost:
        parts.append(_truncation_section(run, lost))
    parts += _errors_section(run)
    parts += misclassified_section(run)
    parts += _training_section(run)
    parts += _probe_section(run)
    plots, missing = _plots_section(run, fmt, dpi)
    parts += plots
    parts.append("<h2>Configuration</h2>")
    config_rows = [[key, value if isinstance(value, str) else json.dumps(value, default=str)] for key, value in run.config.items()]
    parts.append(table("config", ["key", "value"], config_rows, text_columns=2))
    parts.append("</body></html>")
    text = "\n".join(parts) + "\n"
    return text, re.findall(r'<img id="([^"]+)"', text), missing


def _summary_section(run: RunRecord) -> str:
    best = run.best or {}
    overall = run.test_overall()
    seconds = run.seconds
    return table(
        "summary",
        ["fact", "value"],
        [
            ["plugin", f"{run.plugin} {run.plugin_version}"],
            ["framework", run.framework],
            ["dataset", run.fact("dataset", "?")],
            ["status", run.status],
            ["epochs run", run.summary.get("epochs_run", "-")],
            ["training time (s)", _fmt(seconds, 1) if seconds is not None else "-"],
            ["best epoch", best.get("epoch", "-")],
            ["best validation accuracy", _fmt(best.get("accuracy"))],
            ["best validation loss", _fmt(best.get("loss"))],
            ["best checkpoint", best.get("checkpoint", "-")],
            *([["seeds", ", ".join(str(seed) for seed in run.summary["seeds"])]] if run.summary.get("seeds") else []),
            ["test accuracy", _fmt(overall.get("accuracy"))],
            ["test loss", _fmt(overall.get("loss"))],
        ],
        text_columns=2,
    )


def _test_section(run: RunRecord) -> list[str]:
    """Overall test figures with intervals, the confusion matrix, the cell table and the
    breakdowns by category, noun count and length."""
    values = run.values
    overall = run.test_overall()
    cells = run.test_cells()
    parts = ["<h2>Test results</h2>"]
    if overall:
        intervals = [_interval(values, f"metrics/test/{k}") for k in ("accuracy", "precision", "recall")]
        parts.append(table("test-overall", ["accuracy", "loss", "precision", "recall", "f1", "count", "accuracy 95% interval", "precision 95% interval", "recall 95% interval"], [[_fmt(overall.get(k)) for k in ("accuracy", "loss", "precision", "recall", "f1", "count")] + intervals], text_columns=0))
        parts.append(f'<p class="note">{_e(INTERVAL_NOTE_GROUP if run.summary.get("seeds") else INTERVAL_NOTE)}</p>')
        scored = (run.summary.get("test") or {}).get("scored_with")
        if scored:
            parts.append(f'<p class="note">Scored with the {_e(scored)}.</p>')
    else:
        parts.append('<p class="note">This run has no test results (it did not finish).</p>')
    confusion = run.test_confusion()
    if confusion is not None:
        parts.append("<h3>Confusion matrix</h3>")
        parts.append(table("confusion", ["true \\ predicted", "no", "yes"], [["no", *confusion[0].tolist()], ["yes", *confusion[1].tolist()]]))
    if not cells.empty:
        parts.append("<h3>Accuracy by category x noun count [95% interval] (sample count)</h3>")
        parts.append(cells_table(cells))
        for kind, title, table_id in (("category", "category", "by-category"), ("noun_count", "noun count", "by-noun-count"), ("length", "story length (sentences)", "by-length")):
            rows = [[key, _fmt(g.get("accuracy")), _fmt(g.get("count")), _fmt(g.get("loss")), _interval(values, f"test/by_{kind}/{key}/accuracy")] for key, g in groups_from_values(values, kind).items()]
            if not rows and kind == "length":
                continue  # a run made before the length axis
            parts.append(f"<h3>By {title}</h3>")
            parts.append(table(table_id, [title, "accuracy", "count", "loss", "accuracy 95% interval"], rows))
    return parts


def _errors_section(run: RunRecord) -> list[str]:
    errors = run.eval_json("errors.json")
    if not isinstance(errors, dict):
        return []
    parts = ["<h2>Errors</h2>"]
    parts.append(f"<p>{_e(errors.get('total_errors', '?'))} errors: {_e(errors.get('false_positives', '?'))} false positives (said yes), {_e(errors.get('false_negatives', '?'))} false negatives (said no). The cells with the most errors:</p>")
    parts.append(
        table(
            "errors",
            ["category", "noun count", "errors", "false positives", "false negatives", "count", "accuracy"],
            [[c["category"], c["noun_count"], c["errors"], c["false_positives"], c["false_negatives"], c["count"], _fmt(c["accuracy"])] for c in errors.get("worst_cells", [])],
            text_columns=1,
        )
    )
    return parts


def _training_section(run: RunRecord) -> list[str]:
    best = run.best or {}
    parts = ["<h2>Training</h2>"]
    parts.append("<h3>Top epochs (by validation accuracy)</h3>")
    parts.append(table("top-epochs", ["rank", "epoch", "val accuracy", "val loss", "checkpoint"], [[rank, e.get("epoch"), _fmt(e.get("accuracy")), _fmt(e.get("loss")), e.get("checkpoint") or "-"] for rank, e in enumerate(run.top_epochs, start=1)], text_columns=0))
    parts.append("<h3>Epochs</h3>")
    history = [
        [line["epoch"], *(_fmt(line.get(name)) for name in ("metrics/train/loss", "metrics/train/accuracy", "metrics/val/loss", "metrics/val/accuracy"))]
        + ["best" if line["epoch"] == best.get("epoch") else ""]
        for line in run.lines
    ]
    parts.append(table("epochs", ["epoch", "train loss", "train accuracy", "val loss", "val accuracy", ""], history, text_columns=0))
    return parts


def _probe_section(run: RunRecord) -> list[str]:
    """The progressive difficulty probe's curve and boundaries, when qa probe ran."""
    probe = _probe_json(run)
    if probe is None:
        return []
    parts = ["<h2>Progressive difficulty probe</h2>"]
    parts.append(f"<p>{_e(probe.get('per_cell'))} fresh stories per cell (seed {_e(probe.get('seed'))}); boundary: the first noun count with accuracy below {_e(probe.get('threshold'))}.</p>")
    curve = probe.get("curve", {})
    probe_cells = CellTable.from_cells({(category, p["noun_count"]): p for category, points in curve.items() for p in points})
    parts.append(cells_table(probe_cells, "probe"))
    boundary = probe.get("boundary", {})
    upper = probe.get("boundary_upper_bound", {})
    parts.append(table("probe-boundary", ["category", "boundary (noun count)", "95% upper bound below (noun count)"], [[c, "none" if n is None else n, "none" if upper.get(c) is None else upper[c]] for c, n in boundary.items()]))
    capped = probe.get("capped_by_truncation") or []
    if probe.get("lost_to_max_len"):
        lost_cells = ", ".join(f"{x['category']}/{x.get('noun_count', x.get('length'))} {x['lost']}" for x in probe["lost_to_max_len"])
        parts.append(f'<p class="note">Scored on answerable records; lost to max_len: {_e(lost_cells)}.'
                     + (f" Capped by truncation (even a perfect reader of the kept text stays below the threshold): {_e(', '.join(str(x.get('noun_count', x.get('length'))) + ' ' + x['category'] for x in capped))}." if capped else "")
                     + "</p>")
    probe_plot = run.path / "probe" / "accuracy_by_noun_count.png"
    if probe_plot.is_file():  # drawn by qa probe, with the threshold line
        parts.append(_image("probe_accuracy_by_noun_count.png", probe_plot.read_bytes(), "Probe accuracy by noun count, with the threshold"))
    return parts


def _plots_section(run: RunRecord, fmt: str, dpi: int) -> tuple[list[str], str | None]:
    parts = ["<h2>Plots</h2>"]
    figures, missing = _figures(run, fmt, dpi)
    if missing:
        parts.append(f'<p class="note">No plots: {_e(missing)}</p>')
    for name, png, caption in figures:
        parts.append(_image(name, png, caption, MIME[fmt]))
    return parts, missing


def _truncation_section(run: RunRecord, lost: dict[tuple[str, int], int]) -> str:
    """The cells where max_len cut supporting sentences: how many, and the accuracy on the rest
    (eval/groups.csv's answerable columns)."""
    import csv

    answerable: dict[tuple[str, int], dict[str, str]] = {}
    groups = run.path / "eval" / "groups.csv"
    if groups.is_file():
        for row in csv.DictReader(groups.read_text(encoding="utf-8").splitlines()):
            if row.get("level") == "cell" and row.get("noun_count", "").isdigit():
                answerable[(row["category"], int(row["noun_count"]))] = row
    rows = []
    for (category, nouns), count in lost.items():
        row = answerable.get((category, nouns), {})
        accuracy = row.get("answerable_accuracy") or ""
        interval = f"[{float(row['answerable_accuracy_low']):.3f}, {float(row['answerable_accuracy_high']):.3f}]" if accuracy else "-"
        rows.append([category, nouns, count, row.get("answerable_count", "-"), _fmt(float(accuracy)) if accuracy else "-", interval])
    return (
        f"<h3>Lost to max_len={_e(run.config.get('max_len'))}</h3>"
        f'<p class="note">{sum(lost.values())} test records lost a sentence their answer needs (their supporting facts, or any story text '
        "where records carry none): no model could answer them from what it read. Accuracy on the answerable rest:</p>"
        + table("truncation", ["category", "noun count", "lost", "answerable", "answerable accuracy", "95% interval"], rows, text_columns=1)
    )


def _members(run: RunRecord) -> list[str]:
    """A seed group's member runs, one row each (nothing for a single run)."""
    members = getattr(run, "members", None)
    if not members:
        return []
    rows = [
        [seed, member.run_id, member.status, _fmt(member.values.get("metrics/test/accuracy")), _interval(member.values, "metrics/test/accuracy")]
        for seed, member in members
    ]
    return ["<h2>Seeds</h2>", table("seeds", ["seed", "run", "status", "test accuracy", "95% interval"], rows, text_columns=3)]


def _probe_json(run: RunRecord) -> dict[str, Any] | None:
    path = run.path / "probe" / "probe.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_report(run_dir: Path, out: Path | None = None, fmt: str = "png", dpi: int = 100) -> tuple[Path, list[str], str | None]:
    """Write the report (default RUN_DIR/report.html). Returns (path, image ids, plot note)."""
    from .groups import load_run_or_group
    from .plots import check_format

    check_format(fmt, dpi, allowed=REPORT_FORMATS)
    run = load_run_or_group(run_dir)
    text, image_ids, missing = build_report(run, fmt, dpi)
    out = out or run.path / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, text)
    return out, image_ids, missing


# -------------------------------------------------------------------------------------------------
# what a reader must know before trusting the numbers: flags, effective hyperparameters, examples
# -------------------------------------------------------------------------------------------------


def _run_heading(run: RunRecord) -> str:
    from .plots import run_title

    return f"Run {run.run_id}: {run_title(run)}" if run.plugin != "?" else f"Run {run.run_id}"


def run_flags(run: RunRecord) -> list[str]:
    """One highlighted line per fact that changes how the run reads: resumed, stopped before its
    planned epochs, not finished, records cut by max_len."""
    config, summary = run.config, run.summary
    flags = []
    if config.get("resumed_after_epoch") is not None:
        flags.append(f"Resumed: this run was interrupted and continued after epoch {config['resumed_after_epoch']} (qa run --resume).")
    planned, done = config.get("epochs"), summary.get("epochs_run")
    if isinstance(planned, int) and isinstance(done, int) and done < planned:
        why = f"early stopping (patience {config.get('patience')})" if run.status == "finished" and config.get("patience") else run.status
        flags.append(f"Truncated: {done} of {planned} planned epochs were run ({why}).")
    if run.status not in ("finished", "?"):
        flags.append(f"Status {run.status}: the test results below are missing or from an unfinished run.")
    lost = config.get("lost_support") or config.get("truncation")
    if lost:
        flags.append(f"Input truncation: some records were cut to max_len={config.get('max_len')} and lost a supporting sentence ({_e(json.dumps(lost, default=str))}).")
    if summary.get("lost"):
        flags.append(f"Lost files: {', '.join(sorted(summary['lost']))} (see summary.json).")
    if not flags:
        return []
    return ['<div id="flags">', *(f'<p class="flag">{_e(flag)}</p>' for flag in flags), "</div>"]


#: Core options that shape training, shown beside the plugin's own hyperparameters.
CORE_OPTIONS = ("epochs", "batch_size", "seed", "max_len", "threshold", "top_k", "checkpoint_every", "patience", "val_fraction")


def hyperparameters_section(run: RunRecord) -> list[str]:
    """The values the run actually used (the plugin's resolved parameters, defaults included),
    and whether each was given or a default: never the ``lr null`` of an unset option."""
    config = run.config
    resolved = config.get("resolved_params") or {}
    given = {**(config.get("params") or {}), **({"lr": config["lr"]} if config.get("lr") is not None else {})}
    rows = [[name[len("model/"):], _param(value), "given" if name[len("model/"):] in given else "default"] for name, value in resolved.items() if name.startswith("model/")]
    core = [[name, _param(resolved.get(name, config.get(name))), "run option"] for name in CORE_OPTIONS if resolved.get(name, config.get(name)) is not None]
    if not rows and not core:
        return []
    return ["<h2>Hyperparameters</h2>", table("hyperparameters", ["parameter", "value", "source"], rows + core, text_columns=1)]


def _param(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (bool, list, dict)) or value is None else str(value)


#: Misclassified stories shown per category x noun-count cell.
EXAMPLES_PER_CELL = 3
STORY_PREVIEW = 160


def misclassified_section(run: RunRecord) -> list[str]:
    """A few misclassified test stories per cell (eval/misclassified.jsonl), the most confident
    mistakes first: what a failure looks like, not only how many there are."""
    path = run.path / "eval" / "misclassified.jsonl"
    if not path.is_file():
        return []
    by_cell: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for line in path.read_text(encoding="utf-8").split("\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            by_cell.setdefault((str(record.get("category")), int(record.get("noun_count") or 0)), []).append(record)
    if not by_cell:
        return []
    rows = []
    for (category, nouns), records in sorted(by_cell.items()):
        records.sort(key=lambda r: -abs(float(r.get("probability", 0.5)) - 0.5))
        for record in records[:EXAMPLES_PER_CELL]:
            story = str(record.get("story", ""))
            preview = story if len(story) <= STORY_PREVIEW else "... " + story[-STORY_PREVIEW:]
            rows.append(
                "<tr>"
                f'<td class="text">{_e(category)}</td><td>{_e(nouns)}</td>'
                f'<td class="text"><details class="story"><summary>{_e(preview)}</summary><p>{_e(story)}</p></details></td>'
                f'<td class="text">{_e(record.get("question", ""))}</td><td>{_e(record.get("answer", ""))}</td>'
                f"<td>{_fmt(float(record.get('probability', math.nan)), 3)}</td>"
                "</tr>"
            )
    header = "".join(f"<th{TEXT if i in (0, 2, 3) else ''}>{_e(h)}</th>" for i, h in enumerate(["category", "noun count", "story (end; click for all)", "question", "answer", "p(yes)"]))
    return [
        f"<h3>Misclassified stories (up to {EXAMPLES_PER_CELL} per cell, most confident first)</h3>",
        f'<table id="misclassified"><tr>{header}</tr>',
        *rows,
        "</table>",
    ]
