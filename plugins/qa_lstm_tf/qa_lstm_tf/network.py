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

import math
from typing import Any, Mapping

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


#: Tokens that end a sentence: the core counts ``support`` indices by them from the row's start.
SENTENCE_ENDS = (".", "!", "?")


class SentenceGrid(keras.layers.Layer):
    """``(tokens, flags)`` ``[b, T]`` -> the story cut into sentences and the question:
    ``grid`` and ``grid_flags`` ``[b, S, L]`` (sentence ``s`` of a row is its ``s``-th sentence,
    counted by sentence ends from the row's first token, as ``Batch.support`` counts them),
    ``question`` and ``question_flags`` ``[b, Q]``.

    One scatter per output, no Python per example: each story token's (row, sentence, position
    in the sentence) comes from a cumulative sum of sentence ends and a segment minimum. ``S``,
    ``L`` and ``Q`` are the batch's own (the longest story's sentence count, ...), so a batch of
    short stories costs what it holds. A question token's flag is its 1-based position in the
    question: the same marker a story word that repeats it carries (see :class:`QuestionView`).
    """

    def __init__(self, sep_id: int, end_ids: tuple[int, ...], slots: int = 16, **kwargs: Any):
        super().__init__(**kwargs)
        self.sep_id, self.end_ids, self.slots = sep_id, tuple(end_ids), slots

    def call(self, tokens: Any, flags: Any) -> tuple[Any, Any, Any, Any]:
        tokens = tf.cast(tokens, "int32")
        flags = tf.cast(flags, "int32")
        b, t = tf.shape(tokens)[0], tf.shape(tokens)[1]
        positions = tf.broadcast_to(tf.range(t)[None, :], [b, t])
        real = tokens != 0
        is_sep = tokens == self.sep_id
        has_sep = tf.reduce_any(is_sep, axis=1, keepdims=True)
        length = tf.reduce_sum(tf.cast(real, "int32"), axis=1, keepdims=True)
        sep = tf.where(has_sep, tf.cast(tf.argmax(tf.cast(is_sep, "int32"), axis=1), "int32")[:, None], length)
        story = real & (positions < sep)
        in_question = real & (positions > sep)
        ends = tf.zeros_like(real)
        for end in self.end_ids:
            ends = ends | (tokens == end)
        after_end = tf.concat([tf.zeros_like(ends[:, :1]), ends[:, :-1]], axis=1)
        sentence = tf.cumsum(tf.cast(after_end, "int32"), axis=1)
        segment = tf.range(b)[:, None] * t + sentence  # one segment per (row, sentence)
        start = tf.math.unsorted_segment_min(positions, segment, b * t)
        within = positions - tf.gather(start, segment)

        where = tf.where(story)
        rows = tf.cast(where[:, 0], "int32")
        s_index, w_index = tf.gather_nd(sentence, where), tf.gather_nd(within, where)
        shape = tf.stack([b, tf.reduce_max(tf.concat([s_index, [0]], 0)) + 1, tf.reduce_max(tf.concat([w_index, [0]], 0)) + 1])
        at = tf.stack([rows, s_index, w_index], axis=1)
        grid = tf.scatter_nd(at, tf.gather_nd(tokens, where), shape)
        grid_flags = tf.scatter_nd(at, tf.gather_nd(flags, where), shape)

        q_where = tf.where(in_question)
        q_rows = tf.cast(q_where[:, 0], "int32")
        q_index = tf.gather_nd(positions - sep - 1, q_where)
        q_shape = tf.stack([b, tf.reduce_max(tf.concat([q_index, [0]], 0)) + 1])
        q_at = tf.stack([q_rows, q_index], axis=1)
        question = tf.scatter_nd(q_at, tf.gather_nd(tokens, q_where), q_shape)
        question_flags = tf.scatter_nd(q_at, tf.minimum(q_index + 1, self.slots), q_shape)
        return grid, grid_flags, question, question_flags

    def compute_output_shape(self, tokens_shape: Any, flags_shape: Any = None) -> Any:
        b = tokens_shape[0]
        return (b, None, None), (b, None, None), (b, None), (b, None)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "sep_id": self.sep_id, "end_ids": list(self.end_ids), "slots": self.slots}


