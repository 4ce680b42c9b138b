"""The ``sweep-report`` tracker: hands each epoch's validation metrics to the process that runs
the trial (a Ray Tune trainable), which reports them to Tune's scheduler (ASHA).

A trial run with ``--logger sweep-report`` writes one JSON line per epoch to the pipe whose file
descriptor is in ``QA_SWEEP_REPORT_FD``. Without that variable (a trial resumed by hand, a rerun
on the local backend) it does nothing. It runs on the training thread (``threaded=False``), so the
scheduler hears about epoch n before epoch n+1 starts. Registered through qa-core's own entry point.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

from ..hookspecs import hookimpl
from ..types import PluginInfo, RunContext

NAME = "sweep-report"
ENV = "QA_SWEEP_REPORT_FD"


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="tracker",
        description="Per-epoch validation metrics to the sweep that runs this trial (qa sweep --backend ray); no-op elsewhere.",
        threaded=False,
    )


@hookimpl
def qa_log_metrics(run: RunContext, metrics: Mapping[str, Any], step: int) -> None:
    fd = os.environ.get(ENV)
    if not fd:
        return
    line = {
        "epoch": step,
        "val_accuracy": metrics.get("metrics/val/accuracy"),
        "val_loss": metrics.get("metrics/val/loss"),
        "train_loss": metrics.get("metrics/train/loss"),
    }
    os.write(int(fd), (json.dumps(line) + "\n").encode())
