"""Every prediction kept: ``eval/predictions.jsonl`` and the hash that says which records they are.

Each scored split's eval directory holds one line per record, in the order scored::

    {"id": "test-17", "category": "dense", "noun_count": 15, "label": 1, "probability": 0.8123}

(plus one column per extra record axis, when the scoring had any), and ``predictions.json``::

    {"format": 1, "count": 900, "threshold": 0.5, "records_sha256": "...", "columns": [...]}

``records_sha256`` is the sha256 of the scored records themselves (every field, canonical JSON,
sorted by id), not of the file they came from: the same test records read from a JSONL file, a
bAbI file, a reordered copy or the default generated data hash the same, and a record whose story,
question or answer was edited does not. Two runs whose hashes are equal were scored on the same
records, and their predictions pair by record id (``qa compare`` runs McNemar's test on them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import ConfigError
from .fsutil import atomic_write

FILE = "predictions.jsonl"
META = "predictions.json"
FORMAT = 1


def records_sha256(examples: Sequence[Any]) -> str:
    """sha256 over the records (canonical JSON of each, sorted by id); order-independent."""
    digest = hashlib.sha256()
    for record in sorted((e.to_json() for e in examples), key=lambda r: str(r.get("id"))):
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def write_predictions(
    directory: Path, examples: Sequence[Any], probs: np.ndarray, threshold: float, extra: Mapping[str, np.ndarray] | None = None
) -> list[Path]:
    """Write predictions.jsonl and predictions.json into ``directory``; returns both paths."""
    from .tracking.local import write_json

    extra = {name: np.asarray(values).tolist() for name, values in (extra or {}).items()}
    probabilities = np.round(np.asarray(probs, dtype=np.float64), 6).tolist()
    lines = []
    for i, example in enumerate(examples):
        row = {"id": example.id, "category": example.category, "noun_count": example.noun_count, "label": int(example.answer), "probability": probabilities[i]}
        for name, values in extra.items():
            row[name] = values[i]
        lines.append(json.dumps(row, ensure_ascii=False))
    path = atomic_write(directory / FILE, "".join(line + "\n" for line in lines))
    meta = {
        "format": FORMAT,
        "count": len(lines),
        "threshold": threshold,
        "records_sha256": records_sha256(examples),
        "columns": ["id", "category", "noun_count", "label", "probability", *extra],
    }
    write_json(directory / META, meta)
    return [path, directory / META]


@dataclass
class Predictions:
    """One scored split's predictions, as arrays aligned by row."""

    ids: np.ndarray  # str (object) [n]
    categories: np.ndarray  # str (object) [n]
    noun_counts: np.ndarray  # int64 [n]
    labels: np.ndarray  # bool [n]
    probabilities: np.ndarray  # float64 [n]
    threshold: float
    records_sha256: str
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def correct(self) -> np.ndarray:
        return (self.probabilities >= self.threshold) == self.labels

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def take(self, index: np.ndarray) -> "Predictions":
        return Predictions(
            self.ids[index], self.categories[index], self.noun_counts[index], self.labels[index], self.probabilities[index],
            self.threshold, self.records_sha256, {k: v[index] for k, v in self.extra.items()},
        )

    def by_id(self) -> "Predictions":
        """The same predictions sorted by record id (so two runs on the same records align)."""
        return self.take(np.argsort(self.ids.astype(str), kind="stable"))


def read_predictions(directory: Path) -> Predictions | None:
    """The predictions kept in an eval directory; None when it has none (a run from before they
    were kept). A damaged file is a ConfigError naming it and the line."""
    path, meta_path = directory / FILE, directory / META
    if not path.is_file() or not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except ValueError as exc:
        raise ConfigError(f"{path}: unreadable predictions ({exc})") from None
    columns = [c for c in meta.get("columns", []) if c not in ("id", "category", "noun_count", "label", "probability")]
    try:
        return Predictions(
            np.array([str(r["id"]) for r in rows], dtype=object),
            np.array([r["category"] for r in rows], dtype=object),
            np.array([int(r["noun_count"]) for r in rows], dtype=np.int64),
            np.array([bool(r["label"]) for r in rows], dtype=bool),
            np.array([float(r["probability"]) for r in rows], dtype=np.float64),
            float(meta.get("threshold", 0.5)),
            str(meta.get("records_sha256", "")),
            {name: np.array([r.get(name) for r in rows]) for name in columns},
        )
    except (KeyError, TypeError, ValueError) as exc:
        line = next((i for i, r in enumerate(rows, 1) if not isinstance(r, dict) or not {"id", "label", "probability"} <= set(r)), "?")
        raise ConfigError(f"{path}:{line}: bad prediction record ({exc})") from None