def last_write_wins(gates: Any) -> Any:
    """``[b, T]`` write strengths in story order -> each position's read weight
    ``g_t * prod_{t' > t} (1 - g_t')``: the chance it writes and nothing later does (a reverse
    exclusive cumulative sum in log space, all positions at once)."""
    keep = tf.math.log1p(-tf.minimum(gates, 1.0 - 1e-6))
    return gates * tf.exp(tf.cumsum(keep, axis=1, exclusive=True, reverse=True))


def _masked_softmax(logits: Any, mask: Any) -> Any:
    logits = tf.where(mask, logits, tf.constant(-1e9, logits.dtype))
    return tf.nn.softmax(logits, axis=-1) * tf.cast(mask, logits.dtype)


class EntityHops(keras.layers.Layer):
    """``(grid [b, S, L], question [b, Q])`` -> ``(features [b, 2 * hops], question vector
    [b, 2 * units], weights [b, hops, S])``: a chain of hops that follows the asked entity up
    its containment chain, one link per hop, as a soft pointer over the story's words.

    * **The asked entity and place.** A BiLSTM reads the question; two attentions over its words
      pick the asked entity ("teapot" in "Is the teapot in the library?") and the asked place.
      Every story word then gets two exact-match scores: how much it *is* the asked entity,
      and the asked place (word identity, compared by id: nothing to learn about names).
    * **A hop.** A BiLSTM reads each sentence on its own, its input the word embeddings plus the
      current entity score of every word, so at "library" in "Irene walked to the school and
      ran to the library" it can tell that the marked entity (Irene) went there. A gate (small
      MLP, sigmoid) says how much each word is the entity's *new parent* (the holder who took
      or was given it, the container it was put in, the place its holder moved to), and
      :func:`last_write_wins` over the words in story order keeps the most recent such word:
      later clauses override earlier ones within a sentence as later sentences do. The words
      equal to the chosen one (by id, through a one-hot over the vocabulary) become the next
      hop's entity: object -> holder or container -> holder -> place.
    * **Features.** Per hop, the weight it chose (``mass``: 0 once the chain has reached a
      place, which has no parent) and how much of it lies on the asked place: the answer MLP
      reads "the last hop that found something found the asked place".

    The hop BiLSTM and gate are shared by every hop (the question each asks is the same: "where
    did the marked entity go?"). ``weights`` (each hop's choice summed per sentence) is what the
    support loss supervises. The gate bias starts at -4: every word writes a little (~2%), so
    the first reads reach the whole story instead of the last few words.
    """

    def __init__(self, vocab_size: int, dim: int, units: int, hops: int, dropout: float, scale: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.vocab_size, self.dim, self.units, self.hops, self.dropout, self.scale = vocab_size, dim, units, hops, dropout, scale
        init = keras.initializers.RandomUniform(-scale, scale)
        self.embedding = keras.layers.Embedding(vocab_size, dim, embeddings_initializer=init, name="embedding")
        self.question_lstm = keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True), name="question_bilstm")
        self.entity_pick = keras.layers.Dense(1, name="asked_entity")
        self.place_pick = keras.layers.Dense(1, name="asked_place")
        self.hop_lstm = keras.layers.Bidirectional(
            keras.layers.LSTM(units, return_sequences=True, dropout=dropout), name="hop_bilstm"
        )
        self.gate_hidden = keras.layers.Dense(units, activation="relu", name="gate_hidden")
        self.gate = keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(-4.0), name="gate")
        self.summary = keras.layers.Dense(8, activation="tanh", name="hop_summary")
        self.point_from = keras.layers.Dense(units, name="point_from")
        self.point_to = keras.layers.Dense(units, name="point_to")

    def build(self, grid_shape: Any, question_shape: Any = None) -> None:
        self.embedding.build((None, None))
        self.question_lstm.build((None, None, self.dim))
        self.entity_pick.build((None, None, 2 * self.units + 8))
        self.place_pick.build((None, None, 2 * self.units + 8))
        self.hop_lstm.build((None, None, self.dim + 2))
        self.gate_hidden.build((None, None, 2 * self.units + self.dim + 2))
        self.gate.build((None, None, self.units))
        self.summary.build((None, 2 * self.units + self.dim + 2))
        self.point_from.build((None, None, 2 * self.units + self.dim + 2))
        self.point_to.build((None, None, 2 * self.units + self.dim + 2))

    def call(self, grid: Any, question: Any, training: Any = None) -> tuple[Any, Any, Any]:
        shape = tf.shape(grid)
        b, s, length = shape[0], shape[1], shape[2]
        q_mask = question != 0
        q_states = self.question_lstm(self.embedding(question), mask=q_mask, training=training)
        q_real = tf.cast(q_mask, q_states.dtype)[..., None]
        q_vector = tf.reduce_sum(q_states * q_real, axis=1) / tf.maximum(tf.reduce_sum(q_real, axis=1), 1.0)
        # Each question word's position from the end, one-hot, beside its state: "the word
        # before '?'" is one weight to learn, not a pattern for the LSTM to find.
        q_len = tf.reduce_sum(tf.cast(q_mask, "int32"), axis=1, keepdims=True)
        from_end = tf.one_hot(tf.clip_by_value(q_len - 1 - tf.range(tf.shape(question)[1])[None, :], 0, 7), 8, dtype=q_states.dtype)
        q_view = tf.concat([q_states, from_end], axis=-1)
        # The pointer arithmetic below runs in float32 whatever the layers' precision: the
        # last-write-wins products over ~100 words would lose the early ones in bfloat16.
        entity_pointer = tf.cast(_masked_softmax(self.entity_pick(q_view)[..., 0], q_mask), "float32")  # [b, Q]
        place_pointer = tf.cast(_masked_softmax(self.place_pick(q_view)[..., 0], q_mask), "float32")

        self.pointers = (entity_pointer, place_pointer)
        words = tf.reshape(grid, [b, s * length])  # story order
        real = tf.cast(words != 0, "float32")
        same = tf.cast(words[:, :, None] == question[:, None, :], "float32")  # [b, T, Q]
        entity = tf.einsum("btq,bq->bt", same, entity_pointer)
        at_place = tf.einsum("btq,bq->bt", same, place_pointer)
        vectors = tf.reshape(self.embedding(grid), [b * s, length, self.dim])
        sentence_mask = tf.reshape(grid != 0, [b * s, length])
        one_hot = tf.one_hot(words, self.vocab_size, dtype="float32")  # [b, T, V]

        features, weights = [], []
        self.trace = []  # each hop's word weights [b, T] of the last call (inspection, tests)
        for _ in range(self.hops):
            # The asked place reaches the hops without its gradient: the support loss would
            # otherwise bend the place pointer into a second entity pointer (measured: it does).
            marks = tf.stack([entity, tf.stop_gradient(at_place)], axis=-1)  # [b, T, 2]
            x = tf.concat([vectors, tf.cast(tf.reshape(marks, [b * s, length, 2]), vectors.dtype)], axis=-1)
            states = tf.concat([self.read_sentences(x, sentence_mask, training), x], axis=-1)
            states = tf.reshape(states, [b, s, length, states.shape[-1]])
            gate = tf.cast(tf.sigmoid(self.gate(self.gate_hidden(states))[..., 0]), "float32") * tf.reshape(real, [b, s, length])
            mention = tf.reshape(last_write_wins(tf.reshape(gate, [b, s * length])), [b, s, length])
            parent = tf.einsum("bsl,bslm->bsm", mention, tf.cast(self.point(states, grid), "float32"))  # [b, S, L]
            parent = tf.reshape(parent, [b, s * length])
            # The parent word's identity, spread to every mention of it: the next hop's entity;
            # never the current entity again (a parent differs from its child).
            entity = tf.gather(tf.einsum("bt,btv->bv", parent, one_hot), words, batch_dims=1) * (1.0 - entity)
            # What the hop found, as the sentence told it at the mention ("... moved to the asked
            # place"), and how much it found (0 once the chain has reached a place).
            found = tf.cast(self.summary(tf.einsum("bsl,bsld->bd", mention, tf.cast(states, "float32"))), "float32")
            # ... and how much of the parent the hop points at is the asked place: the answer's
            # own path to the place pointer.
            features += [found, tf.reduce_sum(mention, axis=[1, 2])[:, None], tf.reduce_sum(parent * at_place, axis=1)[:, None]]
            weights.append(tf.reduce_sum(mention, axis=-1))
            self.trace.append((tf.reshape(mention, [b, s * length]), parent))
        return tf.concat(features, axis=1), q_vector, tf.stack(weights, axis=1)

    def read_sentences(self, x: Any, mask: Any, training: Any) -> Any:
        """The hop BiLSTM over the real sentences only: ``[b * S, L, d]`` -> ``[b * S, L, 2 * units]``.

        A batch's grid has as many sentences per row as its longest story; in a batch that mixes
        a 37-sentence story with 8-sentence ones most rows are padding, so they are gathered out
        before the recurrence and their (zero) states scattered back after it.
        """
        rows = tf.where(tf.reduce_any(mask, axis=1))
        states = self.hop_lstm(tf.gather_nd(x, rows), mask=tf.gather_nd(mask, rows), training=training)
        shape = tf.concat([tf.shape(x)[:2], [2 * self.units]], 0)
        return tf.scatter_nd(rows, states, tf.cast(shape, rows.dtype))

    def point(self, states: Any, grid: Any) -> Any:
        """``[b, S, L, L]``: from each word, a distribution over the other words of its sentence
        (which of them the sentence makes the parent of the word's entity)."""
        scores = tf.einsum("bsld,bsmd->bslm", self.point_from(states), self.point_to(states)) / math.sqrt(self.units)
        length = tf.shape(grid)[2]
        allowed = (grid != 0)[:, :, None, :] & ~tf.cast(tf.eye(length), "bool")[None, None]
        return tf.nn.softmax(tf.where(allowed, scores, tf.constant(-1e9, scores.dtype)), axis=-1)

    def compute_output_shape(self, grid_shape: Any, question_shape: Any = None) -> Any:
        b = grid_shape[0]
        return (b, self.hops * 10), (b, 2 * self.units), (b, self.hops, None)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size, "dim": self.dim, "units": self.units, "hops": self.hops,
            "dropout": self.dropout, "scale": self.scale,
        }  # fmt: skip


