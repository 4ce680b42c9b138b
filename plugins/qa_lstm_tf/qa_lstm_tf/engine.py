"""The model handle the core carries between hooks: the compiled Keras model with its schedule,
plateau rule and gradient-norm meter, and train (one ``fit`` per epoch) / evaluate / save / load /
metrics over the core's numpy arrays.

Imported lazily by :mod:`qa_lstm_tf.plugin` (importing it imports TensorFlow). The core hands
over numpy arrays it encoded once; :func:`batches` wraps them in one plain ``tf.data`` pipeline
per call (one per epoch for training, one per evaluation) that ``fit``/``predict`` read. Nothing
added here waits for the device per step: the learning rate is a schedule inside the compiled
step, gradient norms add up in two variables read once per :meth:`LSTMHandle.metrics` call.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from qa_core import CheckpointError, EncodedSplit, ModelSpec, training_kit
from qa_core.metrics import per_example_loss

from . import checkpoint, runtime
from . import network
from .network import make_network

tf, keras = runtime.load()
ops = keras.ops

NUMPY_COPY_WARNING = r"__array__ implementation doesn't accept a copy keyword"


class ProgressBridge(keras.callbacks.Callback):
    """Forwards Keras' per-batch results to the core's ``on_batch`` (its progress bar).

    Keras has already turned the logs into Python floats for its own callback list, so this
    costs one function call per batch and forces no extra device sync.
    """

    def __init__(self, on_batch: Callable[[int, Any], None]):
        super().__init__()
        self.on_batch = on_batch

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        # `batch` is the 0-based index of the last step run; logs["loss"] is the epoch's
        # running mean, which is what the core's bar shows.
        logs = logs or {}
        # The memory network's "loss" adds the support loss: show the answer's, as the epoch reports.
        self.on_batch(batch + 1, logs.get("answer_loss", logs.get("loss", float("nan"))))


class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """:func:`qa_core.training_kit.lr_factor` in Keras ops, evaluated inside the compiled step.

    Keras calls a schedule with the optimizer's batch counter; with gradient accumulation that
    counts batches, so the optimizer step is ``iterations // accumulation``.
    """

    def __init__(self, lr: float, total: int, warmup: int, decay: str, min_ratio: float, accumulation: int):
        self.lr, self.total, self.warmup, self.decay = lr, total, warmup, decay
        self.min_ratio, self.accumulation = min_ratio, accumulation

    def __call__(self, iterations: Any) -> Any:
        step = ops.cast(ops.floor_divide(iterations, self.accumulation), "float32")
        warm = (step + 1.0) / max(self.warmup, 1)
        progress = ops.clip((step - self.warmup) / max(self.total - self.warmup, 1), 0.0, 1.0)
        if self.decay == "cosine":
            decay = 0.5 * (1.0 + ops.cos(math.pi * progress))
        elif self.decay == "linear":
            decay = 1.0 - progress
        else:  # constant after the warm-up
            decay = ops.ones_like(progress)
        decay = self.min_ratio + (1.0 - self.min_ratio) * decay
        return self.lr * ops.where(ops.less(step, self.warmup), warm, decay)

    def get_config(self) -> dict[str, Any]:
        return dict(vars(self))


class GradNorm:
    """Sum and count of pre-clip global gradient norms, kept on the device (two variables
    outside the optimizer's own, so checkpoints keep Keras' layout)."""

    def __init__(self) -> None:
        # Under a strategy every replica adds the same (already summed) norm: keep replica 0's.
        once = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.total = tf.Variable(0.0, trainable=False, dtype="float32", aggregation=once)
        self.count = tf.Variable(0.0, trainable=False, dtype="float32", aggregation=once)

    def add(self, grads: Any) -> None:
        squares = [ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads if g is not None]
        self.total.assign_add(ops.sqrt(ops.sum(ops.stack(squares))))
        self.count.assign_add(1.0)

    def read_and_reset(self) -> float | None:
        total, count = (float(v) for v in tf.stack([self.total, self.count]).numpy())
        self.total.assign(0.0)
        self.count.assign(0.0)
        return total / count if count else None


class Adam(keras.optimizers.Adam):
    """Keras' Adam, measuring each batch's gradient norm on its way in (before clipping).

    Under a ``tf.distribute`` strategy the gradients are summed over the replicas *first*, so
    clipping and the norm see the whole batch's gradient, as on one device. Keras itself clips
    each replica's share and sums after: with ``clipnorm`` that trains differently on two
    devices than on one, and the norm would be of a half-batch gradient.
    """

    def __init__(self, grad_norm: GradNorm, **kwargs: Any):
        super().__init__(**kwargs)
        self.grad_norm = grad_norm

    def apply(self, grads: Any, trainable_variables: Any = None) -> Any:
        grads = sum_over_replicas(grads)
        self.grad_norm.add(grads)
        return super().apply(grads, trainable_variables)

    def _all_reduce_sum_gradients(self, grads_and_vars: Any) -> Any:
        return grads_and_vars  # apply() summed them already


def scalar(variable: Any) -> float:
    """A scalar variable's value; also a MirroredVariable's, which float() refuses."""
    return float(tf.convert_to_tensor(variable))


def sum_over_replicas(grads: list[Any]) -> list[Any]:
    """Each replica's gradients summed over all replicas (Keras scaled every replica's loss by
    1/replicas, so the sum is the gradient of the global batch's mean loss); unchanged on one."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return grads
    present = [g for g in grads if g is not None]
    summed = iter(context.all_reduce(tf.distribute.ReduceOp.SUM, present) if present else ())
    return [None if g is None else next(summed) for g in grads]


