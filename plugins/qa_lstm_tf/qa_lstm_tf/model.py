"""The Keras side of the plugin: build, train one epoch with ``fit``, predict, save, load.

Imported lazily by :mod:`qa_lstm_tf.plugin` (importing it imports TensorFlow). The core hands
over numpy arrays it encoded once; :func:`batches` wraps them in one plain ``tf.data`` pipeline
per call (one per epoch for training, one per evaluation) that ``fit``/``predict`` read.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from qa_core import CheckpointError, EncodedSplit, ModelSpec

from . import checkpoint, tf_runtime
from .layers import LocalContext, MarkTokens, QuestionView

tf, keras = tf_runtime.load()

#: The core's separator id between story and question (qa_core.data.tokenizer.SEP).
SEP_ID = 2
NUMPY_COPY_WARNING = r"__array__ implementation doesn't accept a copy keyword"


@dataclass
class LSTMHandle:
    """The model handle the core passes back to every hook: the compiled model and its spec."""

    model: keras.Model
    spec: ModelSpec


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
        self.on_batch(batch + 1, (logs or {}).get("loss", float("nan")))


def chrono_bias(units: int, max_len: int, seed: int) -> keras.initializers.Initializer:
    """LSTM gate biases that start out remembering over up to ``max_len`` steps ("chrono"
    initialisation, Tallec & Ollivier, ICLR 2018): forget bias log(u), u ~ U(1, max_len - 1),
    input bias its negative, the rest 0.

    With Keras' default forget bias of 1 a cell keeps ~73% of its state per step, so what the
    story said 50 tokens before the end has faded before the answer is read; the answer here
    hinges on one fact anywhere in a 70-340 token story. Values come from numpy seeded with the
    run's seed, so the model stays repeatable.
    """
    rng = np.random.default_rng(seed)
    forget = np.log(rng.uniform(1.0, max(2.0, max_len - 1.0), size=units))
    # Keras' gate order in the bias vector: input, forget, cell, output.
    values = np.concatenate([-forget, forget, np.zeros(2 * units)]).astype("float32")
    return keras.initializers.Constant(values)


def _embed(tokens: Any, spec: ModelSpec) -> Any:
    """Token ids -> masked vectors in reading order, with the question's words marked."""
    params = spec.params
    match = params["question_match"] != "none"
    flags = None
    if params["question_first"] or match:
        tokens, flags = QuestionView(SEP_ID, params["question_first"], match, name="question_view")(tokens)
    scale = params["embedding_scale"]
    hidden = keras.layers.Embedding(
        spec.vocab_size,
        params["embedding_dim"],
        embeddings_initializer=keras.initializers.RandomUniform(-scale, scale),
        mask_zero=True,  # padding (id 0) is masked from here to the last LSTM
        name="embedding",
    )(tokens)
    if match:
        hidden = MarkTokens(mode=params["question_match"], scale=scale, name="question_match")([hidden, flags])
    if params["conv_width"] > 1:
        hidden = LocalContext(params["conv_width"], name="local_context")(hidden)
    return hidden


def _lstm(index: int, spec: ModelSpec) -> keras.layers.Layer:
    params = spec.params
    last = index == params["layers"] - 1
    biases = {}
    if params["chrono_init"]:
        biases = {"unit_forget_bias": False, "bias_initializer": chrono_bias(params["units"], spec.max_len, spec.seed + index)}
    lstm = keras.layers.LSTM(
        params["units"],
        return_sequences=not last,  # a stacked layer reads the whole sequence below it
        dropout=params["dropout"],
        recurrent_dropout=params["recurrent_dropout"],
        name=f"lstm_{index + 1}",
        **biases,
    )
    return keras.layers.Bidirectional(lstm, name=f"bidirectional_{index + 1}") if params["bidirectional"] else lstm


def _network(spec: ModelSpec) -> keras.Model:
    if spec.pad_id != 0:
        # Embedding(mask_zero=True) masks id 0; any other padding id would be read as a word.
        raise ValueError(f"the LSTM masks padding id 0, but the data pads with {spec.pad_id}")
    tokens = keras.Input(shape=(spec.max_len,), dtype="int32", name="tokens")
    hidden = _embed(tokens, spec)
    for index in range(spec.params["layers"]):
        hidden = _lstm(index, spec)(hidden)
    if spec.params["dropout"] > 0:
        hidden = keras.layers.Dropout(spec.params["dropout"], name="dropout")(hidden)
    answer = keras.layers.Dense(1, activation="sigmoid", name="answer")(hidden)
    return keras.Model(tokens, answer, name="qa_lstm")