class SupportLoss(keras.losses.Loss):
    """Attention supervision, order-free (a record's support is a set, the hops' order is the
    model's): each supporting sentence is picked by some hop, ``-log(1 - prod_k (1 - w_k[s]))``,
    and no hop reads outside it, ``-log(1 - sum_{s not in support} w_k[s])`` (a hop may read nothing: the chain ended at a place); the two
    means added. ``y_true``: ``[b, k]`` sentence indices, -1 padded (a row with none costs 0);
    ``y_pred``: the hops' sentence weights ``[b, hops, S]``."""

    def call(self, y_true: Any, y_pred: Any) -> Any:
        weights = tf.cast(y_pred, "float32")
        support = tf.cast(y_true, "int32")
        chosen = tf.reduce_max(tf.one_hot(support, tf.shape(weights)[-1], dtype="float32"), axis=1)  # [b, S]; -1 -> none
        count = tf.reduce_sum(chosen, axis=-1)
        has = tf.cast(count > 0, "float32")
        missed = tf.reduce_prod(1.0 - weights, axis=1)  # [b, S]: no hop picks s
        cover = -tf.reduce_sum(chosen * tf.math.log(tf.maximum(1.0 - missed, 1e-6)), axis=-1) / tf.maximum(count, 1.0)
        outside = tf.reduce_sum(weights * (1.0 - chosen[:, None, :]), axis=-1)  # [b, hops]
        within = -tf.reduce_mean(tf.math.log(tf.maximum(1.0 - outside, 1e-6)), axis=-1)
        return has * (cover + within)


