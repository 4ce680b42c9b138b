"""8. Framework overhead against a framework: a qa transformer epoch vs PyTorch Lightning's.

qa side: ``train_one_epoch`` with the transformer plugin (bar off), as in benchmark 1. Lightning
side: a ``LightningModule`` around the plugin's own ``make_network`` and ``make_optimizer``, the
same loss and gradient clipping (``gradient_clip_val``, by norm), fed the same batches sliced into
tensors beforehand (a plain iterable: Lightning 2 takes any, and a ``DataLoader`` would draw
a seed from the global generator and shift every dropout mask). ``Trainer`` with logger,
checkpointing, progress bar and model summary off, one epoch per ``fit`` (the module keeps its
weights and its one optimizer across fits). Same data order, batch size, threads and seed.

Lightning's epoch is timed from its ``on_train_epoch_start`` to its ``on_train_epoch_end`` hook:
what one epoch of a long ``fit`` costs, without the per-``fit`` setup (that whole-``fit`` figure
is kept in the JSON as ``fit_wall``). qa's is the whole ``train_one_epoch`` call, so the
comparison leans, if anything, towards Lightning.

Two models: the plugin's default, and a small one (d_model 16, one layer, 3,000 rows: ~94 steps
of a few milliseconds) where per-step overhead shows. Parity first on each: one epoch from the
same seed must end with the same mean loss to 5 decimals.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np

from qa_core.trainer import train_one_epoch

from .common import Comparison, Result, model_plugin, prepare, side_by_side
from .transformer_epoch import BATCH_SIZE, presliced

MAX_LEN = 90
SMALL = {"d_model": "16", "layers": "1", "heads": "4"}


class Batches:
    """The pre-sliced batches as one iterable (a bare list would be read as a list of loaders)."""

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches

    def __iter__(self) -> Any:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def lightning_side(spec: Any, torch: Any, pl: Any) -> Any:
    """(module, epoch runner): the LightningModule a Lightning user writes for this network."""
    from qa_transformer_torch.engine import make_optimizer
    from qa_transformer_torch.network import make_network

    class QALightning(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(spec.seed)
            self.network = make_network(spec)
            self.loss_fn = torch.nn.BCEWithLogitsLoss()
            self.adam = make_optimizer(self.network, dict(spec.params))
            self.losses: list[Any] = []

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            tokens, lengths, labels = batch
            loss = self.loss_fn(self.network(tokens, lengths), labels)
            self.losses.append(loss.detach())
            return loss

        def configure_optimizers(self) -> Any:
            return self.adam  # one optimizer across fits, so Adam's moments carry on

    class EpochClock(pl.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            self.seconds.append(time.perf_counter() - self.start)

    module, clock = QALightning(), EpochClock()
    clip = float(spec.params["grad_clip"])

    def epoch(batches: list[Any]) -> float:
        """One ``fit`` of one epoch; returns its mean loss (weighted by batch rows)."""
        module.losses.clear()
        trainer = pl.Trainer(
            max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
            gradient_clip_val=clip if clip > 0 else None, gradient_clip_algorithm="norm", callbacks=[clock],
        )
        trainer.fit(module, train_dataloaders=Batches(batches))
        sizes = np.array([len(b[2]) for b in batches], dtype=np.float64)
        return float(np.array([float(v) for v in module.losses]) @ sizes / sizes.sum())

    return clock, epoch


def compare(plugin: Any, given: dict[str, str], rows: int, repeats: int, torch: Any, pl: Any) -> dict[str, Any]:
    """Parity, then alternated epochs: qa's whole call vs Lightning's epoch hooks (and its fit)."""
    prepared = prepare(plugin, {"threads": "1", "support_loss": "0", **given}, rows, MAX_LEN)  # Lightning side: BCE alone
    train, spec = prepared.splits["train"], prepared.spec
    first = train.take(np.random.default_rng(0).permutation(len(train)))
    qa_model = plugin.build(spec)
    qa_loss, _ = train_one_epoch(plugin, qa_model, first, BATCH_SIZE, 1, 1, False)
    clock, lightning_epoch = lightning_side(spec, torch, pl)
    lightning_loss = lightning_epoch(presliced(first, BATCH_SIZE, torch))

    rng = np.random.default_rng(1)
    state: dict[str, Any] = {}

    def new_order(round_index: int) -> None:
        state["split"] = train.take(rng.permutation(len(train)))
        state["batches"] = presliced(state["split"], BATCH_SIZE, torch)

    fit_wall = side_by_side(
        {
            "qa": lambda: train_one_epoch(plugin, qa_model, state["split"], BATCH_SIZE, 2, 2, False),
            "lightning_fit": lambda: lightning_epoch(state["batches"]),
        },
        repeats=repeats,
        before=new_order,
    )
    hooks = Comparison("qa", "lightning_epoch", fit_wall.seconds_a, clock.seconds[-repeats:])
    return {
        "parity": {"qa_loss": qa_loss, "lightning_loss": lightning_loss, "equal_to_5_decimals": round(qa_loss, 5) == round(lightning_loss, 5)},
        "epoch": hooks.to_json(),
        "fit_wall": fit_wall.to_json(),
        "ratio": hooks.ratio,
        "setup": {"train_rows": rows, "steps_per_epoch": train.num_batches(BATCH_SIZE), "torch_threads": torch.get_num_threads(), "params": prepared.params},
    }


def run(quick: bool, rows: tuple[int, int] | None = None, repeats: int | None = None) -> Result:
    result = Result("lightning_epoch", "8. Framework overhead: qa transformer epoch vs PyTorch Lightning")
    plugin = model_plugin("transformer", needs="torch")
    if plugin is None:
        result.skipped = "the transformer plugin (or torch) is not installed"
        return result
    try:
        import pytorch_lightning as pl
    except ImportError:
        result.skipped = "pytorch-lightning is not installed (pip install -e '.[bench]')"
        return result
    import torch

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", module="lightning_fabric")
    default_rows, small_rows = rows or ((320, 960) if quick else (4500, 3000))
    repeats = repeats or (5 if quick else 9)
    result.details["lightning_version"] = pl.__version__
    for label, given, n in (("", {}, default_rows), ("small_", SMALL, small_rows)):
        measured = compare(plugin, given, n, repeats, torch, pl)
        result.details[f"{label or 'default_'}model"] = measured
        key = f"transformer_{label}epoch_ratio_vs_lightning"
        result.figures[key] = measured["ratio"]
        result.targets[key] = ("<=", 1.00)  # the goal on the small model is 0.97 (README)
        parity = f"transformer_{label}lightning_loss_parity_abs_diff"
        result.figures[parity] = abs(measured["parity"]["qa_loss"] - measured["parity"]["lightning_loss"])
        result.targets[parity] = ("<=", 5e-6)
    return result
