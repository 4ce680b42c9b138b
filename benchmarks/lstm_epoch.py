"""2. Framework overhead, LSTM: a qa training epoch vs a plain ``model.fit(verbose=0)`` epoch.

qa side: ``train_one_epoch`` with ``load_plugins().model("lstm")`` (its ``qa_train_epoch`` runs
one ``fit`` over the plugin's tf.data pipeline, with the progress-bridge callback). Two raw sides,
each on a model built by the plugin's own ``build`` from the same seed:

* ``raw_fit``: ``model.fit(x, y, batch_size, epochs=1, shuffle=False, verbose=0)`` on the numpy
  arrays: what a Keras user writes. Keras wraps them in an autotuned tf.data pipeline. ``y`` is
  what the plugin trains toward (``fit_targets``: the labels, and for the default memory network
  the supporting sentences of its second output too).
* ``raw_fit_same_pipeline``: ``model.fit(batches(...), verbose=0)`` on the plugin's own pipeline
  (``qa_lstm_tf.engine.batches``): what qa adds around ``fit`` and nothing else.

Parity first (one epoch from the same seed on qa and on raw_fit: same loss to 5 decimals), then
each ratio from alternating epochs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qa_core.trainer import train_one_epoch

from .common import Result, model_plugin, prepare, side_by_side

BATCH_SIZE = 32


def run(quick: bool, train_rows: int | None = None, repeats: int | None = None) -> Result:
    result = Result("lstm_epoch", "2. Framework overhead, LSTM: qa epoch vs raw Keras fit")
    plugin = model_plugin("lstm")
    if plugin is None:
        result.skipped = "the lstm plugin (or TensorFlow) is not installed"
        return result
    from qa_lstm_tf.engine import batches, build  # the plugin's own builder and pipeline
    from qa_lstm_tf.network import fit_logs, fit_targets  # the memory network trains two outputs

    # 1,500 rows (47 steps) even when quick: on 640 rows an epoch is ~0.7 s and Keras' numpy
    # pipeline's occasional stalls (+0.6-0.8 s, see qa_lstm_tf.engine.batches) swamp the ratio.
    train_rows = train_rows or (1500 if quick else 4500)
    repeats = repeats or (4 if quick else 7)
    prepared = prepare(plugin, {}, train_rows, 90)
    train, spec, params = prepared.splits["train"], prepared.spec, prepared.params

    first = train.take(np.random.default_rng(0).permutation(len(train)))
    qa_model = plugin.build(spec)
    qa_loss, _ = train_one_epoch(plugin, qa_model, first, BATCH_SIZE, 1, 1, False)
    raw = build(spec)
    history = raw.model.fit(first.tokens, fit_targets(spec, first), batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0)
    raw_loss = fit_logs(history.history)["loss"]
    result.details["parity"] = {"qa_loss": qa_loss, "raw_loss": raw_loss, "equal_to_5_decimals": round(qa_loss, 5) == round(raw_loss, 5)}
    result.figures["lstm_loss_parity_abs_diff"] = abs(qa_loss - raw_loss)
    result.targets["lstm_loss_parity_abs_diff"] = ("<=", 5e-6)
    same_pipeline = build(spec)

    rng = np.random.default_rng(1)
    state: dict[str, Any] = {"epoch": 1}

    def new_order(round_index: int) -> None:
        state["split"] = train.take(rng.permutation(len(train)))
        state["epoch"] += 1

    def qa_epoch() -> None:
        train_one_epoch(plugin, qa_model, state["split"], BATCH_SIZE, state["epoch"], state["epoch"], False)

    sides = {
        "raw_fit": lambda: raw.model.fit(state["split"].tokens, fit_targets(spec, state["split"]), batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0),
        "raw_fit_same_pipeline": lambda: same_pipeline.model.fit(batches((state["split"].tokens, fit_targets(spec, state["split"])), BATCH_SIZE), epochs=1, shuffle=False, verbose=0),
    }
    for baseline, run_baseline in sides.items():
        comparison = side_by_side({"qa": qa_epoch, baseline: run_baseline}, repeats=repeats, before=new_order)
        key = f"lstm_epoch_ratio_vs_{baseline}"
        result.figures[key] = comparison.ratio
        result.targets[key] = ("<=", 1.03)
        result.details[baseline] = comparison.to_json()
    result.details["setup"] = {"train_rows": train_rows, "batch_size": BATCH_SIZE, "steps_per_epoch": train.num_batches(BATCH_SIZE), "params": params}
    return result
