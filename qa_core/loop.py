"""Phase two of a run: ``fit(run, model)``, the epoch loop and nothing else.

    per epoch: shuffle [-> group by length] -> train (progress bar per batch; step logging) -> evaluate val -> logs
               -> the observers, in their documented order (observers.py) -> stop?

The core owns epochs, progress, evaluation and the epoch-end decisions. A plugin trains one step
at a time (``qa_train_step``) or a whole epoch in its own loop (``qa_train_epoch``, Keras
``fit``); either way the bar moves per batch and the epoch's results come back here. Signals are
honoured at safe points only: after a batch, after validation, after the observers.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
from tqdm import tqdm

from . import batching, console, distributed, metrics
from .errors import QAError
from .observers import EpochLogs, run_observers
from .plugins import ModelPlugin
from .signals import StopFlag
from .types import EncodedSplit

if TYPE_CHECKING:
    from .run import Run

#: How often (in seconds) the progress bar's loss is refreshed; each refresh costs a float().
BAR_REFRESH_SECONDS = 0.5


def fit(run: "Run", model: Any) -> None:
    """Train from ``run.first_epoch`` to ``--epochs``, or until an observer asks to stop."""
    run.model = model
    with ranks_agree_on_stopping(run, model):
        run.stop_flag.check()
        for epoch in range(run.first_epoch, run.config.epochs + 1):
            run.in_epoch = epoch
            logs = run_epoch(run, model, epoch)
            run_observers(run.observers, run, logs)
            run.in_epoch, run.epochs_run = None, epoch
            if logs.stop is not None:
                run.stopped = logs.stop.to_json(epoch)
                console.say(f"{logs.stop.by}: {logs.stop.reason}" if logs.stop.by == "early stopping" else f"stopped by callback '{logs.stop.by}': {logs.stop.reason}")
                break
            run.stop_flag.check()  # a signal during the bookkeeping: the epoch is complete on disk


@contextlib.contextmanager
def ranks_agree_on_stopping(run: "Run", model: Any) -> Iterator[None]:
    """Data-parallel epochs: every safe point is a vote (one tiny ``qa_all_reduce``), so a
    signal stops all ranks at the same point. Only for the epochs, whose safe points every rank
    passes alike; rank 0's test scoring afterwards has no peers to ask."""
    if not run.rank.distributed:
        yield
        return
    run.stop_flag.agree = functools.partial(distributed.agreed_stop, all_reduce=functools.partial(run.model_plugin.all_reduce, model))
    try:
        yield
    finally:
        run.stop_flag.agree = None


def run_epoch(run: "Run", model: Any, epoch: int) -> EpochLogs:
    """Shuffle, train, validate: the epoch's logs, before any observer sees them."""
    started = time.monotonic()
    config, plugin, train = run.config, run.model_plugin, run.encoded["train"]
    order = epoch_order(run, epoch)
    if run.spec.steps_per_epoch < train.num_batches(config.batch_size):
        order = order[: run.spec.steps_per_epoch * config.batch_size]
    steps = StepLog(run, epoch) if config.log_every_n_steps else None
    mine = distributed.shard(order, config.batch_size, run.rank)  # the whole order when one process
    loss, accuracy = train_one_epoch(
        plugin, model, train.take(mine), run.spec.batch_size, epoch, config.epochs, config.progress, stop=run.stop_flag, steps=steps
    )
    if run.rank.distributed:
        loss, accuracy = global_means(plugin, model, loss, accuracy, len(mine))
    if not math.isfinite(loss):
        last = f"; the last good checkpoint is {run.policy.best_path}" if run.policy.best else ""
        raise QAError(f"training loss became {loss} in epoch {epoch}: stopping{last}. Try a lower --lr.")
    run.stop_flag.check()
    val = run.encoded["val"]
    probs = plugin.predict(model, val, config.batch_size)
    run.stop_flag.check()
    report = metrics.compute_for_split(val, probs, config.threshold)
    values = {
        **metrics.train_metric_names(loss, accuracy),
        **{f"metrics/train/{name}": value for name, value in plugin.model_metrics(model).items()},
        **metrics.metric_names(report, "val"),
    }
    return EpochLogs(epoch, values, report, seconds=time.monotonic() - started)


def epoch_order(run: "Run", epoch: int) -> np.ndarray:
    """The epoch's rows in training order: ``run.rng``'s permutation (drawn in full even when
    ``--limit-train-batches`` trains on less: a resume replays it), grouped by length unless
    ``--no-group-by-length``. Grouped on the *global* batch, before a data-parallel shard, so N
    ranks together train on the batches one process would."""
    train, config = run.encoded["train"], run.config
    order = run.rng.permutation(len(train))
    if config.group_by_length:
        order = batching.group_by_length(order, train.lengths, config.batch_size, config.seed, epoch)
    return order


def global_means(plugin: ModelPlugin, model: Any, loss: float, accuracy: float, rows: int) -> tuple[float, float]:
    """The epoch's mean loss and accuracy over every rank's rows (one ``qa_all_reduce`` of the
    sums): the same numbers on every rank, and those a single process would report."""
    total_loss, correct, total_rows = plugin.all_reduce(model, np.array([loss * rows, accuracy * rows, rows], dtype=np.float64))
    return float(total_loss / total_rows), float(correct / total_rows)