@dataclass(eq=False)
class LSTMHandle:
    """What ``qa_build`` returns and every other hook receives."""

    model: keras.Model
    spec: ModelSpec
    grad_norm: GradNorm
    #: The warm-up/decay schedule inside the optimizer, or None (a learning-rate variable).
    schedule: WarmupDecay | None = None
    #: schedule=plateau: Keras' own ReduceLROnPlateau, fed the validation loss by evaluate().
    plateau: Any = None
    #: The learning rate the last optimizer step used, read once per epoch.
    last_lr: float = 0.0
    #: The tf.distribute strategy the model was built under (runtime.strategy; one device by default).
    strategy: Any = None
    #: The last epoch's other training figures (the memory network's ``support_loss``).
    fit_extras: dict[str, float] = field(default_factory=dict)

    def train_epoch(self, data: EncodedSplit, batch_size: int, epoch: int, on_batch: Callable[[int, Any], None]) -> dict[str, float]:
        """One epoch of ``fit`` on the rows in the order the core shuffled them (no reshuffle)."""
        if short := self._short_tail(len(data), batch_size):  # as DDP: a tail that would leave a replica empty
            data = data.take(np.arange(len(data) - short))
        history = self.model.fit(
            batches((data.tokens, network.fit_targets(self.spec, data)), batch_size),
            initial_epoch=epoch - 1,  # Keras' epoch index then matches the core's
            epochs=epoch,
            shuffle=False,  # the core shuffled this epoch's rows; True would only warn for a dataset
            verbose=0,
            callbacks=[ProgressBridge(on_batch)],
        )
        self.last_lr = self._last_lr()
        logs = network.fit_logs(history.history)
        self.fit_extras = {name: value for name, value in logs.items() if name not in ("loss", "accuracy")}
        return {"loss": logs["loss"], "accuracy": logs["accuracy"]}

    def _short_tail(self, rows: int, batch_size: int) -> int:
        """The rows of the last batch when it has fewer than the strategy's replicas (0 if not).

        Keras would hand some replica an empty batch, which this network's convolution refuses
        (``Incompatible shapes: [0,44,8] vs. [0,40,8]``): training leaves those rows out (at most
        replicas - 1, other ones each epoch: the core shuffles), evaluation pads them.
        """
        replicas = self.strategy.num_replicas_in_sync if self.strategy is not None else 1
        tail = rows % batch_size
        return tail if 0 < tail < replicas else 0

    def _last_lr(self) -> float:
        optimizer = self.model.optimizer
        if self.schedule is None:
            return scalar(optimizer.learning_rate)
        steps = int(scalar(optimizer.iterations))  # optimizer steps done (Keras divides by accumulation)
        return float(self.schedule(max(steps - 1, 0) * self.schedule.accumulation))

    def metrics(self) -> dict[str, float]:
        """``lr`` of the epoch's last step and the mean gradient norm of the batches since the
        last call (before clipping; with accumulation, of each batch's own gradient)."""
        values = {"lr": self.last_lr or scalar(self.model.optimizer.learning_rate)}
        values.update(self.fit_extras)
        norm = self.grad_norm.read_and_reset()
        if norm is not None:
            values["grad_norm"] = norm
        return values

    def evaluate(self, data: EncodedSplit, batch_size: int) -> np.ndarray:
        """Probabilities of "yes", one per row, in the split's order (dropout off)."""
        if len(data) == 0:
            return np.zeros(0, dtype=np.float32)
        tokens = data.tokens
        if short := self._short_tail(len(tokens), batch_size):  # every replica gets a row; the copies' answers go
            tokens = np.concatenate([tokens, np.repeat(tokens[-1:], self.strategy.num_replicas_in_sync - short, axis=0)])
        probabilities = network.answer_of(self.model.predict(batches(tokens, batch_size), verbose=0))[: len(data)]
        if self.plateau is not None and data.name == "val":
            # The core scores "val" once per epoch; the loss is the core's own formula, the
            # figure metrics.jsonl shows.
            self.plateau.on_epoch_end(0, {"val_loss": float(per_example_loss(data.labels, probabilities).mean())})
        return probabilities

    def train_state(self) -> dict[str, Any]:
        if self.plateau is None:
            return {}
        best = self.plateau.best
        return {"plateau": {"best": None if best is None else float(best), "wait": int(self.plateau.wait), "cooldown_counter": int(self.plateau.cooldown_counter)}}

    def save(self, path: Path, meta: Mapping[str, Any]) -> None:
        """Keras weights (with the optimizer state Keras includes) plus the qa header, the
        training state and the seed generators' states."""
        with warnings.catch_warnings():
            # Keras' h5 writer calls np.array(variable) the numpy 1 way; numpy 2 warns on every
            # variable. Harmless and not ours to fix; keep it out of the user's console.
            warnings.filterwarnings("ignore", message=NUMPY_COPY_WARNING, category=DeprecationWarning)
            self.model.save_weights(str(path))
        checkpoint.write_header(Path(path), self.spec, meta, self.train_state(), runtime.rng_state(self.model))

    def restore(self, header: checkpoint.Header, path: Path) -> None:
        """Weights, optimizer, plateau count and random state from a checked checkpoint."""
        optimizer = self.model.optimizer
        if header.optimizer_variables > len(optimizer.variables):
            # Keras restores optimizer state only into an optimizer that already has its slots;
            # otherwise it skips them with a warning and a resumed run would restart Adam cold.
            with self.strategy.scope():  # its slots are mirrored like the weights
                optimizer.build(self.model.trainable_variables)
        if header.optimizer_variables != len(optimizer.variables):
            raise CheckpointError(
                f"{path}: optimizer state has {header.optimizer_variables} variables, "
                f"the model's optimizer {len(optimizer.variables)}"
            )
        try:
            with warnings.catch_warnings():
                # A variable Keras cannot match is an error for us, not a warning to scroll past.
                warnings.simplefilter("error", UserWarning)
                self.model.load_weights(str(path))
            if header.rng:
                runtime.restore_rng(self.model, header.rng)
        except (ValueError, KeyError, OSError, UserWarning) as exc:
            raise CheckpointError(f"{path}: cannot load the weights: {exc}") from None
        plateau = header.train_state.get("plateau")
        if self.plateau is not None and plateau:
            self.plateau.best, self.plateau.wait, self.plateau.cooldown_counter = plateau["best"], plateau["wait"], plateau["cooldown_counter"]


