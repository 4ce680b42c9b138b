"""2. Framework overhead, LSTM: a qa training epoch vs a plain ``model.fit(verbose=0)`` epoch.

qa side: ``train_one_epoch`` with ``load_plugins().model("lstm")`` (its ``qa_train_epoch`` runs
one ``fit`` with the progress-bridge callback). Raw side: ``model.fit(x, y, batch_size, epochs=1,
shuffle=False, verbose=0)`` on a model built by the plugin's own ``build`` from the same seed.
Parity first (one epoch each from the same seed: same loss to 5 decimals), then alternate epochs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qa_core import ModelSpec
from qa_core.trainer import train_one_epoch

from .common import Result, encoded, model_plugin, side_by_side

BATCH_SIZE = 32


def run(quick: bool) -> Result:
    result = Result("lstm_epoch", "2. Framework overhead, LSTM: qa epoch vs raw Keras fit")
    plugin = model_plugin("lstm")
    if plugin is None:
        result.skipped = "the lstm plugin (or TensorFlow) is not installed"
        return result
    from qa_lstm_tf.model import build  # the plugin's own builder: the same compiled model

    params = plugin.resolve_params({})
    train_rows = 640 if quick else 4500
    repeats = 4 if quick else 7
    vocab, splits = encoded(train_rows, 90, params["max_len"])
    train = splits["train"]
    spec = ModelSpec("lstm", params, len(vocab), params["max_len"], seed=0, vocab_hash=vocab.sha256)

    first = train.take(np.random.default_rng(0).permutation(len(train)))
    qa_model = plugin.build(spec)
    qa_loss, _ = train_one_epoch(plugin, qa_model, first, BATCH_SIZE, 1, 1, False)
    raw = build(spec)
    history = raw.model.fit(first.tokens, first.labels, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0)
    raw_loss = float(history.history["loss"][-1])
    result.details["parity"] = {"qa_loss": qa_loss, "raw_loss": raw_loss, "equal_to_5_decimals": round(qa_loss, 5) == round(raw_loss, 5)}
    result.figures["lstm_loss_parity_abs_diff"] = abs(qa_loss - raw_loss)
    result.targets["lstm_loss_parity_abs_diff"] = ("<=", 5e-6)

    rng = np.random.default_rng(1)
    state: dict[str, Any] = {"epoch": 1}

    def new_order(round_index: int) -> None:
        state["split"] = train.take(rng.permutation(len(train)))
        state["epoch"] += 1

    comparison = side_by_side(
        {
            "qa": lambda: train_one_epoch(plugin, qa_model, state["split"], BATCH_SIZE, state["epoch"], state["epoch"], False),
            "raw_fit": lambda: raw.model.fit(state["split"].tokens, state["split"].labels, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0),
        },
        repeats=repeats,
        before=new_order,
    )
    result.figures["lstm_epoch_ratio_vs_raw_fit"] = comparison.ratio
    result.targets["lstm_epoch_ratio_vs_raw_fit"] = ("<=", 1.03)
    result.details["epoch"] = comparison.to_json()
    result.details["setup"] = {"train_rows": train_rows, "batch_size": BATCH_SIZE, "steps_per_epoch": train.num_batches(BATCH_SIZE), "params": params}
    return result
