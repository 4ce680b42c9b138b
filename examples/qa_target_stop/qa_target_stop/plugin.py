"""A callback plugin: the example of the third plugin kind.

``qa run --callback target`` does two things at every epoch end:

* ``qa_epoch_metrics`` adds ``metrics/val/balanced_accuracy``, the mean of the validation
  true-positive and true-negative rates (from the confusion counts the core logs), so it reaches
  metrics.jsonl and every tracker, and ``--monitor metrics/val/balanced_accuracy --mode max``
  can pick the best epoch by it;
* ``qa_epoch_end`` stops the run once a metric reaches a target:
  ``--callback-param target.metric=metrics/val/accuracy --callback-param target.value=0.9``
  (``target.mode=min`` for a loss that must fall to the value).
"""

from __future__ import annotations

from typing import Any, Mapping

from qa_core import Param, PluginInfo, RunContext, hookimpl

NAME = "target"


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="callback",
        description="Adds metrics/val/balanced_accuracy; stops the run once a metric reaches a target.",
        params=(
            Param("metric", str, "metrics/val/accuracy", "The metric to watch (any metrics.jsonl name)"),
            Param("value", float, 1.0, "Stop once the metric reaches this value"),
            Param("mode", str, "max", "max: stop at >= value; min: stop at <= value", choices=("max", "min")),
        ),
    )


def _rate(hits: float, misses: float) -> float:
    return hits / (hits + misses) if hits + misses else 0.0


@hookimpl
def qa_epoch_metrics(run: RunContext, epoch: int, logs: Mapping[str, float]) -> dict[str, float] | None:
    if "val/confusion/tp" not in logs:
        return None
    tpr = _rate(logs["val/confusion/tp"], logs["val/confusion/fn"])
    tnr = _rate(logs["val/confusion/tn"], logs["val/confusion/fp"])
    return {"metrics/val/balanced_accuracy": (tpr + tnr) / 2}


@hookimpl
def qa_epoch_end(run: RunContext, epoch: int, logs: Mapping[str, float]) -> str | None:
    options: dict[str, Any] = run.params_for(NAME)
    metric, target, mode = options["metric"], options["value"], options["mode"]
    if metric not in logs:
        return None
    value = logs[metric]
    reached = value >= target if mode == "max" else value <= target
    return f"{metric} reached {value:.4f} ({'>=' if mode == 'max' else '<='} {target:g}) in epoch {epoch}" if reached else None
