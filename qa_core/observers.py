"""What happens at the end of every epoch, as observers of one interface.

Each observer gets ``on_epoch_end(run, epoch, logs)`` in this order (the order is the contract):

1. :class:`CallbackMetrics` - callback plugins add metrics of their own to ``logs.metrics``, so
   they reach metrics.jsonl, every tracker, and can be monitored.
2. :class:`TrackerLog` - the epoch's line goes to every tracker (metrics.jsonl first of all).
   It is written *before* the checkpoint: a resume trusts the newest checkpoint and drops any
   line after it, so no epoch is ever missing or doubled.
3. :class:`CheckpointKeeper` - the checkpoint policy (best, top-k, periodic, last), on
   ``--monitor``; sets ``logs.is_best`` and ``logs.top_rank``.
4. :class:`EarlyStopping` - ``--patience`` epochs without an improvement of ``--min-delta``.
5. :class:`ConsoleLine` - the one line per epoch.
6. :class:`CallbackStop` - callback plugins see the finished epoch and may ask the run to stop.

An observer that wants the run to end sets ``logs.stop``; the loop stops after all observers have
run, so the epoch is complete on disk whoever asked. On ``--resume`` the finished epochs are
*replayed* (``replay(run, epoch, logs)``) from metrics.jsonl instead of being stored anywhere.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from . import console, metrics
from .checkpoints import Decision

if TYPE_CHECKING:
    from .metrics import MetricsReport
    from .run import Run


@dataclass
class StopRequest:
    by: str  # "early stopping", or the callback plugin's name
    reason: str

    def to_json(self, epoch: int) -> dict[str, Any]:
        return {"epoch": epoch, "by": self.by, "reason": self.reason}


@dataclass
class EpochLogs:
    """One finished epoch: its metrics (exactly what metrics.jsonl gets) and what was decided."""

    epoch: int
    metrics: dict[str, float]
    report: "MetricsReport | None" = None  # the validation report (absent when replayed)
    seconds: float = 0.0
    is_best: bool = False
    top_rank: int | None = None
    stop: StopRequest | None = None
    decision: Decision | None = None

    @property
    def train_loss(self) -> float:
        return float(self.metrics["metrics/train/loss"])


class Observer:
    """The interface: ``on_epoch_end`` for a finished epoch, ``replay`` for one a resume re-reads."""

    def on_epoch_end(self, run: "Run", epoch: int, logs: EpochLogs) -> None:
        raise NotImplementedError

    def replay(self, run: "Run", epoch: int, logs: EpochLogs) -> None:
        """Rebuild state from a finished epoch's logs, without side effects. Default: none."""


class CallbackMetrics(Observer):
    def on_epoch_end(self, run: "Run", epoch: int, logs: EpochLogs) -> None:
        for name, values in run.callbacks.epoch_metrics(run, epoch, logs.metrics):
            clash = sorted(set(values) & set(logs.metrics))
            if clash:
                from .errors import PluginError

                raise PluginError(name, "qa_epoch_metrics", ValueError(f"metric {clash[0]} already exists; pick a name of your own"))
            logs.metrics.update(values)


class TrackerLog(Observer):
    def on_epoch_end(self, run: "Run", epoch: int, logs: EpochLogs) -> None:
        run.hub.metrics(logs.metrics, step=epoch)


class CheckpointKeeper(Observer):
    def on_epoch_end(self, run: "Run", epoch: int, logs: EpochLogs) -> None:
        policy, monitor = run.policy, run.monitor
        value = monitor.value(logs.metrics)
        accuracy, loss = logs.metrics["metrics/val/accuracy"], logs.metrics["metrics/val/loss"]
        if not run.rank.is_main:
            # Rank 0 alone writes checkpoints (and alone reloads the best for the test split);
            # the others take the same decision from the same numbers and write nothing.
            logs.is_best = policy.replay(epoch, accuracy, loss, value=value)
            return
        meta = run.identity.checkpoint_meta(epoch, logs.metrics, monitor.name)
        model, spec, plugin = run.model, run.spec, run.model_plugin
        decision = policy.update(epoch, accuracy, loss, lambda path: plugin.save(model, path, spec, meta), meta, value=value)
        if decision.is_best and policy.best:
            run.hub.summary(metrics.best_names(epoch, accuracy, loss, policy.best.checkpoint))
        if decision.top_changed:
            run.hub.summary(metrics.top_epoch_names(e.to_json() for e in policy.top))
        logs.decision, logs.is_best = decision, decision.is_best
        logs.top_rank = next((i for i, e in enumerate(policy.top, 1) if e.epoch == epoch), None)

    def replay(self, run: "Run", epoch: int, logs: EpochLogs) -> None:
        m = logs.metrics
        logs.is_best = run.policy.replay(epoch, m["metrics/val/accuracy"], m["metrics/val/loss"], value=run.monitor.value(m))