def check_probabilities(model_plugin: ModelPlugin, probs: Any, n: int) -> np.ndarray:
    """See ModelPlugin.predict, which the loop and ``qa evaluate`` use; kept for the benchmarks."""
    from .plugins import checked_probabilities

    return checked_probabilities(model_plugin.name, probs, n)


@dataclass
class StepLog:
    """``--log-every-n-steps N``: every N optimisation steps (counted over the whole run), the
    mean training loss of those N steps and the plugin's ``qa_model_metrics`` go to every tracker
    as ``steps/train/<name>`` with ``step`` = the global step. The losses are converted only
    here, once per N steps, never per step."""

    run: "Run"
    epoch: int
    done_before: int = 0  # batches of this epoch already logged
    loss_sum_before: float = 0.0  # running-mean loss * batches, at that point (whole-epoch plugins)

    def global_step(self, done: int) -> int:
        return (self.epoch - 1) * self.run.spec.steps_per_epoch + done

    def due(self, done: int) -> bool:
        return self.global_step(done) % self.run.config.log_every_n_steps == 0

    def log(self, done: int, mean_loss: float) -> None:
        values = {"steps/train/loss": mean_loss, "steps/epoch": float(self.epoch)}
        for name, value in self.run.model_plugin.model_metrics(self.run.model).items():
            values[f"steps/train/{name}"] = value
        self.run.hub.step_metrics(values, step=self.global_step(done))
        self.done_before = done

    def after_step(self, losses: list[Any]) -> None:
        """Step-wise plugins: the mean of the losses since the last point (one sync)."""
        done = len(losses)
        if self.due(done):
            window = losses[self.done_before : done]
            self.log(done, float(sum(window)) / len(window))

    def after_batch(self, done: int, running_mean: Any) -> None:
        """Whole-epoch plugins report the epoch's running mean: the last N steps' mean follows."""
        if self.due(done):
            total = float(running_mean) * done
            self.log(done, (total - self.loss_sum_before) / (done - self.done_before))
            self.loss_sum_before = total


def train_one_epoch(
    model_plugin: ModelPlugin, model: Any, data: EncodedSplit, batch_size: int, epoch: int, epochs: int, progress: bool | None,
    stop: StopFlag | None = None, steps: StepLog | None = None,
) -> tuple[float, float]:
    """One pass over ``data`` (already shuffled); returns (mean loss, accuracy). ``stop`` is
    checked after every batch; ``steps`` logs every N steps."""
    total = data.num_batches(batch_size)
    bar = tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False, disable=(not progress) if progress is not None else None, dynamic_ncols=True, mininterval=0.2)
    try:
        if model_plugin.trains_whole_epochs:
            result = model_plugin.train_epoch(model, data, batch_size, epoch, _on_batch(bar, stop, steps))
            if result is not None:
                bar.update(total - bar.n)
                return float(result["loss"]), float(result["accuracy"])
        return _train_steps(model_plugin, model, data, batch_size, bar, stop, steps)
    finally:
        bar.close()


def _on_batch(bar: Any, stop: StopFlag | None, steps: StepLog | None) -> Callable[[int, Any], None]:
    last_refresh = [time.monotonic()]

    def on_batch(done: int, loss: Any) -> None:
        bar.update(done - bar.n)
        now = time.monotonic()
        if now - last_refresh[0] >= BAR_REFRESH_SECONDS:
            last_refresh[0] = now
            bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)
        if steps is not None:
            steps.after_batch(done, loss)
        if stop is not None:
            stop.check()

    return on_batch


def _train_steps(
    model_plugin: ModelPlugin, model: Any, data: EncodedSplit, batch_size: int, bar: Any, stop: StopFlag | None, steps: StepLog | None
) -> tuple[float, float]:
    # Losses stay whatever the plugin returned (maybe device tensors) until the bar refreshes,
    # a step-logging point comes or the epoch ends: converting every step would force a sync.
    step = model_plugin.train_step
    losses: list[Any] = []
    correct: list[Any] = []
    next_refresh = time.monotonic() + BAR_REFRESH_SECONDS
    for batch in data.batches(batch_size):
        loss, right = step(model, batch)
        losses.append(loss)
        correct.append(right)
        bar.update(1)
        if bar.disable is False and time.monotonic() >= next_refresh:
            next_refresh = time.monotonic() + BAR_REFRESH_SECONDS
            bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)
        if steps is not None:
            steps.after_step(losses)
        if stop is not None:
            stop.check()  # a safe point: the batch is done, nothing is being written
    sizes = np.full(len(losses), batch_size, dtype=np.float64)
    if len(data) % batch_size:
        sizes[-1] = len(data) % batch_size
    loss_values = np.array([float(v) for v in losses])
    mean_loss = float(loss_values @ sizes / len(data))
    accuracy = float(sum(float(v) for v in correct) / len(data))
    return mean_loss, accuracy
