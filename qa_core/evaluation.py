"""Scoring a split and writing what a researcher reads: the eval/ directory.

    eval/metrics.json          every metric, overall and per category / noun count / cell
    eval/groups.csv            one row per category x noun-count cell (and per category, per noun count,
                               per story length); ``lost`` and ``answerable_accuracy`` beside each
    eval/confusion_matrix.json TN FP FN TP overall and per cell
    eval/misclassified.jsonl   each wrong prediction: story, question, truth, probability, cell
    eval/errors.json           the cells with the most errors, with their FP / FN split
    eval/predictions.jsonl     every prediction: id, category, noun count, label, probability
    eval/predictions.json      their count, threshold and the sha256 of the scored records
    eval/*.png                 with ``plots=True`` and matplotlib installed: accuracy by noun count,
                               the category x noun-count heatmap, the confusion matrix
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .data.records import Example, json_line
from .fsutil import atomic_write
from .metrics import GroupMetrics, MetricsReport
from .predictions import write_predictions

EVAL_FILES = ("metrics.json", "groups.csv", "confusion_matrix.json", "misclassified.jsonl", "errors.json", "predictions.jsonl", "predictions.json")


def group_rows(report: MetricsReport) -> list[dict[str, Any]]:
    """One row per group: overall, category, noun count, cell, and story length when the report
    has that axis. ``lost`` counts the group's records whose supporting sentence the encoding cut;
    ``answerable_*`` is the accuracy (and interval) on the others."""
    rows: list[dict[str, Any]] = []
    lost = answerable_by(report)

    def add(level: str, category: str, nouns: str, group: GroupMetrics, key: tuple, length: str = "") -> None:
        row = {"level": level, "category": category, "noun_count": nouns, "length": length, **group.to_json()}
        rows.append({**row, **_answerable_columns(lost.get((level, key)), group)})

    add("overall", "", "", report.overall, ())
    for category, group in report.by_category.items():
        add("category", category, "", group, (category,))
    for nouns, group in report.by_noun_count.items():
        add("noun_count", "", str(nouns), group, (nouns,))
    for (category, nouns), group in report.by_group.items():
        add("cell", category, str(nouns), group, (category, nouns))
    for length, group in report.by_axis.get("length", {}).items():
        add("length", "", "", group, (length,), str(length))
    return rows


#: The row levels of group_rows and the axes each is a breakdown of.
LEVEL_AXES = {"overall": (), "category": ("category",), "noun_count": ("noun_count",), "cell": ("category", "noun_count"), "length": ("length",)}


def answerable_by(report: MetricsReport) -> dict[tuple[str, tuple], tuple[int, GroupMetrics | None]]:
    """``{(level, key): (lost, metrics on the answerable records)}`` from the report's joint
    histogram (its ``answerable`` axis); empty when the report has none."""
    if "answerable" not in report.axes:
        return {}
    out: dict[tuple[str, tuple], tuple[int, GroupMetrics | None]] = {}
    for level, axes in LEVEL_AXES.items():
        if not all(axis in report.axes for axis in axes):
            continue
        groups = report.breakdown(*axes, "answerable").groups()
        for key, group in groups.items():
            *rest, flag = key if isinstance(key, tuple) else (key,)
            entry = out.get((level, tuple(rest)), (0, None))
            out[(level, tuple(rest))] = (group.count, entry[1]) if flag == "no" else (entry[0], group)
    return out


def _answerable_columns(entry: tuple[int, GroupMetrics | None] | None, group: GroupMetrics) -> dict[str, Any]:
    lost, kept = entry if entry is not None else (0, group)
    if kept is None:  # every record of the group lost its support
        return {"lost": lost, "answerable_count": 0, "answerable_accuracy": "", "answerable_accuracy_low": "", "answerable_accuracy_high": ""}
    return {
        "lost": lost,
        "answerable_count": kept.count,
        "answerable_accuracy": kept.accuracy,
        "answerable_accuracy_low": kept.accuracy_low,
        "answerable_accuracy_high": kept.accuracy_high,
    }


def error_summary(report: MetricsReport, top: int = 10) -> dict[str, Any]:
    cells = sorted(report.by_group.items(), key=lambda item: (-item[1].errors, item[0]))
    return {
        "total_errors": report.overall.errors,
        "false_positives": report.overall.fp,
        "false_negatives": report.overall.fn,
        "worst_cells": [
            {
                "category": category,
                "noun_count": nouns,
                "errors": group.errors,
                "false_positives": group.fp,
                "false_negatives": group.fn,
                "count": group.count,
                "accuracy": group.accuracy,
            }
            for (category, nouns), group in cells[:top]
            if group.errors > 0
        ],
    }


def write_eval(
    directory: Path,
    report: MetricsReport,
    examples: Sequence[Example],
    probs: np.ndarray,
    plots: bool = False,
    lost: dict[str, str] | None = None,
    scored: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write the eval/ files for one scored split; returns the paths written. With ``plots``, also
    the PNG plots when matplotlib is installed (without it: one warning line, the numbers still).
    With ``lost`` (a training run), a file that cannot be written (a full disk) is one warning and
    an entry ``eval/<name>: reason`` there instead of an error: the results are printed anyway."""
    contents = _eval_contents(report, examples, probs, scored)
    written: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in contents.items():
            written.append(atomic_write(directory / name, text))
        # every record axis beyond category and noun count becomes a column (length bucket, ...)
        extra = {name: report.record_labels(name) for name in report.record_axes if name not in ("category", "noun_count")}
        written += write_predictions(directory, examples, probs, report.threshold, extra)
    except OSError as exc:
        if lost is None:
            raise
        return written + _lost_all(directory, [n for n in EVAL_FILES if directory / n not in written], exc, lost)
    if plots:
        try:
            written += write_eval_plots(directory, report)
        except OSError as exc:
            if lost is None:
                raise
            _lost_all(directory, ["the plots (*.png)"], exc, lost)
    return written


