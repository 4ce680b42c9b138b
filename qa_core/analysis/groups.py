"""Several seeds as one result: ``qa run --seeds 0,1,2`` (or ``--repeats N``).

One run per seed, sequentially, each through the trainer's public entry point
(:func:`qa_core.trainer.train`), into a *group directory*::

    runs/<group id>/
      group.json       kind "seed-group", the seeds and each member run's id and directory
      aggregate.json   per test metric: the value of every seed, mean, sample standard deviation,
                       and a 95% interval of the mean across seeds (Student's t)
      config.json      the configuration shared by the members (without the seed), plus the seeds
      summary.json     like a run's: plugin, framework, status, and under ``values`` the mean of
                       every test metric, with ``<metric>_low``/``_high`` bounds (for accuracy the
                       wider of the across-seed interval and the mean's Wilson interval)
      <member run>/    one ordinary run directory per seed

Because summary.json has a run's shape, everything that reads a run reads a group (the report,
the plots, the table of ``qa compare``); :class:`GroupRecord` adds the members, so ``qa compare``
can pair two groups seed by seed on the same records.

The across-seed interval is ``mean +/- t(0.975, k-1) * sd / sqrt(k)`` over the k seeds: the
uncertainty of the *training recipe's* mean, which a single run's Wilson interval (the
uncertainty of one model on a finite test set) does not show. With one seed there is none.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from .runs import RunRecord

GROUP_FILE = "group.json"
AGGREGATE_FILE = "aggregate.json"
KIND = "seed-group"
#: Student's t quantile t(0.975, df) for df = 1..30; beyond, the normal 1.96 is within 2%.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.959963984540054


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def aggregate(member_values: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """Per test metric present in every member: values by seed, mean, std (ddof 1), interval."""
    names = [name for name in member_values[0] if _is_test_metric(name) and all(_is_number(v.get(name)) for v in member_values)]
    table = np.array([[float(v[name]) for name in names] for v in member_values])  # [seeds, metrics]
    k = table.shape[0]
    mean = table.mean(axis=0)
    std = table.std(axis=0, ddof=1) if k > 1 else np.zeros(len(names))
    half = t975(k - 1) * std / math.sqrt(k) if k > 1 else np.zeros(len(names))
    return {
        "seeds": list(seeds),
        "interval": "mean +/- t(0.975, k-1) * sd / sqrt(k) across seeds",
        "metrics": {
            name: {"values": table[:, j].tolist(), "mean": float(mean[j]), "std": float(std[j]), "low": float(mean[j] - half[j]), "high": float(mean[j] + half[j])}
            for j, name in enumerate(names)
        },
    }


def _is_test_metric(name: str) -> bool:
    # the interval bounds of a single run are replaced by the across-seed interval of the mean
    return (name.startswith("metrics/test/") or name.startswith("test/")) and not name.endswith(("_low", "_high"))


def summary_values(agg: dict[str, Any]) -> dict[str, Any]:
    """summary.json ``values`` of a group: the means, and ``<metric>_low``/``_high`` bounds.

    An accuracy's bounds are the wider of the across-seed interval and the Wilson interval of the
    mean at the test count: seeds that all score 7 of 10 have no spread, but 10 test records still
    leave the accuracy uncertain. Precision and recall (whose denominators are not kept per cell)
    take the across-seed interval."""
    from ..metrics import wilson

    values: dict[str, Any] = {}
    metrics = agg["metrics"]
    for name, entry in metrics.items():
        values[name] = entry["mean"]
        prefix, last = name.rsplit("/", 1)
        if last not in ("accuracy", "precision", "recall"):
            continue
        low, high = entry["low"], entry["high"]
        count = metrics.get(f"{prefix}/count", {}).get("mean")
        if last == "accuracy" and count:
            w_low, w_high = wilson(round(entry["mean"] * count), round(count))
            low, high = min(low, float(w_low)), max(high, float(w_high))
        values[f"{name}_low"], values[f"{name}_high"] = max(0.0, low), min(1.0, high)
    return values


def parse_seeds(seeds: str | None, repeats: int | None, base_seed: int) -> list[int] | None:
    """``--seeds 0,1,2`` or ``--repeats N`` (seeds base, base+1, ...); None when neither."""
    if seeds is not None and repeats is not None:
        raise ConfigError("--seeds and --repeats: give one of them")
    if repeats is not None:
        if repeats < 1:
            raise ConfigError(f"--repeats: expected a positive integer, got {repeats}")
        return [base_seed + i for i in range(repeats)]
    if seeds is None:
        return None
    try:
        parsed = [int(part) for part in seeds.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds: expected distinct comma-separated integers, got {seeds!r}") from None
    if not parsed or len(set(parsed)) != len(parsed):
        raise ConfigError(f"--seeds: expected distinct comma-separated integers, got {seeds!r}")
    return parsed


def run_group(config: Any, seeds: Sequence[int], pm: Any = None) -> Path:
    """Train one run per seed into a new group directory; write group.json, aggregate.json,
    config.json and summary.json. Returns the group directory."""
    from .. import console
    from ..plugins import load_plugins
    from ..tracking.local import write_json
    from ..trainer import new_run_id, train

    config.check()
    pm = pm or load_plugins()
    group_id = new_run_id(config.plugin) + "-seeds-" + "-".join(str(s) for s in seeds)
    directory = Path(config.runs_dir) / group_id
    directory.mkdir(parents=True)
    group = {"kind": KIND, "group_id": group_id, "plugin": config.plugin, "seeds": list(seeds), "members": []}
    started = time.monotonic()
    results = []
    for i, seed in enumerate(seeds, start=1):
        console.say(f"group {group_id}: seed {seed} ({i} of {len(seeds)})")
        member_config = _with(config, seed=seed, runs_dir=str(directory))
        result = train(member_config, pm)
        results.append(result)
        group["members"].append({"seed": seed, "run_id": result.run_id, "path": result.run_dir.name})
        write_json(directory / GROUP_FILE, group)  # after every member: an interrupted group keeps what it has
    member_summaries = [RunRecord.load(r.run_dir) for r in results]
    agg = aggregate([m.values for m in member_summaries], seeds)
    write_json(directory / AGGREGATE_FILE, agg)
    first = member_summaries[0]
    public = {key: value for key, value in results[0].context.config.items() if key != "seed"}
    write_json(directory / "config.json", {**public, "seeds": list(seeds), "runs_dir": str(config.runs_dir)})
    write_json(
        directory / "summary.json",
        {
            "kind": KIND, "run_id": group_id, "plugin": first.plugin, "plugin_version": first.plugin_version,
            "framework": first.framework, "dataset": first.fact("dataset"), "status": "finished",
            "epochs_run": first.summary.get("epochs_run"), "seconds": round(time.monotonic() - started, 3),
            "seeds": list(seeds), "values": summary_values(agg),
        },
    )
    console.say(format_aggregate(agg))
    console.say(f"group directory: {directory}")
    return directory


def _with(config: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(config, **changes)


def format_aggregate(agg: dict[str, Any]) -> str:
    """Per cell: mean accuracy, std and the across-seed interval (what ``qa run --seeds`` prints)."""
    k = len(agg["seeds"])
    lines = [f"ACROSS {k} SEEDS ({', '.join(map(str, agg['seeds']))}): mean accuracy, standard deviation, 95% interval of the mean:"]
    for name, entry in agg["metrics"].items():
        if name.startswith("test/by_group/") and name.endswith("/accuracy"):
            cell = name[len("test/by_group/"):-len("/accuracy")]
            lines.append(f"  - {cell}: Accuracy={entry['mean']:.4f} sd {entry['std']:.4f} [{max(0.0, entry['low']):.2f}, {min(1.0, entry['high']):.2f}]")
    overall = agg["metrics"].get("metrics/test/accuracy")
    if overall:
        lines.append(f"Overall accuracy: {overall['mean']:.4f} sd {overall['std']:.4f} [{max(0.0, overall['low']):.2f}, {min(1.0, overall['high']):.2f}]")
    return "\n".join(lines)


@dataclass
class GroupRecord(RunRecord):
    """A group directory read as a run (its summary holds the means), plus its member runs."""

    members: list[tuple[int, RunRecord]] = field(default_factory=list)
    aggregate: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> "GroupRecord":
        base = RunRecord.load(path)
        group = _read(base.path / GROUP_FILE)
        members = []
        for entry in group.get("members", []):
            member_dir = base.path / str(entry.get("path", ""))
            members.append((int(entry["seed"]), RunRecord.load(member_dir)))
        aggregate = _read(base.path / AGGREGATE_FILE) if (base.path / AGGREGATE_FILE).is_file() else {}
        return cls(base.path, base.config, base.summary, base.lines, members, aggregate)

    def predictions(self) -> Any:
        return None  # a group's predictions are its members'; compare pairs them seed by seed


def is_group(path: str | Path) -> bool:
    return (Path(path) / GROUP_FILE).is_file()


def load_run_or_group(path: str | Path) -> RunRecord:
    """A :class:`GroupRecord` for a group directory, else a :class:`RunRecord`."""
    return GroupRecord.load(path) if is_group(path) else RunRecord.load(path)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a group file (expected a JSON object)")
    return data
