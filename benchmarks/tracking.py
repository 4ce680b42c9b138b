"""6. Tracker and progress-bar overhead.

An epoch here is what ``qa run`` does per epoch: train (``train_one_epoch``), evaluate the
validation split, score it, and, with tracking on, hand the metrics to the trackers through the
core's ``TrackerHub`` (the built-in local files + Neptune in offline mode). Tracking off is the
same epoch without the hub. The progress bar is compared as ``train_one_epoch(progress=True)`` vs
``progress=False`` (its text goes to a buffer). The transformer (one torch thread) is used when
installed, else the bow plugin.

It also audits the training thread (a ``sys.addaudithook`` counting ``open`` and socket
``connect`` events there), after one untimed warm-up epoch so lazy imports do not count:

* during training, per step: the core calls no tracker per step, so this must stay ~0;
* while the epoch's metrics are handed to the trackers: the built-in local tracker writes the run
  directory's files there on purpose (synchronously, so nothing is lost on a crash), and any other
  I/O means a tracker (Neptune here) does its work on the training thread instead of its own.
"""

from __future__ import annotations

import os
import sys
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from qa_core import RunContext, metrics
from qa_core.trainer import train_one_epoch

from .common import Result, model_plugin, prepare, quiet_progress, side_by_side

BATCH_SIZE = 32
#: What the audit hook records: the phase being audited ("train", "handoff" or None) and, per
#: phase, the events seen on the training thread as (event, path or address).
_AUDIT: dict[str, Any] = {"phase": None, "events": {}, "thread": None}
_AUDIT_INSTALLED = False


def _audit(event: str, args: Any) -> None:
    phase = _AUDIT["phase"]
    if phase and event in ("open", "socket.connect") and threading.get_ident() == _AUDIT["thread"]:
        _AUDIT["events"].setdefault(phase, []).append((event, str(args[0]) if event == "open" else repr(args[1])))


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

    given = {"threads": "1"} if plugin.name == "transformer" else {}
    prepared = prepare(plugin, given, train_rows or (320 if quick else 1800), 90 if quick else 450, max_len=96)
    train, val = prepared.splits["train"], prepared.splits["val"]
    model = plugin.build(prepared.spec)
    repeats = repeats or (5 if quick else 9)

    workdir = Path(tempfile.mkdtemp(prefix="qa-bench-tracking-"))
    old_cwd = os.getcwd()
    os.chdir(workdir)  # neptune's offline mode writes .neptune/ under the working directory
    global _AUDIT_INSTALLED
    if not _AUDIT_INSTALLED:  # audit hooks cannot be removed: one per process
        sys.addaudithook(_audit)
        _AUDIT_INSTALLED = True
    _AUDIT.update(thread=threading.get_ident(), phase=None, events={})
    try:
        context = RunContext(
            run_id="bench-tracking", run_dir=workdir / "run", plugin=plugin.name, plugin_version=plugin.version,
            framework=plugin.info.framework, dataset="generated", config={"bench": True},
            logger_params={"neptune": {"mode": "offline"}},
        )
        hub = TrackerHub(pm, trackers, context)
        hub.run_start()
        step = {"n": 0}
        handoff_seconds: list[float] = []

        def epoch(track: bool, audit: bool = True) -> None:
            step["n"] += 1
            _AUDIT["phase"] = "train" if audit else None
            loss, accuracy = train_one_epoch(plugin, model, train, BATCH_SIZE, 1, 1, False)
            _AUDIT["phase"] = None
            report = metrics.compute_for_split(val, np.asarray(plugin.evaluate(model, val, BATCH_SIZE), dtype=np.float32))
            if track:
                _AUDIT["phase"] = "handoff" if audit else None
                start = time.perf_counter()
                hub.metrics({**metrics.train_metric_names(loss, accuracy), **metrics.metric_names(report, "val")}, step=step["n"])
                hub.summary(metrics.best_names(step["n"], report.accuracy, report.loss, "best.npz"))
                handoff_seconds.append(time.perf_counter() - start)
                _AUDIT["phase"] = None

        epoch(True, audit=False)  # warm-up: lazy imports and first file creations are not per-step work
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
        _AUDIT["phase"] = None
        os.chdir(old_cwd)

    audited_epochs = 2 * (repeats + 1)  # side_by_side's warm-up round included
    steps = train.num_batches(BATCH_SIZE) * audited_epochs
    train_events = _AUDIT["events"].get("train", [])
    handoff_events = _AUDIT["events"].get("handoff", [])
    run_files = str(context.run_dir)
    outside = [event for event in handoff_events if not event[1].startswith(run_files)]
    result.figures["tracking_epoch_ratio_vs_untracked"] = tracked.ratio
    result.targets["tracking_epoch_ratio_vs_untracked"] = ("<=", 1.02)
    result.figures["progress_bar_epoch_ratio_vs_no_bar"] = bar.ratio
    result.targets["progress_bar_epoch_ratio_vs_no_bar"] = ("<=", 1.01)
    result.figures["training_thread_io_events_per_step"] = len(train_events) / steps
    result.targets["training_thread_io_events_per_step"] = ("<=", 0.1)
    # per tracked epoch, I/O on the training thread other than the local tracker's run files
    result.figures["tracker_io_events_per_epoch_on_training_thread"] = len(outside) / (repeats + 1)
    result.targets["tracker_io_events_per_epoch_on_training_thread"] = ("<=", 0)
    # what the training thread spends per epoch handing metrics over (the local tracker writes and
    # fsyncs its files here; a threaded tracker only enqueues)
    result.figures["tracker_handoff_ms_per_epoch"] = statistics.median(handoff_seconds) * 1000
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
            "training_io_events": train_events[:20],
            "local_files_io_events_per_epoch": (len(handoff_events) - len(outside)) / (repeats + 1),
            "other_handoff_io_events": outside[:20],
            "workdir": str(workdir),
        }
    )
    return result
