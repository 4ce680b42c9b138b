"""What a run prints: the plugins line, one line per epoch, the final results block.

Everything goes through :func:`say`, which uses ``tqdm.write`` so lines never tear a progress bar.
"""

from __future__ import annotations

import sys
from typing import Iterable, TextIO

from tqdm import tqdm

from .metrics import MetricsReport

RULE = "=" * 48
THIN_RULE = "-" * 48


#: Ranks other than 0 of a data-parallel run print nothing (errors go through the CLI's own path).
_muted = False


def mute() -> None:
    global _muted
    _muted = True


def say(line: str = "", file: TextIO | None = None) -> None:
    if not _muted:
        tqdm.write(line, file=file or sys.stdout)


def warn(line: str) -> None:
    if not _muted:
        tqdm.write(line, file=sys.stderr)


def truncation_line(split: str, stats, max_len: int) -> str:
    """The warning when max_len cut records: how many, and which cells lost supporting facts."""
    line = (
        f"qa: {stats.truncated} of {stats.records} {split} records are longer than max_len={max_len} "
        f"(longest {stats.longest}); kept the question and the end of each story"
    )
    if stats.lost:
        cells = ", ".join(f"{cell} {count}" for cell, count in sorted(stats.lost_by_cell.items(), key=lambda item: -item[1]))
        line += f"; {stats.lost} lost a supporting sentence and cannot be answered ({cells})"
    return line


def plugins_line(model: tuple[str, str], trackers: Iterable[tuple[str, str]]) -> str:
    name, version = model
    tracked = ", ".join(f"{n} {v}" for n, v in trackers)
    return f"plugins: model {name} {version}; trackers {tracked}"


def epoch_line(
    epoch: int,
    epochs: int,
    train_loss: float,
    train_accuracy: float,
    val: MetricsReport,
    seconds: float,
    is_best: bool,
    top_rank: int | None,
) -> str:
    marks = []
    if is_best:
        marks.append("* new best")
    if top_rank is not None:
        marks.append(f"top-{top_rank}")
    width = len(str(epochs))
    return (
        f"epoch {epoch:>{width}}/{epochs}  train loss {train_loss:.4f} acc {train_accuracy:.4f}  |  "
        f"val loss {val.loss:.4f} acc {val.accuracy:.4f} {interval(val.overall.accuracy_low, val.overall.accuracy_high)}  ({seconds:.1f}s)"
        + (f"  [{', '.join(marks)}]" if marks else "")
    )


def interval(low: float, high: float) -> str:
    """A 95% interval as it follows a proportion: ``[0.81, 0.92]``."""
    return f"[{low:.2f}, {high:.2f}]"


def results_block(report: MetricsReport, title: str = "EVALUATION RESULTS BY CATEGORY") -> str:
    """Per cell, the accuracy, its Wilson 95% interval and the sample count; then overall."""
    from .evaluation import answerable_by

    lost = answerable_by(report)
    lines = [RULE, f"{title}:"]
    for (category, nouns), group in report.by_group.items():
        line = (
            f"  - {category}/noun_{nouns}: Accuracy={group.accuracy:.4f} "
            f"{interval(group.accuracy_low, group.accuracy_high)} (from {group.count} samples)"
        )
        cut, kept = lost.get(("cell", (category, nouns)), (0, None))
        if cut:  # the window cut a supporting sentence: the model could not have known
            answerable = f"{kept.accuracy:.4f} {interval(kept.accuracy_low, kept.accuracy_high)}" if kept else "-"
            line += f"; {cut} lost a supporting sentence to max_len, answerable-only accuracy {answerable}"
        lines.append(line)
    lines.append(RULE)
    overall = report.overall
    lines.append(f"Overall accuracy: {overall.accuracy:.4f} {interval(overall.accuracy_low, overall.accuracy_high)}")
    lines.append(f"Loss: {report.loss:.4f}")
    lines.append("(intervals: Wilson 95%)")
    return "\n".join(lines)