def make_optimizer(spec: ModelSpec, grad_norm: GradNorm) -> tuple[Any, WarmupDecay | None]:
    """Adam with the ``schedule`` param over the run's plan and Keras' own gradient accumulation.

    A schedule is built whenever the params ask for one, even where the plan is unknown
    (``qa evaluate``: epochs 0, one step assumed): Keras keeps a learning-rate *variable* only
    for a constant rate, so a model built without the schedule could not take the optimizer
    state of a checkpoint trained with it (25 variables against 26)."""
    p = spec.params
    accumulation = p["gradient_accumulation_steps"]
    total = training_kit.optimizer_steps(spec.epochs, spec.steps_per_epoch, accumulation, flush_each_epoch=False)
    schedule = None
    if p["schedule"] != "plateau" and (p["schedule"] != "constant" or p["warmup_steps"]):
        schedule = WarmupDecay(p["lr"], max(total, 1), p["warmup_steps"], p["schedule"], p["min_lr_ratio"], accumulation)
    optimizer = Adam(
        grad_norm,
        learning_rate=schedule or p["lr"],
        clipnorm=p["clipnorm"] or None,
        weight_decay=p["weight_decay"] or None,
        gradient_accumulation_steps=accumulation if accumulation > 1 else None,
    )
    return optimizer, schedule