def _lost_all(directory: Path, names: list[str], exc: OSError, lost: dict[str, str]) -> list[Path]:
    from . import console

    reason = exc.strerror or str(exc)
    console.warn(f"qa: could not write {directory}/ ({reason}): {', '.join(names)} not kept; the results are printed below")
    for name in names:
        lost[f"{directory.name}/{name}"] = f"not written ({reason})"
    return []


def _eval_contents(report: MetricsReport, examples: Sequence[Example], probs: np.ndarray, scored: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The text of every eval file, by name (EVAL_FILES order). ``scored`` (``qa evaluate``: the
    data file and the checkpoint) goes into metrics.json first."""
    def as_json(data: Any) -> str:
        return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"

    rows = group_rows(report)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    overall = report.overall
    confusion = {
        "labels": ["no", "yes"],
        "matrix": [[overall.tn, overall.fp], [overall.fn, overall.tp]],
        "threshold": report.threshold,
        "by_group": {f"{cat}/noun_{n}": [[g.tn, g.fp], [g.fn, g.tp]] for (cat, n), g in report.by_group.items()},
    }
    lines = []
    for index in report.misclassified.tolist():
        example = examples[index]
        record = {
            "id": example.id,
            "story": example.story,
            "question": example.question,
            "answer": "yes" if example.answer else "no",
            "probability": round(float(probs[index]), 6),
            "category": example.category,
            "noun_count": example.noun_count,
        }
        lines.append(json_line(record))
    return {
        "metrics.json": as_json({**(scored or {}), **report.to_json()}),
        "groups.csv": buffer.getvalue(),
        "confusion_matrix.json": as_json(confusion),
        "misclassified.jsonl": "".join(line + "\n" for line in lines),
        "errors.json": as_json(error_summary(report)),
    }


def write_eval_plots(directory: Path, report: MetricsReport) -> list[Path]:
    """The PNG plots of a scored split into ``directory``; none (and a warning) without matplotlib."""
    from . import console
    from .analysis import plots
    from .analysis.runs import CellTable

    overall = report.overall
    try:
        figures = plots.result_figures(CellTable.from_report(report), np.array([[overall.tn, overall.fp], [overall.fn, overall.tp]]))
    except plots.PlottingUnavailable as exc:
        console.warn(f"qa: plots skipped, the numbers are written: {exc}")
        return []
    return plots.write_figures(figures, directory)


# -------------------------------------------------------------------------------------------------
# qa evaluate: score a saved model on a data file
# -------------------------------------------------------------------------------------------------


def find_checkpoint(target: Path, suffixes: Sequence[str]) -> tuple[Path, Path | None]:
    """``RUN_DIR`` -> its best checkpoint; a checkpoint file -> itself. Returns (file, run_dir)."""
    from .errors import CheckpointError

    if target.is_dir():
        directory = target / "checkpoints" if (target / "checkpoints").is_dir() else target
        for suffix in suffixes:
            for name in (f"best{suffix}", f"last{suffix}"):
                if (directory / name).is_file():
                    run_dir = directory.parent if directory.name == "checkpoints" else None
                    return directory / name, run_dir
        raise CheckpointError(f"{target}: no best or last checkpoint of an installed model plugin inside")
    if not target.exists():
        raise CheckpointError(f"{target}: no such run directory or checkpoint")
    run_dir = target.parent.parent if target.parent.name == "checkpoints" else None
    return target, run_dir


def evaluate_saved(
    target: Path,
    data_file: Path,
    pm: Any,
    out_dir: Path | None = None,
    batch_size: int = 64,
    threshold: float = 0.5,
    data_format: str = "auto",
    vocab_file: Path | None = None,
    plots: bool = True,
    overwrite: bool = False,
) -> tuple[MetricsReport, Path, dict[str, Any]]:
    """Score the model at ``target`` on ``data_file``; write eval files (and plots, when asked and
    matplotlib is installed). Returns (report, eval dir, meta).

    The default folder is ``RUN_DIR/eval/<data file stem>-<first 8 hex of its sha256>``, a new one
    (``-2``, ``-3`` ...) when that exists: scoring another file of the same name, or the same file
    again, never replaces earlier results. An ``out_dir`` that holds files is refused unless
    ``overwrite``."""
    from . import metrics
    from .checkpoints import meta_path, read_meta
    from .data.loading import read_examples
    from .data.tokenizer import Vocabulary, encode
    from .errors import CheckpointError
    from .types import ModelSpec

    if out_dir is not None and out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        from .errors import ConfigError

        raise ConfigError(f"--out {out_dir}: already holds files; choose another folder or give --overwrite")
    suffixes = [r.info.checkpoint_suffix for r in pm.loaded("model") if r.info and r.info.checkpoint_suffix]
    checkpoint, run_dir = find_checkpoint(target, suffixes)
    suffix = next((s for s in suffixes if checkpoint.name.endswith(s) and meta_path(checkpoint, s).is_file()), None)
    meta = read_meta(checkpoint, suffix)
    model_plugin = pm.model(meta["plugin"])
    if suffix is not None and suffix != model_plugin.info.checkpoint_suffix:
        raise CheckpointError(f"{checkpoint}: file type does not belong to plugin '{model_plugin.name}'")

    vocab_path = vocab_file or ((run_dir / "vocab.json") if run_dir else checkpoint.parent / "vocab.json")
    if not vocab_path.is_file():
        raise CheckpointError(f"{checkpoint}: its vocabulary {vocab_path} is missing (give --vocab FILE)")
    vocab = Vocabulary.load(vocab_path)
    if vocab.sha256 != meta.get("vocab_sha256"):
        raise CheckpointError(f"{checkpoint}: vocabulary {vocab_path} does not match the one the model was trained with")

    examples = read_examples(data_file, data_format)
    known = list(meta.get("category_names") or [])
    categories = tuple(known + sorted({e.category for e in examples} - set(known)))
    split, stats = encode(examples, vocab, int(meta["max_len"]), "eval", categories)
    params = model_plugin.resolve_params(meta.get("params", {}))
    spec = ModelSpec(model_plugin.name, params, len(vocab), int(meta["max_len"]), int(meta.get("seed", 0)), vocab_hash=vocab.sha256, vocab=vocab.tokens)
    model = model_plugin.load(checkpoint, spec, meta)
    probs = model_plugin.predict(model, split, batch_size)
    report = metrics.compute_for_split(split, probs, threshold)
    source = file_record(Path(data_file))
    if out_dir is None:
        base = run_dir if run_dir is not None else checkpoint.parent
        out_dir = fresh_dir(base / "eval", f"{Path(data_file).stem}-{source['sha256'][:8]}")
    scored = {"data": source, "model": {"checkpoint": str(checkpoint.resolve()), "run_id": meta.get("run_id"), "epoch": meta.get("epoch"), "plugin": meta.get("plugin")}}
    write_eval(out_dir, report, examples, probs, plots=plots, scored=scored)
    return report, out_dir, meta


def file_record(path: Path) -> dict[str, Any]:
    """Which file was scored: absolute path, size and sha256 (read in 1 MiB blocks)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path.resolve()), "size": path.stat().st_size, "sha256": digest.hexdigest()}


def fresh_dir(parent: Path, name: str) -> Path:
    """``parent/name``, or ``name-2``, ``name-3`` ... when it is taken; created, so a concurrent
    ``qa evaluate`` takes the next one."""
    parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, 10_000):
        candidate = parent / (name if number == 1 else f"{name}-{number}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{parent}: no free folder name for {name}")
