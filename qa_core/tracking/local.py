"""The embedded default tracker: plain files in the run directory, always on.

    runs/<run_id>/config.json     resolved config (secrets redacted), plugin name and version
    runs/<run_id>/metrics.jsonl   one JSON line per epoch: {"epoch": n, <metric name>: value, ...}
    runs/<run_id>/metrics.csv     the same as a table: one row per epoch, one column per name
    runs/<run_id>/steps.jsonl     with --log-every-n-steps: {"step": global step, "steps/...": value}
    runs/<run_id>/summary.json    best epoch, top-k, final test metrics, status

It is an ordinary tracker plugin (the hooks below) registered by the core itself rather than
through an entry point. It runs on the training thread (``threaded=False``): its files are the
record a resume reads, so each epoch's line is on disk before the next epoch starts. JSON files are
written to a temporary name and renamed into place, so a crash never leaves half a file.

Because these files *are* the record of the run, a failed write (a full disk, a read-only mount)
does not switch this tracker off: it says which file could not be written and what that means, keeps
what it could not write in memory and writes it with the next write that succeeds (a metrics line
that failed halfway is cut off again, so the file never holds a torn line), and summary.json names,
under ``lost``, whatever is still missing at the end of the run.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from ..console import warn
from ..fsutil import atomic_write
from ..hookspecs import hookimpl
from ..types import PluginInfo, RunContext

NAME = "local"
#: Bytes the first summary.json is padded to: room for the final status on a disk that fills up.
SUMMARY_RESERVE = 4096


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a temporary file in the same directory, fsynced, then renamed."""
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="tracker",
        description="Writes config.json, metrics.jsonl and summary.json into the run directory (always on).",
        threaded=False,
    )


def _state(run: RunContext) -> dict[str, Any]:
    return run.stash.setdefault(NAME, {"values": {}})


def _failed(run: RunContext, file: str, exc: OSError, meaning: str) -> None:
    """Warn once per file (the next failures of it are the same news) and remember it as lost."""
    lost = _state(run).setdefault("lost", {})
    if file not in lost:
        warn(f"qa: local tracker: could not write {run.run_dir / file} ({exc.strerror or exc}): {meaning}; training goes on")
    lost[file] = f"{meaning} ({exc.strerror or exc})"


def _written(run: RunContext, file: str) -> None:
    _state(run).get("lost", {}).pop(file, None)


def _write_config(run: RunContext) -> None:
    try:
        write_json(run.run_dir / "config.json", _state(run)["config"])
    except OSError as exc:
        _failed(run, "config.json", exc, "the run's configuration is not on disk (a --resume of this run needs it)")
    else:
        _written(run, "config.json")


@hookimpl
def qa_log_run_start(run: RunContext) -> None:
    run.run_dir.mkdir(parents=True, exist_ok=True)
    state = _state(run)
    state["config"] = {
        "run_id": run.run_id,
        "plugin": run.plugin,
        "plugin_version": run.plugin_version,
        "framework": run.framework,
        "dataset": run.dataset,
        "tags": list(run.tags),
        **run.config,
    }
    _write_config(run)
    if run.resumed_after_epoch is None:
        # Written now, and padded: its blocks are the room the final status can always be written
        # into, in place, should the disk be full by the end of the run (see _write_short_summary).
        _write_summary(run, {"run_id": run.run_id, "status": "running", "values": {}}, pad_to=SUMMARY_RESERVE)


@hookimpl
def qa_log_params(run: RunContext, params: Mapping[str, Any]) -> None:
    _state(run)["config"]["resolved_params"] = dict(params)
    _write_config(run)


@hookimpl
def qa_log_metrics(run: RunContext, metrics: Mapping[str, float], step: int) -> None:
    if metrics and all(name.startswith("steps/") for name in metrics):
        _append_step(run, metrics, step)
        return
    _state(run).setdefault("pending", []).append((step, json.dumps({"epoch": step, **metrics}, ensure_ascii=False)))
    _flush_pending(run)


def _append_step(run: RunContext, metrics: Mapping[str, float], step: int) -> None:
    """Step series (names under steps/, ``step`` = the global optimisation step) have a file of
    their own, so metrics.jsonl stays one line per epoch. A resume does not need them: a line
    that cannot be written is dropped (and said once), never kept in memory."""
    try:
        _append_lines(run.run_dir / "steps.jsonl", json.dumps({"step": step, **metrics}, ensure_ascii=False) + "\n")
    except OSError as exc:
        _failed(run, "steps.jsonl", exc, f"step lines from step {step} on are missing")