def _end_ids(spec: ModelSpec) -> tuple[int, ...]:
    return tuple(spec.vocab.index(word) for word in SENTENCE_ENDS if word in spec.vocab)


def _memory_network(spec: ModelSpec) -> keras.Model:
    """``architecture=memory``: the row cut into sentences, :class:`EntityHops` following the
    asked entity, an answer MLP over what each hop found. Outputs ``answer`` ``[b, 1]`` and
    ``support`` (the hops' sentence weights, ``[b, hops, S]``: trained by :class:`SupportLoss`,
    ignored when scoring)."""
    p = spec.params
    tokens = keras.Input(shape=(spec.max_len,), dtype="int32", name="tokens")
    grid, _, question, _ = SentenceGrid(spec.sep_id, _end_ids(spec), name="sentences")(tokens, tokens)
    hops = EntityHops(spec.vocab_size, p["embedding_dim"], p["units"], p["hops"], p["dropout"], p["embedding_scale"], name="hops")
    features, q_vector, weights = hops(grid, question)
    # The question vector stays out: by the generator's twin construction the question alone
    # says nothing about the answer, and beside the hops' findings it only invites memorising.
    hidden = keras.layers.Dense(2 * p["units"], activation="gelu", name="answer_hidden")(features)
    if p["dropout"] > 0:
        hidden = keras.layers.Dropout(p["dropout"], name="dropout")(hidden)
    answer = keras.layers.Dense(1, activation="sigmoid", name="answer", dtype="float32")(hidden)
    support = keras.layers.Identity(name="support", dtype="float32")(weights)
    return keras.Model(tokens, {"answer": answer, "support": support}, name="qa_memory")


