"""1. Framework overhead, Transformer: a qa training epoch vs a hand-written PyTorch loop.

qa side: ``qa_core.trainer.train_one_epoch`` with the plugin from ``load_plugins().model(
"transformer")`` (progress bar off, as ``--no-progress``), on data encoded by ``encode`` from
``generate_splits``: the path ``qa run`` takes. Raw side: the plugin's own network and optimizer
builders (``make_network``, ``make_optimizer``), the same loss and gradient clipping, looping over
batches sliced into tensors beforehand (each trimmed to its longest row, as the plugin does, so
both sides draw identical dropout masks). Same data order, batch size, threads and seed.

Parity first: from the same seed, one epoch on each side must end with the same mean loss to 5
decimals (PyTorch Lightning's parity tests ask the same). Then both models keep training,
epoch by epoch, alternately, and the ratio of median epoch times is reported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qa_core import ModelSpec
from qa_core.trainer import train_one_epoch

from .common import Result, model_plugin, prepare, side_by_side

BATCH_SIZE = 32


def presliced(split: Any, batch_size: int, torch: Any) -> list[tuple[Any, Any, Any]]:
    """Every batch as ready tensors: (token ids [b, w], real lengths [b], labels [b])."""
    out = []
    for start in range(0, len(split), batch_size):
        stop = min(start + batch_size, len(split))
        lengths = split.lengths[start:stop]
        width = int(lengths.max())
        tokens = torch.from_numpy(np.ascontiguousarray(split.tokens[start:stop, :width])).long()
        real = torch.from_numpy(lengths.copy()).long()
        out.append((tokens, real, torch.from_numpy(split.labels[start:stop].copy())))
    return out


class RawLoop:
    """The hand-written baseline: the loop a PyTorch user writes without a framework."""

    def __init__(self, spec: ModelSpec, torch: Any):
        from qa_transformer_torch.engine import make_optimizer
        from qa_transformer_torch.network import make_network

        self.torch = torch
        torch.manual_seed(spec.seed)
        self.network = make_network(spec)
        self.optimizer = make_optimizer(self.network, dict(spec.params))
        self.loss_fn = torch.nn.BCEWithLogitsLoss()
        self.clip = float(spec.params["grad_clip"])

    def epoch(self, batches: list[tuple[Any, Any, Any]]) -> float:
        torch, network, optimizer = self.torch, self.network, self.optimizer
        network.train()
        losses, sizes = [], []
        for tokens, lengths, labels in batches:
            loss = self.loss_fn(network(tokens, lengths), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.clip > 0:
                torch.nn.utils.clip_grad_norm_(network.parameters(), self.clip, foreach=True)
            optimizer.step()
            losses.append(loss.detach())
            sizes.append(len(labels))
        return float(np.array([float(v) for v in losses]) @ np.array(sizes, dtype=np.float64) / sum(sizes))


def run(quick: bool, train_rows: int | None = None, repeats: int | None = None) -> Result:
    result = Result("transformer_epoch", "1. Framework overhead, Transformer: qa epoch vs raw PyTorch loop")
    plugin = model_plugin("transformer", needs="torch")
    if plugin is None:
        result.skipped = "the transformer plugin (or torch) is not installed"
        return result
    import torch

    # One intra-op thread on both sides: on a shared 2-core machine two OpenMP threads spin at
    # each barrier while the other core is busy, and steps slow down 10-30x (see README).
    train_rows = train_rows or (640 if quick else 4500)
    repeats = repeats or (4 if quick else 7)
    prepared = prepare(plugin, {"threads": "1", "support_loss": "0"}, train_rows, 90)  # the raw loop trains on BCE alone
    train, spec, params = prepared.splits["train"], prepared.spec, prepared.params

    # Parity: same seed, same data, one epoch each; the mean losses must agree to 5 decimals.
    first = train.take(np.random.default_rng(0).permutation(len(train)))
    qa_model = plugin.build(spec)
    qa_loss, _ = train_one_epoch(plugin, qa_model, first, BATCH_SIZE, 1, 1, False)
    raw = RawLoop(spec, torch)
    raw_loss = raw.epoch(presliced(first, BATCH_SIZE, torch))
    result.details["parity"] = {"qa_loss": qa_loss, "raw_loss": raw_loss, "equal_to_5_decimals": round(qa_loss, 5) == round(raw_loss, 5)}
    result.figures["transformer_loss_parity_abs_diff"] = abs(qa_loss - raw_loss)
    result.targets["transformer_loss_parity_abs_diff"] = ("<=", 5e-6)

    rng = np.random.default_rng(1)
    state: dict[str, Any] = {}

    def new_order(round_index: int) -> None:
        state["split"] = train.take(rng.permutation(len(train)))
        state["batches"] = presliced(state["split"], BATCH_SIZE, torch)

    comparison = side_by_side(
        {
            "qa": lambda: train_one_epoch(plugin, qa_model, state["split"], BATCH_SIZE, 2, 2, False),
            "raw": lambda: raw.epoch(state["batches"]),
        },
        repeats=repeats,
        before=new_order,
    )
    result.figures["transformer_epoch_ratio_vs_raw_loop"] = comparison.ratio
    result.targets["transformer_epoch_ratio_vs_raw_loop"] = ("<=", 1.03)
    result.details["epoch"] = comparison.to_json()
    result.details["setup"] = {
        "train_rows": train_rows,
        "batch_size": BATCH_SIZE,
        "steps_per_epoch": train.num_batches(BATCH_SIZE),
        "torch_threads": torch.get_num_threads(),
        "params": params,
    }
    return result
