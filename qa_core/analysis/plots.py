"""PNG plots of a run's results, drawn with matplotlib (the optional ``qa-core[plots]`` extra).

    accuracy_by_noun_count.png   accuracy against noun count, one line per category, 95% error bars
    cell_heatmap.png             category x noun-count accuracy, each cell annotated with its
                                 95% interval and count
    confusion_matrix.png         true answer x predicted answer counts
    training_curves.png          train / validation loss and accuracy per epoch (metrics.jsonl)
    compare.png                  accuracy per cell, one bar per run (``qa compare --plot``), 95%
                                 error bars

Every accuracy is drawn with its Wilson 95% interval, and every accuracy axis has a dotted chance
line at 0.5 (the questions are balanced yes/no).

Every figure is a bare ``matplotlib.figure.Figure`` drawn on an Agg canvas: pyplot is never
imported, so no window opens, no global figure state leaks between calls and no display is
needed. Sizes are fixed (in pixels: inches x :data:`DPI`) and grow only with the number of
cells; they are multiples of half an inch so the pixel size is exact. matplotlib is imported
inside :func:`_matplotlib` only: without it, :class:`PlottingUnavailable` says how to install it
and the callers still write their numbers.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, QAError
from ..fsutil import atomic_write
from .runs import CellTable, EpochHistory

DPI = 100
INSTALL_HINT = "pip install 'qa-core[plots]'"

ACCURACY_BY_NOUN_COUNT = "accuracy_by_noun_count.png"
CELL_HEATMAP = "cell_heatmap.png"
CONFUSION_MATRIX = "confusion_matrix.png"
TRAINING_CURVES = "training_curves.png"
COMPARE = "compare.png"

#: Base sizes in inches (width, height).
SIZES = {
    ACCURACY_BY_NOUN_COUNT: (8.0, 5.0),
    CELL_HEATMAP: (8.0, 5.0),
    CONFUSION_MATRIX: (6.0, 5.0),
    TRAINING_CURVES: (10.0, 4.0),
    COMPARE: (10.0, 5.0),
}


class PlottingUnavailable(QAError):
    """matplotlib is not installed."""

    def __init__(self) -> None:
        super().__init__(f"plots need matplotlib, which is not installed: {INSTALL_HINT}")


def available() -> bool:
    try:
        _matplotlib()
    except PlottingUnavailable:
        return False
    return True


def _matplotlib() -> tuple[Any, Any]:
    """(Figure, FigureCanvasAgg), imported on first use."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlottingUnavailable() from None
    return Figure, FigureCanvasAgg


def _half_inches(value: float) -> float:
    """Round up to a multiple of 0.5 inch, so that inches x DPI is an exact pixel count."""
    return math.ceil(value * 2) / 2


def heatmap_size(categories: int, noun_counts: int) -> tuple[float, float]:
    base_w, base_h = SIZES[CELL_HEATMAP]
    return _half_inches(max(base_w, 1.2 * noun_counts + 3)), _half_inches(max(base_h, 0.8 * categories + 2))


def compare_size(groups: int, runs: int) -> tuple[float, float]:
    base_w, base_h = SIZES[COMPARE]
    return _half_inches(max(base_w, 0.3 * groups * runs + 0.4 * groups + 2)), base_h


def _figure(size: tuple[float, float]) -> Any:
    Figure, FigureCanvasAgg = _matplotlib()
    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


# -- output formats: PNG for screens, PDF and SVG (vector) for papers ------------------------------

FORMATS = ("png", "pdf", "svg")
#: No creation date or tool version inside the files: the same figure gives the same bytes.
_STABLE_METADATA = {"pdf": {"CreationDate": None, "Creator": None, "Producer": None}, "svg": {"Date": None, "Creator": None}}