def _flush_pending(run: RunContext) -> None:
    """Append the lines not yet on disk (oldest first), or say which epochs are missing."""
    pending = _state(run).setdefault("pending", [])
    try:
        _append_lines(run.run_dir / "metrics.jsonl", "".join(line + "\n" for _, line in pending))
    except OSError as exc:
        epochs = [epoch for epoch, _ in pending]
        what = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}-{epochs[-1]}"
        _failed(run, "metrics.jsonl", exc, f"{what} not in the run's record (kept in memory and written when the disk has room; a --resume needs them)")
    else:
        pending.clear()
        _written(run, "metrics.jsonl")
        _write_csv(run)


def _write_csv(run: RunContext) -> None:
    """metrics.csv, rebuilt from metrics.jsonl (so a resume's dropped epochs drop out of it too).
    A column per name in first-seen order; an epoch without a name leaves its cell empty."""
    import csv
    import io

    from ..analysis.runs import read_metric_lines

    try:
        lines = read_metric_lines(run.run_dir / "metrics.jsonl")
        columns = list(dict.fromkeys(name for line in lines for name in line))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
        atomic_write(run.run_dir / "metrics.csv", buffer.getvalue())
    except OSError as exc:
        _failed(run, "metrics.csv", exc, "the epoch table is out of date (metrics.jsonl holds the same numbers)")
    else:
        _written(run, "metrics.csv")


def _append_lines(path: Path, text: str) -> None:
    """Append whole lines, durably; on failure cut the file back to where it was, so it never
    holds a torn line. Unbuffered: no buffer is left to be flushed later past the cut."""
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _write_summary(run: RunContext, summary: dict[str, Any], pad_to: int = 0) -> None:
    try:
        text = json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n"
        atomic_write(run.run_dir / "summary.json", text + " " * max(0, pad_to - len(text.encode("utf-8"))))
    except OSError as exc:
        _failed(run, "summary.json", exc, "it is behind (the values are kept in memory and written with the next summary that fits)")
    else:
        _written(run, "summary.json")


@hookimpl
def qa_log_summary(run: RunContext, values: Mapping[str, Any]) -> None:
    state = _state(run)
    if any(name.startswith("top_epochs/") for name in values):
        # the top-k list is replaced as a whole: drop ranks that no longer exist
        state["values"] = {k: v for k, v in state["values"].items() if not k.startswith("top_epochs/")}
    state["values"].update(values)
    _write_summary(run, {"run_id": run.run_id, "status": "running", "values": state["values"]})


@hookimpl
def qa_log_artifact(run: RunContext, path: Path, name: str) -> None:
    # Every artifact the core produces already lives in the run directory: nothing to copy.
    state = _state(run)
    state.setdefault("artifacts", {})[name] = os.path.relpath(path, run.run_dir)


@hookimpl
def qa_log_run_end(run: RunContext, status: str, summary: Mapping[str, Any]) -> None:
    state = _state(run)
    if state.get("pending"):  # a last try: the disk may have room again
        _flush_pending(run)
    lost = {**dict(summary.get("lost") or {}), **state.get("lost", {})}
    lost.pop("summary.json", None)
    full = {"run_id": run.run_id, "status": status, **summary, "artifacts": state.get("artifacts", {}), "values": state["values"]}
    if lost:
        full["lost"] = lost
    try:
        write_json(run.run_dir / "summary.json", full)
    except OSError as exc:
        _write_short_summary(run, status, summary.get("epochs_run"), lost, exc)


def _write_short_summary(run: RunContext, status: str, epochs_run: Any, lost: dict[str, str], error: OSError) -> None:
    """No room for the whole summary: the few lines that matter most, written in place into the
    blocks the old summary.json holds (a temporary file beside it would need new ones)."""
    path = run.run_dir / "summary.json"
    lost = {**lost, "summary.json": f"only this short form was written ({error.strerror or error})"}
    short = {"run_id": run.run_id, "status": status, "epochs_run": epochs_run, "lost": lost}
    data = (json.dumps(short, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    try:
        # Over the old bytes, then cut: no new blocks are needed while it fits in the old file.
        with open(path, "r+b" if path.is_file() else "wb", buffering=0) as handle:
            handle.write(data)
            handle.truncate(len(data))
            os.fsync(handle.fileno())
    except OSError as exc:
        warn(f"qa: local tracker: could not write {path} at all ({exc.strerror or exc}); it does not show that the run ended ({status})")
    else:
        warn(f"qa: local tracker: {path} holds a short form only (status, epochs run, what was lost): {error.strerror or error}")
