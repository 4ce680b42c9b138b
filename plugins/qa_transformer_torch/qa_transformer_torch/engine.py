"""The model handle the core carries between hooks: network, loss, optimizer, schedule and loss
scaler, with train / evaluate / save / load / metrics over the core's numpy arrays.

Hot path rules (a benchmark holds a qa epoch to within 3% of a raw PyTorch loop): nothing in
:meth:`TorchModel.train_step` waits for the device. Batches are wrapped with ``torch.from_numpy``
(no copy on the CPU), losses come back as detached 0-d tensors the core ``float()``s only when it
needs a number, gradient norms add up on the device and become one float per
:meth:`TorchModel.metrics` call, and the train/eval mode switch costs one attribute test per step.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from qa_core import Batch, CheckpointError, EncodedSplit, ModelSpec, training_kit
from qa_core.metrics import per_example_loss

from . import checkpoint, parallel
from .network import make_network, support_loss
from .runtime import autocast_dtype, configure_threads, resolve_device, restore_rng, rng_state, seed_everything


@dataclass(eq=False)
class TorchModel:
    """What ``qa_build`` returns and every other hook receives."""

    spec: ModelSpec
    device: torch.device
    network: nn.Module  # network.EntityHops or network.QATransformer (--param architecture)
    optimizer: torch.optim.Optimizer
    loss_fn: nn.BCEWithLogitsLoss
    grad_clip: float
    #: The network's parameters, listed once (clipping walks them every step).
    weights: list[torch.Tensor]
    #: LambdaLR (warm-up + decay), ReduceLROnPlateau, or None for a constant learning rate.
    scheduler: Any = None
    #: float16's loss scaler (CUDA only), else None.
    scaler: torch.amp.GradScaler | None = None
    #: The autocast dtype (bfloat16, float16) or None for float32.
    autocast: torch.dtype | None = None
    #: Batches whose gradients make one optimizer step.
    accumulation: int = 1
    #: The last finished epoch (restored from checkpoints, for a later resume).
    epoch: int = 0
    #: Batches seen in the current epoch, and rows waiting in the current accumulation group.
    batches_in_epoch: int = 0
    pending_rows: int = 0
    #: The learning rate the last optimizer step used (a Python float: no device sync).
    last_lr: float = 0.0
    #: Pre-clip global gradient norms since the last metrics() call, summed on the device.
    norm_sum: torch.Tensor | None = None
    #: Data-parallel runs: the DistributedDataParallel wrapper training steps go through, made
    #: at the first step (evaluation and checkpoints use ``network`` itself: no collectives).
    replica: nn.Module | None = None
    norm_count: torch.Tensor | None = None
    #: Weight of the attention supervision (memory network, batches with ``support``); 0: off.
    support_weight: float = 0.0
    #: Support losses since the last metrics() call, summed on the device, and their count.
    support_sum: torch.Tensor | None = None
    support_count: int = 0

    def _inputs(self, tokens: np.ndarray, lengths: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Wrap one batch of the core's arrays, cut to its longest row.

        Attention costs grow with the square of the width, and rows are right-padded, so columns
        past the batch's longest row are pure padding: dropping them changes no prediction.
        ``lengths.max()`` is a numpy reduction, not a device sync.
        """
        width = int(lengths.max())
        device = self.device
        token_ids = torch.from_numpy(tokens[:, :width]).to(device, non_blocking=True).long()
        real = torch.from_numpy(lengths).to(device, non_blocking=True).long()
        return token_ids, real

    def _autocast(self) -> Any:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def train_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        network = self.network
        if not network.training:  # only after an evaluation: one attribute test per step
            network.train()
        if self.replica is None and parallel.active():
            self.replica = parallel.replicate(network, self.device)
        token_ids, lengths = self._inputs(batch.tokens, batch.lengths)
        labels = torch.from_numpy(batch.labels).to(self.device, non_blocking=True)
        supervised = self.support_weight > 0 and batch.support is not None
        with self._autocast():
            out = (network if self.replica is None else self.replica)(token_ids, lengths, **({"with_reads": True} if supervised else {}))
        logits = (out[0] if supervised else out).float()
        loss = self.loss_fn(logits, labels)
        total = loss
        if supervised:
            aux = support_loss(out[1].float(), torch.from_numpy(batch.support).to(self.device, non_blocking=True))
            total = loss + self.support_weight * aux
            self.support_sum = aux.detach() if self.support_sum is None else self.support_sum + aux.detach()
            self.support_count += 1
        self._backward(total, len(batch))
        self.batches_in_epoch += 1
        end_of_epoch = self.batches_in_epoch == self.spec.steps_per_epoch
        if end_of_epoch or self.batches_in_epoch % self.accumulation == 0:
            self._optimizer_step()
        if end_of_epoch:
            self.batches_in_epoch = 0
        correct = ((logits.detach() > 0) == (labels > 0.5)).sum()
        # Detached tensors, not floats: float() would wait for the device on every step. The
        # answer's loss only: the figure stays comparable with runs (and plugins) without support.
        return loss.detach(), correct

    def _backward(self, loss: torch.Tensor, rows: int) -> None:
        """Add this batch's gradient to the group's: weighted by its rows, so 2 x 16 rows step
        exactly as 32 would (a group assumed full, corrected in _optimizer_step when not)."""
        if self.accumulation > 1:
            loss = loss * (rows / (self.accumulation * (self.spec.batch_size or rows)))
        self.pending_rows += rows
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        loss.backward()

    def _optimizer_step(self) -> None:
        optimizer = self.optimizer
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        nominal = self.accumulation * (self.spec.batch_size or self.pending_rows)
        if self.accumulation > 1 and self.pending_rows != nominal:  # the epoch's last, short group
            torch._foreach_mul_([w.grad for w in self.weights if w.grad is not None], nominal / self.pending_rows)
        if self.grad_clip > 0:
            norm = nn.utils.clip_grad_norm_(self.weights, self.grad_clip, foreach=True)
        else:
            norm = nn.utils.get_total_norm([w.grad for w in self.weights if w.grad is not None], foreach=True)
        self._add_norm(norm)
        self.last_lr = float(optimizer.param_groups[0]["lr"])  # a Python float already: no sync
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.pending_rows = 0
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
            self.scheduler.step()

    def _add_norm(self, norm: torch.Tensor) -> None:
        # float16 steps the scaler skips have an infinite norm: left out of the mean, on device.
        finite = torch.isfinite(norm)
        value = torch.where(finite, norm, 0.0)
        if self.norm_sum is None:
            self.norm_sum, self.norm_count = value, finite.to(norm.dtype)
        else:
            self.norm_sum, self.norm_count = self.norm_sum + value, self.norm_count + finite

    def metrics(self) -> dict[str, float]:
        """``lr`` of the last step and the mean pre-clip gradient norm since the last call (one
        device sync here, none per step); ``loss_scale`` under float16."""
        values = {"lr": self.last_lr or float(self.optimizer.param_groups[0]["lr"])}
        if self.norm_sum is not None:
            total, count = (float(v) for v in torch.stack((self.norm_sum, self.norm_count)).cpu())
            if count:
                values["grad_norm"] = total / count
            self.norm_sum = self.norm_count = None
        if self.support_sum is not None:
            values["support_loss"] = float(self.support_sum) / self.support_count
            self.support_sum, self.support_count = None, 0
        if self.scaler is not None:
            values["loss_scale"] = float(self.scaler.get_scale())
        return values

    def evaluate(self, data: EncodedSplit, batch_size: int) -> np.ndarray:
        """Probabilities of "yes" for every row of ``data``, in its stored order."""
        network = self.network
        network.eval()
        n = len(data)
        # Score rows shortest first so each batch is trimmed to rows of similar length (far less
        # padding to attend over), then scatter the results back to the stored order.
        order = np.argsort(data.lengths, kind="stable")
        tokens, lengths = data.tokens[order], data.lengths[order]
        probs = torch.empty(n, dtype=torch.float32, device=self.device)
        with torch.inference_mode(), self._autocast():
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                token_ids, real = self._inputs(tokens[start:stop], lengths[start:stop])
                probs[start:stop] = torch.sigmoid(network(token_ids, real).float())
        result = np.empty(n, dtype=np.float32)
        result[order] = probs.cpu().numpy()  # the one device sync of the evaluation
        self._after_validation(data, result)
        return result

    def _after_validation(self, data: EncodedSplit, probs: np.ndarray) -> None:
        """schedule=plateau: the core scores the ``val`` split once per epoch; its loss (the
        core's own formula, so the figure in metrics.jsonl) drives ReduceLROnPlateau."""
        if data.name == "val" and len(data) and isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(float(per_example_loss(data.labels, probs).mean()))

    def save(self, path: Path, meta: Mapping[str, Any]) -> None:
        self.epoch = int(meta.get("epoch", self.epoch) or 0)
        checkpoint.write(path, self.spec, {**meta, "epoch": self.epoch}, {
            "model": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(),
        })

    def restore(self, state: Mapping[str, Any], path: Path) -> None:
        """Weights, optimizer, schedule, scaler and random state from a checked checkpoint."""
        try:
            self.network.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler"):
                self.scheduler.load_state_dict(state["scheduler"])
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: weights do not fit the model: {exc}") from None
        self.epoch = int(state.get("epoch", 0))
        restore_rng(state.get("rng") or {}, self.device)