def check_format(fmt: str, dpi: int, option: str = "--format", allowed: Sequence[str] = FORMATS) -> None:
    if fmt not in allowed:
        raise ConfigError(f"{option}: expected {', '.join(allowed[:-1])} or {allowed[-1]}, got {fmt!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 10 <= dpi <= 2400:
        raise ConfigError(f"--dpi: expected an integer from 10 to 2400, got {dpi!r}")


def figure_bytes(figure: Any, fmt: str = "png", dpi: int = DPI) -> bytes:
    """The figure as PNG (``dpi`` pixels per inch), PDF or SVG (vector; ``dpi`` only for any
    raster parts). SVG keeps text as text, so it can be edited and searched."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        figure.savefig(buffer, format=fmt, dpi=dpi, metadata=_STABLE_METADATA.get(fmt))
    return buffer.getvalue()


def png_bytes(figure: Any, dpi: int = DPI) -> bytes:
    return figure_bytes(figure, "png", dpi)


def save_figure(figure: Any, path: Path, fmt: str = "png", dpi: int = DPI) -> Path:
    """Write the figure atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, figure_bytes(figure, fmt, dpi))


def save_png(figure: Any, path: Path) -> Path:
    return save_figure(figure, path)


def _text_colour(image: Any, value: float) -> str:
    """Black on light cells, white on dark ones, by the colormap's luminance at ``value``."""
    red, green, blue, _ = image.cmap(image.norm(value))
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


# -------------------------------------------------------------------------------------------------
# the figures
# -------------------------------------------------------------------------------------------------


def accuracy_by_noun_count(table: CellTable, title: str = "Accuracy by noun count", threshold: float | None = None) -> Any:
    """One line per category: accuracy (y) against noun count (x); empty cells leave a gap."""
    figure = _figure(SIZES[ACCURACY_BY_NOUN_COUNT])
    axes = figure.add_subplot()
    x = np.asarray(table.noun_counts)
    low, high = table.interval
    for i, category in enumerate(table.categories):
        present = table.count[i] > 0
        errors = _error_bars(table.accuracy[i, present], np.stack([low[i, present], high[i, present]]))
        axes.errorbar(x[present], table.accuracy[i, present], yerr=errors, marker="o", capsize=3, label=category)
    _chance_line(axes)
    if threshold is not None:
        axes.axhline(threshold, color="grey", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    axes.set_xticks(x)
    axes.set_xlabel("noun count")
    axes.set_ylabel("accuracy")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    axes.set_title(title)
    if table.categories:
        axes.legend(loc="best")
    figure.tight_layout()
    return figure


def cell_heatmap(table: CellTable, title: str = "Accuracy by category x noun count") -> Any:
    """Accuracy as colour (viridis: colour-blind safe, dark 0 .. light 1), each cell annotated with
    accuracy, interval and count in black or white, whichever reads on its colour."""
    figure = _figure(heatmap_size(len(table.categories), len(table.noun_counts)))
    axes = figure.add_subplot()
    masked = np.ma.masked_invalid(table.accuracy)
    low, high = table.interval
    image = axes.imshow(masked, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(len(table.categories)):
        for j in range(len(table.noun_counts)):
            text = f"{table.accuracy[i, j]:.2f}\n[{low[i, j]:.2f}, {high[i, j]:.2f}]\nn={table.count[i, j]}" if table.count[i, j] else "-"
            colour = _text_colour(image, table.accuracy[i, j]) if table.count[i, j] else "black"
            axes.text(j, i, text, ha="center", va="center", fontsize=9, color=colour)
    axes.set_xticks(range(len(table.noun_counts)), [str(n) for n in table.noun_counts])
    axes.set_yticks(range(len(table.categories)), list(table.categories))
    axes.set_xlabel("noun count")
    axes.set_ylabel("category")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="accuracy")
    figure.tight_layout()
    return figure


def confusion_matrix(matrix: np.ndarray, title: str = "Confusion matrix") -> Any:
    """``[[TN, FP], [FN, TP]]``: rows are the true answer, columns the predicted one."""
    matrix = np.asarray(matrix)
    figure = _figure(SIZES[CONFUSION_MATRIX])
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="cividis", vmin=0, vmax=max(1, int(matrix.max())))
    total = max(1, int(matrix.sum()))
    for i in range(2):
        for j in range(2):
            value = int(matrix[i, j])
            axes.text(j, i, f"{value}\n({value / total:.1%})", ha="center", va="center", fontsize=11, color=_text_colour(image, value))
    figure.colorbar(image, ax=axes, label="records")
    axes.set_xticks([0, 1], ["no", "yes"])
    axes.set_yticks([0, 1], ["no", "yes"])
    axes.set_xlabel("predicted answer")
    axes.set_ylabel("true answer")
    axes.set_title(title)
    figure.tight_layout()
    return figure


