"""The embedded default tracker: plain files in the run directory, always on.

    runs/<run_id>/config.json     resolved config (secrets redacted), plugin name and version
    runs/<run_id>/metrics.jsonl   one JSON line per epoch: {"epoch": n, <metric name>: value, ...}
    runs/<run_id>/summary.json    best epoch, top-k, final test metrics, status

It is an ordinary tracker plugin (the hooks below) registered by the core itself rather than
through an entry point. It runs on the training thread (``threaded=False``): its files are the
record a resume reads, so each epoch's line is on disk before the next epoch starts. JSON files are
written to a temporary name and renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from ..fsutil import atomic_write
from ..hookspecs import hookimpl
from ..types import PluginInfo, RunContext

NAME = "local"


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


@hookimpl
def qa_log_run_start(run: RunContext) -> None:
    run.run_dir.mkdir(parents=True, exist_ok=True)
    run.stash[NAME] = {"values": {}}
    write_json(
        run.run_dir / "config.json",
        {
            "run_id": run.run_id,
            "plugin": run.plugin,
            "plugin_version": run.plugin_version,
            "framework": run.framework,
            "dataset": run.dataset,
            "tags": list(run.tags),
            **run.config,
        },
    )


@hookimpl
def qa_log_params(run: RunContext, params: Mapping[str, Any]) -> None:
    path = run.run_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["resolved_params"] = dict(params)
    write_json(path, config)


@hookimpl
def qa_log_metrics(run: RunContext, metrics: Mapping[str, float], step: int) -> None:
    line = json.dumps({"epoch": step, **metrics}, ensure_ascii=False)
    with open(run.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


@hookimpl
def qa_log_summary(run: RunContext, values: Mapping[str, Any]) -> None:
    state = run.stash.setdefault(NAME, {"values": {}})
    if any(name.startswith("top_epochs/") for name in values):
        # the top-k list is replaced as a whole: drop ranks that no longer exist
        state["values"] = {k: v for k, v in state["values"].items() if not k.startswith("top_epochs/")}
    state["values"].update(values)
    write_json(run.run_dir / "summary.json", {"run_id": run.run_id, "status": "running", "values": state["values"]})


@hookimpl
def qa_log_artifact(run: RunContext, path: Path, name: str) -> None:
    # Every artifact the core produces already lives in the run directory: nothing to copy.
    state = run.stash.setdefault(NAME, {"values": {}})
    state.setdefault("artifacts", {})[name] = os.path.relpath(path, run.run_dir)


@hookimpl
def qa_log_run_end(run: RunContext, status: str, summary: Mapping[str, Any]) -> None:
    state = run.stash.setdefault(NAME, {"values": {}})
    write_json(
        run.run_dir / "summary.json",
        {
            "run_id": run.run_id,
            "status": status,
            **summary,
            "artifacts": state.get("artifacts", {}),
            "values": state["values"],
        },
    )
