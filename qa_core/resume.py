"""``qa run --resume RUN_DIR``: a way to *prepare* a run, not a branch through the loop.

Everything is derived from files a run writes anyway: config.json (the options, the run id, the
data files' sha256), the newest *consistent* checkpoint unit (model, optimizer and RNG state),
metrics.jsonl (the policy and early stopping are replayed from it) and summary.json (whether the
run already finished).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoints import CheckpointError, committed_units, read_meta
from .errors import ConfigError
from .fsutil import atomic_write


@dataclass
class ResumePoint:
    """Where a resumed run starts."""

    epoch: int
    checkpoint: Path
    meta: dict[str, Any]
    lines: list[dict[str, Any]]
    #: Said to the user when the point is not simply ``last`` (damaged, or older than another unit).
    note: str | None = None
    stored: dict[str, Any] = field(default_factory=dict)  # config.json as the run wrote it
    summary: dict[str, Any] = field(default_factory=dict)  # summary.json, {} when unreadable


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"--resume: {path}: unreadable {what} ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--resume: {path}: {what} is not a JSON object")
    return data


def config_from_run(run_dir: Path) -> dict[str, Any]:
    """The options a run was started with, from its config.json (for --resume)."""
    from .config import CONFIG_KEYS, REDACTED, check_stored_values, with_legacy_defaults

    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"--resume {run_dir}: not a run directory (no config.json)")
    stored = read_json_object(path, "config.json")
    values = with_legacy_defaults(stored, check_stored_values(path, {k: v for k, v in stored.items() if k in CONFIG_KEYS and v is not None}))
    stored = {**stored, **{k: values[k] for k in ("logger_params",) if k in values}}
    for key in ("logger_params", "callback_params"):
        if key in CONFIG_KEYS:
            values[key] = {
                plugin: {k: v for k, v in options.items() if v != REDACTED}
                for plugin, options in (stored.get(key) or {}).items()
                if isinstance(options, dict)
            }
    return values


def read_metrics_lines(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl's epoch lines; a line cut short by kill -9 (the last one) is skipped."""
    lines = []
    if path.is_file():
        for text in path.read_text(encoding="utf-8").splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and isinstance(line.get("epoch"), int) and not isinstance(line["epoch"], bool):
                lines.append(line)
    return lines


def _agrees(meta: dict[str, Any], lines: list[dict[str, Any]]) -> str | None:
    """Why a checkpoint unit does not fit metrics.jsonl, or None when it does: the lines must hold
    epochs 1..epoch and the epoch's validation numbers must be the ones its meta recorded."""
    epoch = meta["epoch"]
    held = [line["epoch"] for line in lines if line["epoch"] <= epoch]
    if held != list(range(1, epoch + 1)):
        return f"metrics.jsonl does not hold epochs 1..{epoch}"
    line = next(line for line in lines if line["epoch"] == epoch)
    recorded = meta.get("metrics") or {}
    for key, name in (("val_accuracy", "metrics/val/accuracy"), ("val_loss", "metrics/val/loss")):
        if key in recorded and recorded[key] != line.get(name):
            return f"its epoch {epoch} does not match metrics.jsonl's epoch {epoch} ({name})"
    return None


def read_resume_point(run_dir: Path, suffix: str) -> ResumePoint:
    """The newest checkpoint unit that is intact and agrees with metrics.jsonl, and why it is
    not ``last`` when it is not."""
    directory = run_dir / "checkpoints"
    last = directory / f"last{suffix}"
    lines = read_metrics_lines(run_dir / "metrics.jsonl")
    units = committed_units(directory, suffix)
    if not units and not last.exists():
        raise ConfigError(f"--resume {run_dir}: no completed epoch was saved (no checkpoints/last{suffix}); start the run again")
    problems: dict[str, str] = {}
    for epoch, path, meta in units:
        problem = _agrees(meta, lines)
        if problem is None:
            point = ResumePoint(epoch, path, meta, [line for line in lines if line["epoch"] <= epoch])
            point.note = _note(last, suffix, point, problems, units)
            return point
        problems.setdefault(path.name, problem)
    why = problems.get(last.name) or _damage(last, suffix) or "no consistent checkpoint"
    raise ConfigError(f"--resume {run_dir}: no usable checkpoint ({last.name}: {why}); start the run again")


def _damage(path: Path, suffix: str) -> str | None:
    try:
        read_meta(path, suffix, strict=True)
    except CheckpointError as exc:
        return str(exc).split(": ", 1)[-1] if str(exc).startswith(str(path)) else str(exc)
    return None


def _note(last: Path, suffix: str, point: ResumePoint, problems: dict[str, str], units: list) -> str | None:
    if point.checkpoint.name == last.name:
        return None
    why = problems.get(last.name) or _damage(last, suffix)
    if why is None:
        last_epoch = next((e for e, p, _ in units if p.name == last.name), None)
        why = f"holds epoch {last_epoch}, an older one" if last_epoch is not None else "is missing"
    elif not last.exists():
        why = "is missing"
    return f"qa: {last.name} {why if why.startswith(('holds', 'is ')) else 'is damaged (' + why + ')'}; resuming from {point.checkpoint.name} (epoch {point.epoch}), the newest consistent checkpoint"


def check_data_unchanged(run_dir: Path, stored: dict[str, Any], now: dict[str, str]) -> None:
    """Refuse to resume on data other than the run started with (sha256 recorded at its start)."""
    before = stored.get("data_files")
    if not isinstance(before, dict):
        return  # a run from before the digests were recorded: nothing to compare
    for path in sorted(set(before) | set(now)):
        if before.get(path) != now.get(path):
            what = "is new" if path not in before else "is gone" if path not in now else "changed (sha256 differs)"
            raise ConfigError(
                f"--resume {run_dir}: data file {path} {what} since the run started; resuming would train on other data "
                "(pass --allow-changed-data to resume anyway)"
            )


def finished_state(summary: dict[str, Any], stored: dict[str, Any]) -> tuple[str, int] | None:
    """``("finished" | "stopped", epochs run)`` when the run already ended of its own accord."""
    if summary.get("status") != "finished":
        return None
    epochs_run = summary.get("epochs_run")
    if not isinstance(epochs_run, int):
        return None
    planned = stored.get("epochs")
    stopped = summary.get("stopped") or (isinstance(planned, int) and epochs_run < planned)
    return ("stopped" if stopped else "finished", epochs_run)


def rewrite_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    atomic_write(path, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))


def check_replay_line(line: dict[str, Any], names: tuple[str, ...], run_dir: Path) -> None:
    for name in names:
        value = line.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ConfigError(f"--resume {run_dir}: metrics.jsonl: epoch {line['epoch']}: {name}: expected a number, got {value!r}")