def training_curves(history: EpochHistory, best_epoch: int | None = None, title: str = "Training curves") -> Any:
    """Loss (left) and accuracy (right) per epoch, train and validation; best epoch marked."""
    figure = _figure(SIZES[TRAINING_CURVES])
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, field in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        for split in ("train", "val"):
            values = history.series.get(f"metrics/{split}/{field}")
            if values is not None and np.isfinite(values).any():
                axes.plot(history.epochs, values, marker="o", label="validation" if split == "val" else split)
        if best_epoch is not None:
            axes.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        axes.set_xlabel("epoch")
        axes.set_ylabel(field)
        if len(history):
            axes.set_xticks(history.epochs if len(history) <= 20 else history.epochs[:: math.ceil(len(history) / 20)])
        axes.grid(alpha=0.3)
        axes.legend(loc="best")
    low, high = history.series.get("metrics/val/accuracy_low"), history.series.get("metrics/val/accuracy_high")
    if low is not None and high is not None and np.isfinite(low).any():  # runs before intervals have none
        accuracy_axes.fill_between(history.epochs, low, high, alpha=0.2, color="C1", label="validation 95% interval")
    _chance_line(accuracy_axes)
    accuracy_axes.legend(loc="best")
    accuracy_axes.set_ylim(-0.02, 1.02)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def compare_chart(
    runs: Sequence[str], groups: Sequence[str], accuracy: np.ndarray, title: str = "Accuracy by cell", interval: np.ndarray | None = None
) -> Any:
    """Grouped bars: one group per cell (``groups``), one bar per run; ``accuracy`` is
    ``[runs, groups]`` with NaN where a run has no such cell; ``interval`` ([2, runs, groups],
    low and high) draws each bar's 95% interval as an error bar."""
    accuracy = np.asarray(accuracy, dtype=float)
    figure = _figure(compare_size(len(groups), len(runs)))
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(runs))
    x = np.arange(len(groups))
    for r, label in enumerate(runs):
        present = np.isfinite(accuracy[r])  # a cell the run lacks leaves a gap, not a zero bar
        errors = _error_bars(accuracy[r, present], interval[:, r, present]) if interval is not None else None
        axes.bar(x[present] + (r - (len(runs) - 1) / 2) * width, accuracy[r, present], width, label=label, yerr=errors, capsize=2, error_kw={"linewidth": 0.8})
    _chance_line(axes)
    axes.set_xticks(x, list(groups), rotation=45, ha="right", fontsize=8)
    axes.set_ylabel("accuracy")
    axes.set_ylim(0, 1.05)
    axes.grid(axis="y", alpha=0.3)
    axes.set_title(title)
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    return figure


# -- intervals: every accuracy drawn with its 95% interval, and the chance line -------------------


def _error_bars(values: np.ndarray, interval: np.ndarray) -> np.ndarray:
    """matplotlib's ``yerr`` ([2, n]: distance down, distance up) from [low, high] bounds."""
    return np.clip(np.stack([values - interval[0], interval[1] - values]), 0.0, None)


def _chance_line(axes: Any) -> None:
    """Accuracy 0.5: what answering at random scores on balanced yes/no questions."""
    axes.axhline(0.5, color="black", linestyle=":", linewidth=0.8, alpha=0.6, label="chance 0.5")


