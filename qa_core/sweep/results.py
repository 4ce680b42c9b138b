"""The end of a sweep: one table (trial, options, best val, test accuracy with its 95% interval,
per-category test accuracy), printed and written as results.csv and results.json; and the seed
groups (trials that differ only by seed), each written as a seed-group directory in the format
of ``qa run --seeds`` (analysis/groups.py: group.json, aggregate.json, config.json, summary.json),
so ``qa compare <sweep>/groups/g000 <sweep>/groups/g001`` and ``qa report`` read them as they
read any group.

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

def test_interval(values: dict[str, Any], accuracy: float | None, count: int) -> list[float] | None:
    """The run's own 95% Wilson interval of test accuracy (summary values ``_low``/``_high``),
    computed by the core's metrics.wilson for runs written before the bounds were stored."""
    low, high = values.get("metrics/test/accuracy_low"), values.get("metrics/test/accuracy_high")
    if low is not None and high is not None:
        return [float(low), float(high)]
    if accuracy is None or not count:
        return None
    from ..metrics import wilson

    w_low, w_high = wilson(round(accuracy * count), count)
    return [float(w_low), float(w_high)]


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
        "test_ci95": test_interval(values, accuracy, count),
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


def write_group_dirs(manifest: Manifest, groups: list[dict[str, Any]]) -> None:
    """Each seed group with two or more finished seeds as a ``qa run --seeds`` group directory
    under ``<sweep>/groups/<group>``; its members stay where they are (relative paths)."""
    import os
    import time

    from ..analysis.groups import AGGREGATE_FILE, GROUP_FILE, KIND, aggregate, summary_values
    from ..analysis.runs import RunRecord

    for group in groups:
        if len(group["run_dirs"]) < 2:
            continue
        directory = manifest.directory / "groups" / group["group"]
        directory.mkdir(parents=True, exist_ok=True)
        members = [RunRecord.load(run_dir) for run_dir in group["run_dirs"]]
        seeds = [int(m.config.get("seed", 0)) for m in members]
        group_id = f"{manifest.name}-{group['group']}"
        entries = [{"seed": seed, "run_id": m.run_id, "path": os.path.relpath(m.path, directory)} for seed, m in zip(seeds, members)]
        write_json(directory / GROUP_FILE, {"kind": KIND, "group_id": group_id, "plugin": members[0].plugin, "seeds": seeds, "members": entries, "sweep": manifest.name, "trials": group["trials"]})
        agg = aggregate([m.values for m in members], seeds)
        write_json(directory / AGGREGATE_FILE, agg)
        shared = {k: v for k, v in members[0].config.items() if k not in ("seed", "run_id")}
        write_json(directory / "config.json", {**shared, "seeds": seeds, "sweep_options": group["options"]})
        first = members[0]
        write_json(
            directory / "summary.json",
            {
                "kind": KIND, "run_id": group_id, "plugin": first.plugin, "plugin_version": first.plugin_version,
                "framework": first.framework, "dataset": first.fact("dataset"), "status": "finished",
                "epochs_run": first.summary.get("epochs_run"), "seconds": round(sum(float(m.summary.get("seconds") or 0) for m in members), 3),
                "seeds": seeds, "values": summary_values(agg), "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )  # fmt: skip
        group["group_dir"] = str(directory)


def write_results(manifest: Manifest) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Path, Path]:
    rows = [trial_row(record) for record in manifest.trials]
    groups = seed_groups(rows)
    write_group_dirs(manifest, groups)
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
            where = f" -> {group['group_dir']}" if group.get("group_dir") else ""
            out.append(f"  {group['group']}  {options}: {mean}  ({group['finished']} of {len(group['trials'])} seeds finished: {', '.join(group['trials'])}){where}")
    failed = [row for row in rows if row["status"] == "failed"]
    for row in failed:
        out.append(f"{row['trial']} failed: {row['reason']}")
    return "\n".join(out)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 28 else "..." + text[-25:]
