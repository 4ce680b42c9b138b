"""``qa runs``: the runs in a runs directory, one row each, newest last.

Everything comes from the files a run writes (config.json, summary.json); a folder that is not a
run (``_data``, a tracker's store) is passed over, and a run whose files cannot be read is listed
with status ``unreadable`` rather than hidden or fatal.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import ConfigError
from .runs import read_metric_lines

#: The time stamp that starts every run id (``new_run_id``): local time, to the millisecond.
_ID_STAMP = re.compile(r"^(\d{8})-(\d{6})(\d{3})-")


@dataclass
class RunRow:
    run_id: str
    path: str
    name: str | None
    plugin: str
    status: str
    epochs_run: int | None
    epochs: int | None
    best_val_accuracy: float | None
    best_epoch: int | None
    test_accuracy: float | None
    started: str | None
    tags: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def started_at(run_dir: Path, config: dict[str, Any]) -> str | None:
    """When the run started (local time): its provenance, else its id's stamp, else the folder's time."""
    stamp = (config.get("provenance") or {}).get("started")
    if isinstance(stamp, str):
        return stamp
    match = _ID_STAMP.match(run_dir.name)
    if match:
        day, clock = match[1], match[2]
        return f"{day[:4]}-{day[4:6]}-{day[6:]} {clock[:2]}:{clock[2:4]}:{clock[4:]}"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.stat(run_dir).st_mtime))
    except OSError:
        return None


def live_status(run_dir: Path, status: str) -> str:
    """``running`` as summary.json says, or ``died`` when the run's lock names a process on this
    host that no longer exists (kill -9, a crash, the OOM killer: the run can be resumed). The
    lock file is only read, never locked, so listing never gets in a resume's way."""
    if status != "running":
        return status
    import socket

    try:
        holder = json.loads((run_dir / ".lock").read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return status
    if not isinstance(holder, dict) or holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return status  # another machine's process, or no holder recorded: cannot tell
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return "died"
    except OSError:  # it exists (another user's process)
        pass
    return status


def read_row(run_dir: Path) -> RunRow | None:
    """One run's row; None when the folder is no run directory at all."""
    if not (run_dir / "config.json").is_file():
        return None
    config, summary = _read(run_dir / "config.json"), _read(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else {}
    if config is None or summary is None:
        return RunRow(run_dir.name, str(run_dir), None, "?", "unreadable", None, None, None, None, None, started_at(run_dir, {}))
    best = summary.get("best") if isinstance(summary.get("best"), dict) else {}
    values = summary.get("values") or {}
    if not best and "best/accuracy" in values:  # an unfinished run: the running best
        best = {"accuracy": values.get("best/accuracy"), "epoch": values.get("best/epoch")}
    test = summary.get("test") if isinstance(summary.get("test"), dict) else {}
    return RunRow(
        run_id=str(config.get("run_id") or run_dir.name),
        path=str(run_dir),
        name=config.get("name"),
        plugin=str(config.get("plugin", "?")),
        status=live_status(run_dir, str(summary.get("status", "running" if summary == {} else "?"))),
        epochs_run=summary.get("epochs_run", len(read_metric_lines(run_dir / "metrics.jsonl"))),
        epochs=config.get("epochs"),
        best_val_accuracy=best.get("accuracy"),
        best_epoch=best.get("epoch"),
        test_accuracy=test.get("accuracy", values.get("metrics/test/accuracy")),
        started=started_at(run_dir, config),
        tags=list(config.get("tags") or []),
    )


def list_runs(runs_dir: Path, plugin: str | None = None, status: str | None = None, tags: Iterable[str] = ()) -> list[RunRow]:
    """The runs under ``runs_dir`` that match every filter given, oldest first."""
    if not runs_dir.is_dir():
        raise ConfigError(f"--runs-dir {runs_dir}: no such directory")
    wanted = set(tags)
    rows = []
    for child in runs_dir.iterdir():
        if child.name.startswith(("_", ".")) or not child.is_dir():
            continue
        row = read_row(child)
        if row is None:
            continue
        if (plugin and row.plugin != plugin) or (status and row.status != status) or not wanted <= set(row.tags):
            continue
        rows.append(row)
    return sorted(rows, key=lambda row: (row.started or "", row.run_id))


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def format_rows(rows: list[RunRow]) -> str:
    header = ["id", "name", "plugin", "status", "epochs", "best val", "test acc", "started"]
    table = [
        [
            row.run_id,
            row.name or "-",
            row.plugin,
            row.status,
            f"{row.epochs_run if row.epochs_run is not None else '-'}/{row.epochs if row.epochs is not None else '-'}",
            _number(row.best_val_accuracy) + (f" (e{row.best_epoch})" if row.best_epoch is not None else ""),
            _number(row.test_accuracy),
            row.started or "-",
        ]
        for row in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *table]) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *table])