def build(spec: ModelSpec) -> LSTMHandle:
    """A fresh model, compiled with binary cross-entropy and Adam, seeded from ``spec.seed``."""
    # Seeds Python, numpy and TensorFlow: the initial weights and every dropout mask follow.
    keras.utils.set_random_seed(spec.seed)
    model = _network(spec)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=spec.params["lr"], clipnorm=spec.params["clipnorm"] or None),
        loss="binary_crossentropy",
        metrics=["accuracy"],
        # XLA measured on this model (2-core CPU): a 200 s first compile, slower epochs after it,
        # and different numbers (its dropout RNG differs). "auto" would pick it on a GPU machine
        # for some configurations; off everywhere keeps results comparable across machines.
        jit_compile=False,
    )
    return LSTMHandle(model, spec)


def batches(arrays: Any, batch_size: int) -> Any:
    """The rows of ``arrays`` in stored order, ``batch_size`` at a time, as a ``tf.data`` pipeline
    with tf.data's autotuning switched off.

    Given numpy arrays, ``fit``/``predict`` build a pipeline with autotuned parallel batching and
    prefetching. For arrays already in memory there is nothing to overlap, and on a 2-core
    machine the autotuner's threads take CPU from the model: a 1,500-row epoch of the default
    LSTM took 2.5 s median (1.8-2.6 s), 1.66 s (1.62-1.70 s) with this pipeline, and the same
    loss to the last bit (same batches in the same order). ``benchmarks/`` measures it.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size).with_options(options)


def train_epoch(handle: LSTMHandle, data: EncodedSplit, batch_size: int, epoch: int, on_batch: Callable[[int, Any], None]) -> dict[str, float]:
    """One epoch of ``fit`` on the rows in the order the core shuffled them (no reshuffle)."""
    history = handle.model.fit(
        batches((data.tokens, data.labels), batch_size),
        initial_epoch=epoch - 1,  # Keras' epoch index then matches the core's (for schedules)
        epochs=epoch,
        shuffle=False,  # the core shuffled this epoch's rows; True would only warn for a dataset
        verbose=0,
        callbacks=[ProgressBridge(on_batch)],
    )
    logs = history.history
    return {"loss": float(logs["loss"][-1]), "accuracy": float(logs["accuracy"][-1])}


def predict(handle: LSTMHandle, data: EncodedSplit, batch_size: int) -> np.ndarray:
    """Probabilities of "yes", one per row, in the split's order (dropout off)."""
    if len(data) == 0:
        return np.zeros(0, dtype=np.float32)
    probabilities = handle.model.predict(batches(data.tokens, batch_size), verbose=0)
    return probabilities.reshape(-1)


def save(handle: LSTMHandle, path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> bool:
    """Keras weights (with the optimizer state Keras includes) plus the qa header."""
    with warnings.catch_warnings():
        # Keras' h5 writer calls np.array(variable) the numpy 1 way; numpy 2 warns on every
        # variable. Harmless and not ours to fix; keep it out of the user's console.
        warnings.filterwarnings("ignore", message=NUMPY_COPY_WARNING, category=DeprecationWarning)
        handle.model.save_weights(str(path))
    checkpoint.write_header(Path(path), spec, meta)
    return True


def load(path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> LSTMHandle:
    """Check the file's header against ``spec``, rebuild the model, restore weights and optimizer."""
    path = Path(path)
    header = checkpoint.read_header(path)
    checkpoint.check_header(path, header, spec)
    handle = build(spec)
    optimizer = handle.model.optimizer
    if header.optimizer_variables > len(optimizer.variables):
        # Keras restores optimizer state only into an optimizer that already has its slots;
        # otherwise it skips them with a warning and a resumed run would restart Adam cold.
        optimizer.build(handle.model.trainable_variables)
    if header.optimizer_variables != len(optimizer.variables):
        raise CheckpointError(
            f"{path}: optimizer state has {header.optimizer_variables} variables, "
            f"the model's optimizer {len(optimizer.variables)}"
        )
    try:
        with warnings.catch_warnings():
            # A variable Keras cannot match is an error for us, not a warning to scroll past.
            warnings.simplefilter("error", UserWarning)
            handle.model.load_weights(str(path))
    except (ValueError, KeyError, OSError, UserWarning) as exc:
        raise CheckpointError(f"{path}: cannot load the weights: {exc}") from None
    return handle