def is_memory(spec: ModelSpec) -> bool:
    return spec.params.get("architecture", "plain") == "memory"


def compile_args(spec: ModelSpec) -> dict[str, Any]:
    """``model.compile``'s loss/metrics for ``spec``'s network: binary cross-entropy on the
    answer; for the memory network plus ``support_loss`` x :class:`SupportLoss` on its hops."""
    if not is_memory(spec):
        return {"loss": "binary_crossentropy", "metrics": ["accuracy"]}
    return {
        "loss": {"answer": "binary_crossentropy", "support": SupportLoss(name="support_loss")},
        "loss_weights": {"answer": 1.0, "support": spec.params["support_loss"]},
        "metrics": {"answer": ["accuracy"]},
    }


def fit_targets(spec: ModelSpec, data: Any) -> Any:
    """What ``fit`` trains ``data`` toward: the labels, and for the memory network its
    supporting sentences too (-1, "none known", where the data names none)."""
    if not is_memory(spec):
        return data.labels
    support = data.support if data.support is not None else np.full((len(data), 1), -1, dtype=np.int16)
    return {"answer": data.labels, "support": support}


def answer_of(outputs: Any) -> np.ndarray:
    """The probabilities of "yes" from ``predict``'s outputs, whichever network made them."""
    return np.asarray(outputs["answer"] if isinstance(outputs, dict) else outputs).reshape(-1)


def fit_logs(logs: Mapping[str, Any]) -> dict[str, float]:
    """Keras' epoch logs -> the core's ``loss`` (the answer's cross-entropy: the figure val
    loss is comparable with) and ``accuracy``, plus ``support_loss`` where it is trained."""
    if "answer_accuracy" not in logs:
        return {"loss": float(logs["loss"][-1]), "accuracy": float(logs["accuracy"][-1])}
    out = {"loss": float(logs["answer_loss"][-1]), "accuracy": float(logs["answer_accuracy"][-1])}
    if "support_loss" in logs:
        out["support_loss"] = float(logs["support_loss"][-1])
    return out


def make_network(spec: ModelSpec) -> keras.Model:
    """The network ``spec`` describes, its layers computing in ``precision``'s dtype policy.

    The policy is set only while the layers are created (each keeps the one it was born with),
    so another model in the same process keeps float32.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(runtime.dtype_policy(spec.params["precision"]))
    try:
        return _memory_network(spec) if is_memory(spec) else _network(spec)
    finally:
        keras.config.set_dtype_policy(previous)
