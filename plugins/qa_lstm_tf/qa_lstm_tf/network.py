"""The network: token ids -> reading aids -> (stacked, bidirectional) LSTM -> one probability,
built by :func:`make_network`; and the three small Keras layers that let an LSTM learn the
stories' task instead of memorising it.

The core encodes every row as ``story SEP question``, right-padded with 0. On the generated data
a plain Embedding + LSTM + Dense memorises the training set and stays at chance on validation
(README.md has the numbers): it meets the question last, so it must remember every fact not
knowing which will be asked, and it must learn to compare word identities ("is this sentence's
subject the person asked about?") from a few thousand examples. These layers remove both
obstacles:

* :class:`QuestionView` reorders each row to ``question story SEP`` (``question_first``) and tags
  every story token that also occurs in the question with its 1-based position there
  (``question_match``: the exact-match feature of reading-comprehension models such as DrQA,
  plus which question word matched, so the asked entity and the asked place differ).
* :class:`MarkTokens` replaces (or adds to) a tagged token's embedding with a learned vector per
  question position, keeping the embedding's padding mask.
* :class:`LocalContext` lets each position see the few tokens before it (a residual causal
  convolution), so "<asked entity> walked to the <asked place>" is one input at "place".

All of it is index arithmetic and small layers inside the model: it runs in the compiled train
and predict steps, needs no Python per example, and travels with the weights (predict, save,
load, and a plain ``model.fit`` on the same model).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qa_core import ModelSpec

from . import runtime

tf, keras = runtime.load()
ops = keras.ops


class QuestionView(keras.layers.Layer):
    """``tokens`` -> ``(tokens in reading order, question-match flags)``, both ``[batch, max_len]``.

    Padding stays at the end of every row, so ``Embedding(mask_zero=True)`` masks the same
    positions. A row without SEP (its question was truncated away) keeps its order and gets no
    flags.
    """

    def __init__(self, sep_id: int, question_first: bool = True, question_match: bool = True, slots: int = 16, **kwargs: Any):
        super().__init__(**kwargs)
        self.slots = slots
        self.sep_id = sep_id
        self.question_first = question_first
        self.question_match = question_match

    def call(self, tokens: Any) -> tuple[Any, Any]:
        length = ops.sum(ops.cast(ops.not_equal(tokens, 0), "int32"), axis=1, keepdims=True)
        is_sep = ops.cast(ops.equal(tokens, self.sep_id), "int32")
        has_sep = ops.max(is_sep, axis=1, keepdims=True)
        sep = ops.cast(ops.argmax(is_sep, axis=1), "int32")[:, None]
        positions = ops.arange(ops.shape(tokens)[1], dtype="int32")[None, :]

        if self.question_match:
            in_question = ops.logical_and(ops.greater(positions, sep), ops.less(positions, length))
            in_question = ops.logical_and(in_question, ops.greater(has_sep, 0))
            # [batch, i, j]: token i equals question token j. max_len^2 booleans per row: cheap
            # next to the LSTM's max_len sequential steps.
            same = ops.logical_and(ops.equal(tokens[:, :, None], tokens[:, None, :]), in_question[:, None, :])
            # The flag is the 1-based slot in the question of the first equal token ("Is Mary in
            # the kitchen?": mary -> 2, kitchen -> 5), so the reader can tell the asked entity from
            # the asked place; 0 means no match. Question tokens trivially match themselves.
            slot = ops.cast(ops.argmax(same, axis=2), "int32") - sep
            matched = ops.logical_and(ops.any(same, axis=2), ops.less(positions, sep))
            flags = ops.where(matched, ops.minimum(slot, self.slots), 0)
        else:
            flags = ops.zeros_like(tokens)

        if self.question_first:
            # Rotate the real tokens left by sep + 1: question, story, SEP, then the padding.
            shift = (sep + 1) * has_sep
            rotated = (positions + shift) % ops.maximum(length, 1)
            source = ops.where(ops.less(positions, length), rotated, positions)
            tokens = ops.take_along_axis(tokens, source, axis=1)
            flags = ops.take_along_axis(flags, source, axis=1)
        return tokens, flags

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape, input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "sep_id": self.sep_id,
            "question_first": self.question_first,
            "question_match": self.question_match,
            "slots": self.slots,
        }


class MarkTokens(keras.layers.Layer):
    """``(embeddings, slots)`` -> the embeddings with a learned vector per question slot put in
    where ``slot > 0``: ``replace`` swaps the word's embedding for it, ``add`` adds it.

    Keras' own merge layers would drop (Add) or void (Concatenate) the padding mask when one
    input has none, so this layer passes the embeddings' mask through explicitly.
    """

    def __init__(self, slots: int = 16, mode: str = "replace", scale: float = 0.05, **kwargs: Any):
        super().__init__(**kwargs)
        self.scale = scale
        if mode not in ("replace", "add"):
            raise ValueError(f"mode must be 'replace' or 'add', got {mode!r}")
        self.slots = slots
        self.mode = mode
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        width = input_shape[0][-1]
        self.marker = self.add_weight(
            shape=(self.slots, width), initializer=keras.initializers.RandomUniform(-self.scale, self.scale), name="marker"
        )

    def call(self, inputs: Any, mask: Any = None) -> Any:
        embeddings, slots = inputs
        table = ops.concatenate([ops.zeros_like(self.marker[:1]), ops.convert_to_tensor(self.marker)], axis=0)
        marks = ops.take(table, slots, axis=0)
        if self.mode == "add":
            return embeddings + marks
        return ops.where(ops.greater(slots, 0)[..., None], marks, embeddings)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None if mask is None else mask[0]

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "slots": self.slots, "mode": self.mode, "scale": self.scale}


class LocalContext(keras.layers.Layer):
    """``x + relu(causal_conv(x))``: each position also sees the ``width - 1`` tokens before it,
    keeping the padding mask (Keras' Conv1D would drop it).

    "sumit walked to the cafe": at "cafe" the LSTM input already says "the asked entity moved
    to the asked place", so the recurrence only has to remember the latest such signal instead
    of first learning to carry the subject across the sentence.
    """

    def __init__(self, width: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.width = width
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        self.conv = keras.layers.Conv1D(input_shape[-1], self.width, padding="causal", activation="relu", name="conv")
        self.conv.build(input_shape)

    def call(self, inputs: Any, mask: Any = None) -> Any:
        if mask is not None:  # padding must not leak into the window of the next real token
            inputs = inputs * ops.cast(mask, inputs.dtype)[..., None]
        return inputs + self.conv(inputs)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "width": self.width}


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
        tokens, flags = QuestionView(spec.sep_id, params["question_first"], match, name="question_view")(tokens)
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
    # float32 output under mixed precision: the sigmoid and the loss want its range (Keras' advice).
    answer = keras.layers.Dense(1, activation="sigmoid", name="answer", dtype="float32")(hidden)
    return keras.Model(tokens, answer, name="qa_lstm")


def make_network(spec: ModelSpec) -> keras.Model:
    """The network ``spec`` describes, its layers computing in ``precision``'s dtype policy.

    The policy is set only while the layers are created (each keeps the one it was born with),
    so another model in the same process keeps float32.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(runtime.dtype_policy(spec.params["precision"]))
    try:
        return _network(spec)
    finally:
        keras.config.set_dtype_policy(previous)
