"""6. Tracker and progress-bar overhead.

An epoch here is what ``qa run`` does per epoch: train (``train_one_epoch``), evaluate the
validation split, score it, and, with tracking on, hand the metrics to the trackers through the
core's ``TrackerHub`` (the built-in local files + Neptune in offline mode). Tracking off is the
same epoch without the hub. The progress bar is compared as ``train_one_epoch(progress=True)`` vs
``progress=False`` (its text goes to a buffer). The transformer (one torch thread) is used when
installed, else the bow plugin.

It also checks that no tracker touches the disk or network on the training thread *per step*: an
audit hook counts ``open`` and socket ``connect`` events on the training thread during the
training part of the epoch.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from qa_core import ModelSpec, RunContext, metrics
from qa_core.trainer import train_one_epoch

from .common import Result, encoded, model_plugin, quiet_progress, side_by_side

BATCH_SIZE = 32
_AUDIT = {"on": False, "events": 0, "thread": None}


def _audit(event: str, args: Any) -> None:
    if _AUDIT["on"] and event in ("open", "socket.connect") and threading.get_ident() == _AUDIT["thread"]:
        _AUDIT["events"] += 1


def run(quick: bool, train_rows: int | None = None, repeats: int | None = None) -> Result:
    from qa_core.plugins import load_plugins
    from qa_core.tracking.hub import TrackerHub

    result = Result("tracking", "6. Tracker and progress-bar overhead")
    pm = load_plugins()
    plugin = model_plugin("transformer") or model_plugin("bow")
    if plugin is None:
        result.skipped = "the bow example plugin is not installed (pip install -e examples/qa_bow_numpy)"
        return result
    trackers = ["local"] + (["neptune"] if "neptune" in {r.name for r in pm.loaded("tracker")} else [])
    if "neptune" not in trackers:
        result.notes.append("the neptune plugin is not installed: local files only")

    params = plugin.resolve_params({"threads": "1"} if plugin.name == "transformer" else {})
    vocab, splits = encoded(train_rows or (320 if quick else 1800), 90 if quick else 450, 96)
    train, val = splits["train"], splits["val"]
    spec = ModelSpec(plugin.name, params, len(vocab), 96, seed=0, vocab_hash=vocab.sha256)
    model = plugin.build(spec)
    repeats = repeats or (5 if quick else 9)

    workdir = Path(tempfile.mkdtemp(prefix="qa-bench-tracking-"))
    old_cwd = os.getcwd()
    os.chdir(workdir)  # neptune's offline mode writes .neptune/ under the working directory
    sys.addaudithook(_audit)
    _AUDIT["thread"] = threading.get_ident()
    try:
        context = RunContext(
            run_id="bench-tracking", run_dir=workdir / "run", plugin=plugin.name, plugin_version=plugin.version,
            framework=plugin.info.framework, dataset="generated", config={"bench": True},
            logger_params={"neptune": {"mode": "offline"}},
        )
        hub = TrackerHub(pm, trackers, context)
        hub.run_start()
        step = {"n": 0}

        def epoch(track: bool) -> None:
            step["n"] += 1
            _AUDIT["on"] = True
            loss, accuracy = train_one_epoch(plugin, model, train, BATCH_SIZE, 1, 1, False)
            _AUDIT["on"] = False
            report = metrics.compute_for_split(val, np.asarray(plugin.evaluate(model, val, BATCH_SIZE), dtype=np.float32))
            if track:
                hub.metrics({**metrics.train_metric_names(loss, accuracy), **metrics.metric_names(report, "val")}, step=step["n"])
                hub.summary(metrics.best_names(step["n"], report.accuracy, report.loss, "best.npz"))

        tracked = side_by_side({"tracked": lambda: epoch(True), "untracked": lambda: epoch(False)}, repeats=repeats)
        abandoned = hub.close("finished", {"bench": True})
        with quiet_progress():
            bar = side_by_side(
                {
                    "bar": lambda: train_one_epoch(plugin, model, train, BATCH_SIZE, 1, 1, True),
                    "no_bar": lambda: train_one_epoch(plugin, model, train, BATCH_SIZE, 1, 1, False),
                },
                repeats=repeats,
            )
    finally:
        _AUDIT["on"] = False
        os.chdir(old_cwd)

    steps = train.num_batches(BATCH_SIZE) * 2 * (repeats + 1)
    result.figures["tracking_epoch_ratio_vs_untracked"] = tracked.ratio
    result.targets["tracking_epoch_ratio_vs_untracked"] = ("<=", 1.02)
    result.figures["progress_bar_epoch_ratio_vs_no_bar"] = bar.ratio
    result.targets["progress_bar_epoch_ratio_vs_no_bar"] = ("<=", 1.01)
    # Anything below one per step cannot be per-step I/O (import-time or per-epoch file reads).
    result.figures["training_thread_io_events_per_step"] = _AUDIT["events"] / steps
    result.targets["training_thread_io_events_per_step"] = ("<=", 0.1)
    result.details.update(
        {
            "plugin": plugin.name,
            "trackers": trackers,
            "tracked": tracked.to_json(),
            "progress_bar": bar.to_json(),
            "abandoned_trackers": abandoned,
            "train_rows": len(train),
            "val_rows": len(val),
            "audited_steps": steps,
            "workdir": str(workdir),
        }
    )
    return result
