"""One qa run's TensorBoard event files.

A :class:`TensorBoardSession` lives in ``run.stash["tensorboard"]`` from ``qa_log_run_start`` on;
the core calls a threaded tracker's hooks on one worker thread of its own, in order. It writes
with :mod:`.events`: TensorBoard's protos and record writer, without TensorFlow or torch.

Layout of a run (the tags are the core's metric names, unchanged, so TensorBoard groups them by
their first segment: ``metrics``, ``val``, ``best``, ``test``)::

    scalars  metrics/<split>/..., <split>/by_*/...     one point per epoch, step = epoch
             best/...                                   at the epoch that set it
             test/..., metrics/test/...                 at the last epoch run
             run/epochs_run, run/seconds                at the last epoch run
             steps/...   (--log-every-n-steps)          step = the global optimisation step, in
                                                        the run ``steps/`` below the log folder
    text     qa/config      the resolved config (provenance included), as JSON; step 0, or the
                            epoch a resume continues after
             qa/summary     status, best epoch, top-k epochs and test accuracy, at the end
    hparams  the parameters qa_log_params gets (model/<k>, plugin, dataset, seed, ...) against
             metrics/val/accuracy, metrics/val/loss, best/accuracy, metrics/test/accuracy and
             metrics/test/loss, so the HParams dashboard compares runs by hyperparameter; the
             session's status (success, failure) at the end; none for an interrupted run, whose
             resume ends it

Resume (``qa run --resume``): the same folder goes on, in a new event file whose name sorts after
the earlier ones and which starts with a restart marker at ``resumed epoch + 1``. TensorBoard (and its
EventAccumulator) then hides every point the earlier process wrote at or after that step (the
epoch it did not finish, whose metrics line was written before its checkpoint), so each epoch has
exactly one point. The best/top-k values the core replays at the start of a resume are already in
the earlier file and are not written twice. TensorBoard keeps the first HParams record of a run
and ignores later ones, so a resume writes none: the dashboard shows the hyperparameters the run
started with, and ``qa/config`` at the resumed epoch shows what the resume changed (``--epochs``).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, Mapping

from qa_core import RunContext
from qa_core.tracking.sessions import TrackerSession


#: The metrics the HParams dashboard shows beside the hyperparameters.
HPARAM_METRICS = ("metrics/val/accuracy", "metrics/val/loss", "best/accuracy", "metrics/test/accuracy", "metrics/test/loss")
#: qa's run status -> the HParams plugin's session status.
SESSION_STATUS = {"finished": "STATUS_SUCCESS", "failed": "STATUS_FAILURE"}


def default_logdir(run: RunContext) -> Path:
    """Inside the run directory, so `tensorboard --logdir runs` finds every run and deleting a
    run directory deletes its events too."""
    return Path(run.run_dir) / "tensorboard"


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def hparam_value(value: Any) -> Any:
    """A value the HParams plugin takes (number, text, bool); None is left out."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if is_number(value):
        return float(value)
    return json.dumps(value, default=str, sort_keys=True)


