"""The end of a sweep: one table (trial, options, best val, test accuracy with its 95% interval,
per-category test accuracy), printed and written as results.csv and results.json; and the seed
groups (trials that differ only by seed) with their mean and spread.

Everything is read back from the trials' run directories (summary.json), so the table is the same
whichever backend ran the trials, and can be rebuilt at any time from the files.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from ..fsutil import atomic_open
from ..tracking.local import write_json
from .manifest import Manifest, TrialRecord

Z95 = 1.959963984540054


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (no numpy needed, exact at 0 and n)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return (low, high)


def _summary(run_dir: str | None) -> dict[str, Any]:
    if not run_dir:
        return {}
    try:
        return json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def trial_row(record: TrialRecord) -> dict[str, Any]:
    summary = _summary(record.run_dir)
    values = summary.get("values", {})
    # "best" is written at the end of a run; a run stopped early has the running best in values.
    best = summary.get("best") or {"epoch": values.get("best/epoch"), "accuracy": values.get("best/accuracy")}
    test = summary.get("test") or {}
    count = int(test.get("count") or 0)
    accuracy = test.get("accuracy")
    low, high = wilson(accuracy * count, count) if accuracy is not None and count else (None, None)
    by_category = {}
    for name, value in values.items():
        parts = name.split("/")
        if len(parts) == 4 and parts[:2] == ["test", "by_category"] and parts[3] == "accuracy":
            by_category[parts[2]] = value
    return {
        "trial": record.id,
        "group": record.group,
        "status": record.status,
        "options": record.options,
        "best_epoch": best.get("epoch"),
        "best_val_accuracy": best.get("accuracy"),
        "test_accuracy": accuracy,
        "test_count": count or None,
        "test_ci95": [low, high] if low is not None else None,
        "test_by_category": by_category,
        "epochs_run": summary.get("epochs_run"),
        "seconds": record.seconds,
        "run_dir": record.run_dir,
        "reason": record.reason,
    }


def seed_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trials that differ only by seed: their finished runs, mean and sample std of test accuracy."""
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault(row["group"], {"group": row["group"], "options": {k: v for k, v in row["options"].items() if k != "seed"}, "trials": [], "run_dirs": [], "seeds": []})
        group["trials"].append(row["trial"])
        if row["test_accuracy"] is not None:
            group["run_dirs"].append(row["run_dir"])
            group["seeds"].append(row["options"].get("seed"))
    by_trial = {row["trial"]: row for row in rows}
    for group in groups.values():
        scores = [by_trial[t]["test_accuracy"] for t in group["trials"] if by_trial[t]["test_accuracy"] is not None]
        group["finished"] = len(scores)
        group["test_accuracy_mean"] = sum(scores) / len(scores) if scores else None
        group["test_accuracy_std"] = math.sqrt(sum((s - group["test_accuracy_mean"]) ** 2 for s in scores) / (len(scores) - 1)) if len(scores) > 1 else None
    return list(groups.values())


def write_results(manifest: Manifest) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Path, Path]:
    rows = [trial_row(record) for record in manifest.trials]
    groups = seed_groups(rows)
    json_path = manifest.directory / "results.json"
    write_json(json_path, {"sweep": manifest.name, "trials": rows, "groups": groups})
    csv_path = manifest.directory / "results.csv"
    categories = list(dict.fromkeys(c for row in rows for c in row["test_by_category"]))
    axes = list(dict.fromkeys(k for row in rows for k in row["options"]))
    with atomic_open(csv_path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "group", "status", *axes, "best_epoch", "best_val_accuracy", "test_accuracy", "test_ci95_low", "test_ci95_high", *(f"test_{c}_accuracy" for c in categories), "run_dir", "reason"])
        for row in rows:
            ci = row["test_ci95"] or [None, None]
            writer.writerow(
                [row["trial"], row["group"], row["status"], *(row["options"].get(a) for a in axes), row["best_epoch"], row["best_val_accuracy"], row["test_accuracy"], *ci]
                + [row["test_by_category"].get(c) for c in categories]
                + [row["run_dir"], row["reason"]]
            )
    return rows, groups, csv_path, json_path


def table(rows: list[dict[str, Any]], groups: list[dict[str, Any]]) -> str:
    """The printed table: one line per trial, then one per seed group with more than one trial."""
    categories = list(dict.fromkeys(c for row in rows for c in row["test_by_category"]))
    axes = list(dict.fromkeys(k for row in rows for k in row["options"]))
    header = ["trial", "status", *axes, "best val", "test acc [95% CI]", *categories]
    lines = [header]
    for row in rows:
        ci = row["test_ci95"]
        test = f"{row['test_accuracy']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"
        lines.append(
            [row["trial"], row["status"], *(_short(row["options"].get(a)) for a in axes), _num(row["best_val_accuracy"]), test]
            + [_num(row["test_by_category"].get(c)) for c in categories]
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    multi = [g for g in groups if len(g["trials"]) > 1]
    if multi:
        out.append("")
        out.append("seed groups (trials that differ only by seed): mean test accuracy +- sample std")
        for group in multi:
            options = " ".join(f"{k}={_short(v)}" for k, v in group["options"].items()) or "(base options)"
            spread = f" +- {group['test_accuracy_std']:.4f}" if group["test_accuracy_std"] is not None else ""
            mean = f"{group['test_accuracy_mean']:.4f}{spread}" if group["test_accuracy_mean"] is not None else "-"
            out.append(f"  {group['group']}  {options}: {mean}  ({group['finished']} of {len(group['trials'])} seeds finished: {', '.join(group['trials'])})")
    failed = [row for row in rows if row["status"] == "failed"]
    for row in failed:
        out.append(f"{row['trial']} failed: {row['reason']}")
    return "\n".join(out)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 28 else "..." + text[-25:]
