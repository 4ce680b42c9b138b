"""3. Evaluation + metrics: qa's evaluate-and-score of a validation split vs a plain predict loop.

qa side: the plugin's ``qa_evaluate`` through the core's facade, ``check_probabilities``,
``metrics.compute_for_split`` and ``metric_names``: what ``qa run`` does after every epoch. Raw
side: the same network in ``inference_mode`` over batches sliced into tensors beforehand,
sigmoid, one accuracy. Uses the transformer (one torch thread), or the bow plugin without torch.
"""

from __future__ import annotations

from typing import Any

from qa_core import metrics
from qa_core.trainer import check_probabilities

from .common import Result, model_plugin, prepare, side_by_side

BATCH_SIZE = 32


def run(quick: bool, val_rows: int | None = None, repeats: int | None = None) -> Result:
    result = Result("evaluation", "3. Evaluation + metrics: qa evaluate-and-score vs plain predict loop")
    plugin = model_plugin("transformer", needs="torch")
    if plugin is None:
        result.skipped = "the transformer plugin (or torch) is not installed"
        return result
    import torch

    from .transformer_epoch import presliced

    val_rows = val_rows or (450 if quick else 900)
    prepared = prepare(plugin, {"threads": "1"}, 450, val_rows)
    val = prepared.splits["val"]
    model = plugin.build(prepared.spec)
    network = model.network
    batches = presliced(val, BATCH_SIZE, torch)

    def qa_side() -> Any:
        probs = check_probabilities(plugin, plugin.evaluate(model, val, BATCH_SIZE), len(val))
        return metrics.metric_names(metrics.compute_for_split(val, probs), "val")

    def raw_side() -> float:
        network.eval()
        with torch.inference_mode():
            probs = torch.cat([torch.sigmoid(network(tokens, lengths)) for tokens, lengths, _ in batches]).numpy()
        return float(((probs >= 0.5) == (val.labels >= 0.5)).mean())

    assert abs(qa_side()["metrics/val/accuracy"] - raw_side()) < 1e-9
    comparison = side_by_side({"qa": qa_side, "raw_predict": raw_side}, repeats=repeats or (5 if quick else 9))
    result.figures["evaluate_ratio_vs_raw_predict_loop"] = comparison.ratio
    result.details["evaluate"] = comparison.to_json()
    result.details["setup"] = {"val_rows": val_rows, "batch_size": BATCH_SIZE, "torch_threads": torch.get_num_threads()}
    result.notes.append(
        "qa scores rows sorted by length (less padding per batch) and computes every grouped metric; "
        "the raw loop keeps stored order and computes accuracy only"
    )
    return result