class TensorBoardSession(TrackerSession):
    """The per-run state of the tensorboard tracker; see the module docstring."""

    def __init__(self, context: RunContext):
        super().__init__(context)
        logdir = self.options.get("logdir")  # typed, default filled in, by the core
        self.logdir = Path(logdir) / context.run_id if logdir else default_logdir(context)
        self.file: Any = None
        self.steps_file: Any = None
        resumed = context.resumed_after_epoch
        #: The step summaries go to: the newest epoch this process logged (or the one a resume
        #: continues after, before it logs one).
        self.step = resumed or 0
        #: A resume replays the best/top-k values first; they are in the earlier event file.
        self.replaying = resumed is not None
        self.top: dict[str, Any] = {}
        self.best: dict[str, Any] = {}

    def _scalars(self, values: Mapping[str, Any], step: int) -> None:
        """Every number of ``values`` at ``step``, in one event (hundreds of names per epoch)."""
        from .events import scalar_values

        self.file.summary(scalar_values({k: v for k, v in values.items() if is_number(v)}), step)

    def start(self) -> None:
        from .events import EventFile, text_value

        resumed = self.context.resumed_after_epoch
        # The name tag keeps a resumed run's file after the earlier one within one second.
        self.file = EventFile(self.logdir, f"qa-e{resumed or 0:06d}", None if resumed is None else resumed + 1)
        run = self.context
        record = {"run_id": run.run_id, "plugin": run.plugin, "plugin_version": run.plugin_version, "framework": run.framework, "dataset": run.dataset, "tags": list(run.tags), **run.config}
        config = json.dumps(record, indent=2, sort_keys=True, default=str)  # what config.json holds
        # Four-space indent: a Markdown code block, which the text dashboard shows as is.
        self.file.summary([text_value("qa/config", "\n".join("    " + line for line in config.splitlines()))], self.step)
        self.file.flush()

    def log_params(self, params: Mapping[str, Any]) -> None:
        from .events import hparams_values

        if self.context.resumed_after_epoch is not None:
            return  # TensorBoard keeps a run's first HParams record only: the earlier file has it

        values = {name: hparam_value(value) for name, value in params.items()}
        values.update({f"tag/{label}": True for label in self.context.tags})
        self.file.summary(hparams_values({k: v for k, v in values.items() if v is not None}, list(HPARAM_METRICS)))
        self.file.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        if metrics and all(name.startswith("steps/") for name in metrics):
            self._step_series(metrics, int(step))
            return
        self.replaying = False
        self.step = max(self.step, int(step))
        self._scalars(metrics, int(step))
        self.file.flush()  # one epoch at a time: the dashboard shows it while the run goes on

    def _step_series(self, metrics: Mapping[str, float], step: int) -> None:
        """``--log-every-n-steps`` series, at the global step, in a run of their own (``steps/``
        under the log folder): their steps are not epochs, so they need their own restart marker.
        A resume's first step point is the first one after the epoch it continues after, so
        every point the earlier process wrote from that step on is stale."""
        from .events import EventFile

        if self.steps_file is None:
            resumed = self.context.resumed_after_epoch
            self.steps_file = EventFile(self.logdir / "steps", f"qa-e{resumed or 0:06d}", None if resumed is None else step)
        self.steps_file.summary(scalar_values_of(metrics), step)
        self.steps_file.flush()

    def log_summary(self, values: Mapping[str, Any], step: int) -> None:
        # Kept for the text summary at the end; the top-k list always comes whole.
        top = {k: v for k, v in values.items() if k.startswith("top_epochs/")}
        if top:
            self.top = top
        self.best.update({k: v for k, v in values.items() if k.startswith("best/")})
        if not self.replaying:
            self._scalars({k: v for k, v in values.items() if not k.startswith("top_epochs/")}, step)

    def log_artifact(self, path: Path, name: str) -> None:
        """TensorBoard keeps no files; the run directory already holds them."""

    def end(self, status: str, summary: Mapping[str, Any]) -> None:
        from .events import api_pb2, session_end_value, text_value

        try:
            if not self.replaying:
                self._scalars({"run/epochs_run": summary.get("epochs_run"), "run/seconds": summary.get("seconds")}, self.step)
            self.file.summary([text_value("qa/summary", summary_text(status, summary, self.best, self.top))], self.step)
            if status != "interrupted":  # a resumable run's session stays open; its resume ends it
                self.file.summary([session_end_value(getattr(api_pb2, SESSION_STATUS.get(status, "STATUS_FAILURE")))])
        finally:
            self.file.close()
            if self.steps_file is not None:
                self.steps_file.close()


def scalar_values_of(values: Mapping[str, Any]) -> list[Any]:
    from .events import scalar_values

    return scalar_values({k: v for k, v in values.items() if is_number(v)})


def summary_text(status: str, summary: Mapping[str, Any], best: Mapping[str, Any], top: Mapping[str, Any]) -> str:
    """The run's outcome as a Markdown table for TensorBoard's text dashboard."""
    test = summary.get("test") or {}
    rows = [
        ("status", status),
        ("epochs run", summary.get("epochs_run")),
        ("best epoch", best.get("best/epoch")),
        ("best validation accuracy", _number(best.get("best/accuracy"))),
        ("best checkpoint", best.get("best/checkpoint")),
        ("test accuracy", _number(test.get("accuracy"))),
        ("test scored with", test.get("scored_with")),
    ]
    ranks = sorted({int(name.split("/")[1]) for name in top if name.split("/")[1].isdigit()})
    for rank in ranks:
        rows.append((f"top {rank}", f"epoch {top.get(f'top_epochs/{rank}/epoch')}, val accuracy {_number(top.get(f'top_epochs/{rank}/accuracy'))}"))
    return "| | |\n|---|---|\n" + "\n".join(f"| {label} | {'-' if value is None else value} |" for label, value in rows)


def _number(value: Any) -> str | None:
    if not is_number(value) or not math.isfinite(float(value)):
        return None
    return f"{float(value):.4f}"
