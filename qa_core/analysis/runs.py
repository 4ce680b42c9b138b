"""Reading what a run left on disk, as tables the plots, the report and the comparison share.

A run directory holds ``config.json`` (how it was started), ``metrics.jsonl`` (one line per
epoch) and ``summary.json`` (best epoch, top-k, seconds, framework and, under ``values``, the
test metrics by their shared names, e.g. ``test/by_group/dense/noun_15/accuracy``). Everything
here is derived from those names, so a run of any framework reads the same way.

The one table every view needs is :class:`CellTable`: accuracy, count and loss of each
category x noun-count cell as ``[categories, noun_counts]`` arrays, NaN (count 0) where a cell
has no records.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError
from ..metrics import MetricsReport

#: Names of the per-cell metrics: ``<split>/by_group/<category>/noun_<n>/<field>``.
_CELL_NAME = re.compile(r"^(?P<split>[^/]+)/by_group/(?P<category>.+)/noun_(?P<nouns>\d+)/(?P<field>accuracy|count|loss|accuracy_low|accuracy_high)$")


@dataclass(frozen=True)
class CellTable:
    """Accuracy, count and loss per category x noun-count cell."""

    categories: tuple[str, ...]
    noun_counts: tuple[int, ...]
    accuracy: np.ndarray  # float64 [C, N], NaN where the cell is empty
    count: np.ndarray  # int64 [C, N], 0 where the cell is empty
    loss: np.ndarray  # float64 [C, N], NaN where the cell is empty
    #: Stored 95% bounds ([C, N], NaN where absent: :attr:`interval` computes Wilson's then).
    stored_low: np.ndarray | None = None
    stored_high: np.ndarray | None = None

    @classmethod
    def from_cells(cls, cells: Mapping[tuple[str, int], Mapping[str, float]]) -> "CellTable":
        """From ``{(category, nouns): {"accuracy": .., "count": .., "loss": ..}}``; categories keep
        their first-seen order (the core's difficulty order), noun counts are sorted."""
        categories = tuple(dict.fromkeys(category for category, _ in cells))
        noun_counts = tuple(sorted({nouns for _, nouns in cells}))
        shape = (len(categories), len(noun_counts))
        accuracy, loss = np.full(shape, np.nan), np.full(shape, np.nan)
        count = np.zeros(shape, dtype=np.int64)
        row = {c: i for i, c in enumerate(categories)}
        col = {n: j for j, n in enumerate(noun_counts)}
        low, high = np.full(shape, np.nan), np.full(shape, np.nan)
        for (category, nouns), values in cells.items():
            i, j = row[category], col[nouns]
            count[i, j] = int(values.get("count", 0))
            accuracy[i, j] = float(values.get("accuracy", math.nan))
            loss[i, j] = float(values.get("loss", math.nan))
            low[i, j] = float(values.get("accuracy_low", math.nan))
            high[i, j] = float(values.get("accuracy_high", math.nan))
        return cls(categories, noun_counts, accuracy, count, loss, low, high)

    @classmethod
    def from_report(cls, report: MetricsReport) -> "CellTable":
        return cls.from_cells({key: group.to_json() for key, group in report.by_group.items()})

    @classmethod
    def from_values(cls, values: Mapping[str, Any], split: str = "test") -> "CellTable":
        """From flat metric names (summary.json ``values`` or a metrics.jsonl line)."""
        cells: dict[tuple[str, int], dict[str, float]] = {}
        for name, value in values.items():
            match = _CELL_NAME.match(name)
            if match and match["split"] == split:
                cells.setdefault((match["category"], int(match["nouns"])), {})[match["field"]] = value
        return cls.from_cells(cells)

    @property
    def empty(self) -> bool:
        return not self.categories

    @property
    def interval(self) -> tuple[np.ndarray, np.ndarray]:
        """95% interval of every cell's accuracy ([C, N] low, high; NaN where empty): the stored
        bounds (Wilson for a run, across seeds for a group), else Wilson from the count and
        accuracy, so runs written before intervals were stored get them too."""
        from ..metrics import wilson

        correct = np.round(np.nan_to_num(self.accuracy) * self.count)
        low, high = wilson(correct, self.count)
        if self.stored_low is not None and self.stored_high is not None:
            stored = np.isfinite(self.stored_low) & np.isfinite(self.stored_high)
            low, high = np.where(stored, self.stored_low, low), np.where(stored, self.stored_high, high)
        empty = self.count == 0
        return np.where(empty, np.nan, low), np.where(empty, np.nan, high)

    def cells(self) -> list[tuple[str, int, float, int, float]]:
        """(category, nouns, accuracy, count, loss) of every non-empty cell, row by row."""
        rows, cols = np.nonzero(self.count)
        return [
            (self.categories[i], self.noun_counts[j], float(self.accuracy[i, j]), int(self.count[i, j]), float(self.loss[i, j]))
            for i, j in zip(rows.tolist(), cols.tolist())
        ]


_GROUP_NAME = re.compile(r"^(?P<split>[^/]+)/by_(?P<kind>category|noun_count|length)/(?P<key>.+)/(?P<field>accuracy|count|loss)$")


def groups_from_values(values: Mapping[str, Any], kind: str, split: str = "test") -> dict[str, dict[str, float]]:
    """``{category: {accuracy, count, loss}}`` (kind "category") or ``{"8": {...}}`` (kind
    "noun_count", sorted by number) from ``<split>/by_<kind>/<key>/<field>`` names."""
    groups: dict[str, dict[str, float]] = {}
    for name, value in values.items():
        match = _GROUP_NAME.match(name)
        if match and match["split"] == split and match["kind"] == kind:
            groups.setdefault(match["key"], {})[match["field"]] = value
    if kind == "noun_count":
        return dict(sorted(groups.items(), key=lambda item: int(item[0]) if item[0].isdigit() else 0))
    if kind == "length":  # buckets "1-4", "5-8", ... by their lower bound
        return dict(sorted(groups.items(), key=lambda item: int(item[0].split("-")[0].rstrip("+")) if item[0][:1].isdigit() else 0))
    return groups


def confusion_from_values(values: Mapping[str, Any], split: str = "test") -> np.ndarray | None:
    """``[[TN, FP], [FN, TP]]`` from ``<split>/confusion/*`` names, or None if absent."""
    names = [f"{split}/confusion/{field}" for field in ("tn", "fp", "fn", "tp")]
    if not all(name in values for name in names):
        return None
    return np.array([int(values[name]) for name in names], dtype=np.int64).reshape(2, 2)


@dataclass
class EpochHistory:
    """Per-epoch curves from metrics.jsonl, each an array aligned with ``epochs``."""

    epochs: np.ndarray  # int [E]
    series: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float [E], NaN where missing

    @classmethod
    def from_lines(cls, lines: list[dict[str, Any]]) -> "EpochHistory":
        names = ("metrics/train/loss", "metrics/train/accuracy", "metrics/val/loss", "metrics/val/accuracy", "metrics/val/accuracy_low", "metrics/val/accuracy_high")
        epochs = np.array([int(line["epoch"]) for line in lines], dtype=np.int64)
        series = {name: np.array([float(line.get(name, math.nan)) for line in lines]) for name in names}
        return cls(epochs, series)

    def __len__(self) -> int:
        return int(self.epochs.size)


@dataclass
class RunRecord:
    """One run directory, read once."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    lines: list[dict[str, Any]]

    @classmethod
    def load(cls, path: str | Path) -> "RunRecord":
        path = Path(path)
        if not path.is_dir():
            raise ConfigError(f"{path}: not a run directory (no such directory)")
        missing = [name for name in ("config.json", "summary.json") if not (path / name).is_file()]
        if missing:
            raise ConfigError(f"{path}: not a run directory (no {' or '.join(missing)}; expected one made by `qa run`)")
        config, summary = _read_json(path / "config.json"), _read_json(path / "summary.json")
        for name, data in (("config.json", config), ("summary.json", summary)):
            if not isinstance(data, dict):
                raise ConfigError(f"{path / name}: not a run file (expected a JSON object)")
        return cls(path, config, summary, read_metric_lines(path / "metrics.jsonl"))

    # -- facts ------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.config.get("run_id") or self.path.name)

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.summary.get("values") or {})

    def fact(self, key: str, default: Any = None) -> Any:
        """A run-level fact: summary.json first (it knows the outcome), then config.json."""
        value = self.summary.get(key)
        return self.config.get(key, default) if value is None else value

    @property
    def plugin(self) -> str:
        return str(self.fact("plugin", "?"))

    @property
    def plugin_version(self) -> str:
        return str(self.fact("plugin_version", "?"))

    @property
    def framework(self) -> str:
        return str(self.fact("framework") or "?")

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "?"))

    @property
    def seconds(self) -> float | None:
        seconds = self.summary.get("seconds")
        return float(seconds) if isinstance(seconds, (int, float)) else None

    @property
    def best(self) -> dict[str, Any] | None:
        """epoch, accuracy, loss, checkpoint of the best epoch; from the ``best/...`` values while
        a run is unfinished (its summary has no ``best`` entry yet)."""
        best = self.summary.get("best")
        if isinstance(best, dict):
            return best
        values = self.values
        best = {field: values[f"best/{field}"] for field in ("epoch", "accuracy", "loss", "checkpoint") if f"best/{field}" in values}
        return best if "epoch" in best and "accuracy" in best else None

    @property
    def top_epochs(self) -> list[dict[str, Any]]:
        return list(self.summary.get("top_epochs") or [])

    @property
    def has_test(self) -> bool:
        return "metrics/test/accuracy" in self.values

    def test_overall(self) -> dict[str, float]:
        """loss, accuracy, precision, recall, f1 and count of the test split (empty if not scored)."""
        values = self.values
        return {field: values[f"metrics/test/{field}"] for field in ("accuracy", "loss", "precision", "recall", "f1", "count") if f"metrics/test/{field}" in values}

    def test_cells(self) -> CellTable:
        return CellTable.from_values(self.values, "test")

    def test_confusion(self) -> np.ndarray | None:
        return confusion_from_values(self.values, "test")

    def history(self) -> EpochHistory:
        return EpochHistory.from_lines(self.lines)

    def predictions(self) -> Any:
        """The test split's kept predictions (:class:`~qa_core.predictions.Predictions`), read once;
        None for a run from before they were kept."""
        if "_predictions" not in self.__dict__:
            from ..predictions import read_predictions

            self.__dict__["_predictions"] = read_predictions(self.path / "eval")
        return self.__dict__["_predictions"]

    def eval_json(self, name: str) -> Any:
        """A JSON file of the run's test evaluation (eval/<name>), or None if absent."""
        path = self.path / "eval" / name
        return _read_json(path) if path.is_file() else None


def read_metric_lines(path: Path) -> list[dict[str, Any]]:
    """The epoch lines of a metrics.jsonl; a line cut short by a killed process is skipped."""
    if not path.is_file():
        return []
    lines = []
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("epoch"), int):
            lines.append(line)
    return lines


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None


def lost_support(run: "RunRecord", split: str = "test") -> dict[tuple[str, int], int]:
    """Per (category, noun count), the ``split`` records whose supporting sentence the run's
    max_len cut (config.json ``lost_support``; empty when nothing was cut)."""
    config = getattr(run, "config", None) or {}  # a seed group has no config of its own
    cells = ((config.get("lost_support") or {}).get(split)) or {}
    out: dict[tuple[str, int], int] = {}
    for key, count in cells.items():
        category, _, nouns = str(key).rpartition("/")
        if nouns.isdigit():
            out[(category, int(nouns))] = int(count)
    return out