# -------------------------------------------------------------------------------------------------
# sets of figures
# -------------------------------------------------------------------------------------------------


def result_figures(table: CellTable, confusion: np.ndarray | None, label: str = "") -> dict[str, Any]:
    """The figures of one scored split, by file name (nothing for an empty table)."""
    suffix = f"\n{label}" if label else ""  # on a line of its own: titles carry plugin, dataset, seed
    figures: dict[str, Any] = {}
    if not table.empty:
        figures[ACCURACY_BY_NOUN_COUNT] = accuracy_by_noun_count(table, "Accuracy by noun count" + suffix)
        figures[CELL_HEATMAP] = cell_heatmap(table, "Accuracy by category x noun count" + suffix)
    if confusion is not None:
        figures[CONFUSION_MATRIX] = confusion_matrix(confusion, "Confusion matrix" + suffix)
    return figures


def write_figures(figures: Mapping[str, Any], directory: Path, fmt: str = "png", dpi: int = DPI) -> list[Path]:
    """Each figure as ``<name>.<fmt>`` in ``directory``."""
    return [save_figure(figure, directory / f"{Path(name).stem}.{fmt}", fmt, dpi) for name, figure in figures.items()]


def run_title(run: Any) -> str:
    """What a reader needs to tell runs apart: ``name: plugin on dataset, seed N``; the run id
    only when nothing else is known."""
    config = run.config
    parts = [f"{run.plugin} on {run.fact('dataset', '?')}"]
    if config.get("seed") is not None:
        parts.append(f"seed {config['seed']}")
    title = ", ".join(parts) if run.plugin != "?" else run.run_id
    return f"{config['name']}: {title}" if config.get("name") else title


#: Options whose values tell runs of one plugin apart, in the order they are tried.
_DISTINGUISHING = ("dataset", "seed", "epochs", "batch_size", "max_len")


def distinct_labels(runs: Sequence[Any]) -> list[str]:
    """A label per run that no other run in ``runs`` shares: its name, or its plugin plus the
    options where it differs from the runs of the same plugin (``transformer seed=1``), else
    the end of its run id."""
    bases = [str(run.config.get("name") or run.plugin) for run in runs]
    labels = []
    for index, (run, base) in enumerate(zip(runs, bases)):
        twins = [other for other, other_base in zip(runs, bases) if other_base == base]
        if len(twins) == 1 or getattr(run, "members", None):  # a seed group says "x3 seeds" itself
            labels.append(base)
            continue
        def resolved(r: Any) -> dict[str, Any]:  # the model's hyperparameters and the run options
            params = {k: v for k, v in (r.config.get("resolved_params") or {}).items() if k.startswith("model/")}
            return {**params, **{k: r.fact(k) for k in _DISTINGUISHING}}

        mine = resolved(run)
        order = ["dataset", "seed", *(k for k in mine if k.startswith("model/")), *_DISTINGUISHING[2:]]
        differing = [key for key in order if len({json_key(resolved(t).get(key)) for t in twins}) > 1]
        parts = [f"{key.removeprefix('model/')}={mine[key]}" for key in differing if mine.get(key) is not None][:2]
        labels.append(" ".join([base, *parts]) if parts else f"{base} {run.run_id[-4:]}")
    # two runs identical in every option still need telling apart
    return [label if labels.count(label) == 1 else f"{label} {run.run_id[-4:]}" for label, run in zip(labels, runs)]


def json_key(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


def run_figures(run: Any) -> dict[str, Any]:
    """Every figure of a finished run (a :class:`~qa_core.analysis.runs.RunRecord`): its training
    curves from metrics.jsonl and its test results from summary.json, titled by :func:`run_title`."""
    figures: dict[str, Any] = {}
    title = run_title(run)
    if run.lines:
        figures[TRAINING_CURVES] = training_curves(run.history(), (run.best or {}).get("epoch"), f"Training curves: {title}")
    figures.update(result_figures(run.test_cells(), run.test_confusion(), f"test, {title}"))
    return figures