def make_plateau(model: keras.Model, spec: ModelSpec) -> Any:
    if spec.params["schedule"] != "plateau":
        return None
    # min_delta 0: any lower loss is an improvement (torch's ReduceLROnPlateau with threshold 0).
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", mode="min", factor=spec.params["plateau_factor"], patience=spec.params["plateau_patience"], min_delta=0.0
    )
    plateau.set_model(model)
    return plateau


def build(spec: ModelSpec, seed: bool = True) -> LSTMHandle:
    """A fresh model, compiled with binary cross-entropy and Adam, seeded from ``spec.seed``
    (``seed=False`` when a checkpoint's weights and random state are about to replace it)."""
    strategy = runtime.strategy(spec.params)  # first: splitting the CPU must precede any TF op
    if seed:
        runtime.seed_everything(spec.seed)
    with strategy.scope():  # every variable (weights, optimizer, meters) mirrored on each replica
        model = make_network(spec)
        grad_norm = GradNorm()
        optimizer, schedule = make_optimizer(spec, grad_norm)
        model.compile(
            # mixed_float16 layers make compile wrap this in Keras' LossScaleOptimizer.
            optimizer=optimizer,
            **network.compile_args(spec),
            # XLA measured on this model (2-core CPU): a 200 s first compile, slower epochs after it,
            # and different numbers (its dropout RNG differs). "auto" would pick it on a GPU machine
            # for some configurations; off everywhere keeps results comparable across machines.
            jit_compile=False,
        )
    return LSTMHandle(model, spec, grad_norm, schedule, make_plateau(model, spec), strategy=strategy)


def batches(arrays: Any, batch_size: int) -> Any:
    """The rows of ``arrays`` (an array or a nest of them) in stored order, ``batch_size`` at a
    time, as a ``tf.data`` pipeline of whole batches with tf.data's autotuning switched off.

    Given numpy arrays, ``fit``/``predict`` build a pipeline with autotuned parallel batching and
    prefetching. For arrays already in memory there is nothing to overlap, and on a 2-core
    machine the autotuner's threads take CPU from the model: a 1,500-row epoch of the default
    LSTM took 2.5 s median (1.8-2.6 s), 1.66 s (1.62-1.70 s) with a plain pipeline, and the same
    loss to the last bit (same batches in the same order). The batches are cut in numpy (one
    reshape, a view) rather than by ``.batch()`` over single rows: iterating an epoch's 141
    batches then took 11 ms instead of 16-30 ms. ``benchmarks/`` measures it.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    rows = len(tf.nest.flatten(arrays)[0])
    full = rows - rows % batch_size
    whole = tf.nest.map_structure(lambda a: a[:full].reshape(-1, batch_size, *a.shape[1:]), arrays)
    dataset = tf.data.Dataset.from_tensor_slices(whole)
    if full < rows:  # the last, shorter batch
        dataset = dataset.concatenate(tf.data.Dataset.from_tensors(tf.nest.map_structure(lambda a: a[full:], arrays)))
    return dataset.with_options(options)


def load(path: Path, spec: ModelSpec) -> LSTMHandle:
    """Check the file's header against ``spec``, rebuild the model, restore everything it saved."""
    path = Path(path)
    header = checkpoint.read_header(path)
    checkpoint.check_header(path, header, spec)
    # A file from before the random state was stored: seed as its run did.
    handle = build(spec, seed=not header.rng)
    handle.restore(header, path)
    return handle