@dataclass
class EarlyStopping(Observer):
    """Stop after ``patience`` epochs in which the monitored value did not improve on the best
    so far by more than ``min_delta`` (Keras' and Lightning's meaning). 0 = off. Without a
    min_delta an improvement is a new best of the checkpoint policy (which runs just before and
    breaks ties by the lower validation loss), so "best" and "improved" never disagree."""

    patience: int
    min_delta: float = 0.0
    best: float | None = None
    waited: int = 0

    def _update(self, run: "Run", logs: EpochLogs) -> None:
        value = run.monitor.value(logs.metrics)
        if not self.min_delta:  # the checkpoint policy's own order decides (ties: lower loss)
            improved = logs.is_best
        else:
            improved = self.best is None or run.monitor.improves(value, self.best, self.min_delta)
        if improved:
            self.best, self.waited = value, 0
        else:
            self.waited += 1

    def on_epoch_end(self, run: "Run", epoch: int, logs: EpochLogs) -> None:
        self._update(run, logs)
        if self.patience and self.waited >= self.patience and logs.stop is None:
            delta = f" by more than {self.min_delta:g}" if self.min_delta else ""
            logs.stop = StopRequest("early stopping", f"no better {run.monitor.label}{delta} for {self.patience} epochs")

    def replay(self, run: "Run", epoch: int, logs: EpochLogs) -> None:
        self._update(run, logs)


class ConsoleLine(Observer):
    def on_epoch_end(self, run: "Run", epoch: int, logs: EpochLogs) -> None:
        m = logs.metrics
        console.say(
            console.epoch_line(
                epoch, run.config.epochs, m["metrics/train/loss"], m["metrics/train/accuracy"], logs.report,
                logs.seconds, logs.is_best, logs.top_rank,
            )
        )


class CallbackStop(Observer):
    def on_epoch_end(self, run: "Run", epoch: int, logs: EpochLogs) -> None:
        for name, reason in run.callbacks.epoch_end(run, epoch, logs.metrics):
            if logs.stop is None:
                logs.stop = StopRequest(name, reason)


def default_observers(patience: int, min_delta: float) -> list[Observer]:
    """The observers of every run, in the documented order."""
    return [CallbackMetrics(), TrackerLog(), CheckpointKeeper(), EarlyStopping(patience, min_delta), ConsoleLine(), CallbackStop()]


def run_observers(observers: Iterable[Observer], run: "Run", logs: EpochLogs) -> None:
    for observer in observers:
        observer.on_epoch_end(run, logs.epoch, logs)


def replay_observers(observers: Iterable[Observer], run: "Run", logs: EpochLogs) -> None:
    for observer in observers:
        observer.replay(run, logs.epoch, logs)


@dataclass
class Monitor:
    """The value best, top-k and early stopping watch (``--monitor``, ``--mode``)."""

    name: str = "metrics/val/accuracy"
    mode: str = "max"

    @property
    def label(self) -> str:
        return self.name

    def value(self, logs: dict[str, Any]) -> float:
        from .errors import ConfigError

        if self.name not in logs:
            known = ", ".join(sorted(k for k in logs if k.startswith("metrics/")))
            raise ConfigError(f"--monitor {self.name}: no such metric in the epoch's logs (e.g. {known})")
        value = float(logs[self.name])
        return value if math.isfinite(value) else (-math.inf if self.mode == "max" else math.inf)

    def improves(self, value: float, best: float, min_delta: float = 0.0) -> bool:
        return value > best + min_delta if self.mode == "max" else value < best - min_delta


@dataclass
class Stopwatch:
    started: float = field(default_factory=time.monotonic)

    def seconds(self) -> float:
        return time.monotonic() - self.started