def make_optimizer(network: nn.Module, params: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Adam, or AdamW (decoupled decay) when weight_decay > 0: plain Adam's L2 term would be
    scaled by the adaptive step sizes and barely regularise."""
    if params["weight_decay"] > 0:
        return torch.optim.AdamW(network.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
    return torch.optim.Adam(network.parameters(), lr=params["lr"])


def make_scheduler(optimizer: torch.optim.Optimizer, spec: ModelSpec) -> Any:
    """The ``schedule`` param over the run's plan; None for constant lr or an unknown plan."""
    p = spec.params
    if p["schedule"] == "plateau":
        # Keras' patience counts the epochs that trigger the drop; torch's those it tolerates.
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=p["plateau_factor"], patience=p["plateau_patience"] - 1, threshold=0.0
        )
    total = training_kit.optimizer_steps(spec.epochs, spec.steps_per_epoch, p["gradient_accumulation_steps"], flush_each_epoch=True)
    if total == 0 or (p["schedule"] == "constant" and not p["warmup_steps"]):
        return None

    def factor(step: int) -> float:
        return training_kit.lr_factor(step, total, p["warmup_steps"], p["schedule"], p["min_lr_ratio"])

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build(spec: ModelSpec, seed: bool = True) -> TorchModel:
    """A fresh model on the chosen device. ``seed=False`` when a checkpoint's weights and RNG
    state are about to replace everything the seed would decide."""
    params = dict(spec.params)
    device = parallel.setup(resolve_device(params["device"]))
    dtype = autocast_dtype(params["precision"], device)
    configure_threads(params["threads"])
    if seed:
        seed_everything(spec.seed)
    network = make_network(spec).to(device)
    optimizer = make_optimizer(network, params)
    return TorchModel(
        spec=spec,
        device=device,
        network=network,
        optimizer=optimizer,
        loss_fn=nn.BCEWithLogitsLoss(),
        grad_clip=float(params["grad_clip"]),
        weights=list(network.parameters()),
        scheduler=make_scheduler(optimizer, spec),
        scaler=torch.amp.GradScaler(device.type) if dtype is torch.float16 else None,
        autocast=dtype,
        accumulation=params["gradient_accumulation_steps"],
        # Only the memory network has hops to supervise; the plain encoder trains on BCE alone.
        support_weight=float(params.get("support_loss", 0.0)) if params.get("architecture") == "memory" else 0.0,
    )


def load(path: Path, spec: ModelSpec) -> TorchModel:
    """Read and check the file, then rebuild the model and restore everything it saved."""
    path = Path(path)
    state = checkpoint.read(path)
    spec = checkpoint.legacy_spec(state, spec)
    checkpoint.check(state, path, spec)
    model = build(spec, seed=False)
    model.restore(state, path)
    return model
