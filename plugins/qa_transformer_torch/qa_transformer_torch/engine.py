"""The model handle the core carries between hooks: network, loss, optimizer, and the train and
evaluation loops over the core's numpy arrays.

Hot path rules (a benchmark holds a qa epoch to within 3% of a raw PyTorch loop): nothing in
:meth:`TorchModel.train_step` waits for the device. Batches are wrapped with ``torch.from_numpy``
(no copy on the CPU), losses come back as detached 0-d tensors the core ``float()``s only when it
needs a number, and the train/eval mode switch costs one attribute test per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from qa_core import Batch, EncodedSplit, ModelSpec

from .model import QATransformer
from .runtime import configure_threads, resolve_device, seed_everything


@dataclass(eq=False)
class TorchModel:
    """What ``qa_build`` returns and every other hook receives."""

    spec: ModelSpec
    device: torch.device
    network: QATransformer
    optimizer: torch.optim.Optimizer
    loss_fn: nn.BCEWithLogitsLoss
    grad_clip: float
    #: The network's parameters, listed once (clipping walks them every step).
    weights: list[torch.Tensor]
    #: The last finished epoch (restored from checkpoints, for a later resume).
    epoch: int = 0

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

    def train_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        network = self.network
        if not network.training:  # only after an evaluation: one attribute test per step
            network.train()
        token_ids, lengths = self._inputs(batch.tokens, batch.lengths)
        labels = torch.from_numpy(batch.labels).to(self.device, non_blocking=True)
        logits = network(token_ids, lengths)
        loss = self.loss_fn(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.weights, self.grad_clip, foreach=True)
        self.optimizer.step()
        correct = ((logits.detach() > 0) == (labels > 0.5)).sum()
        # Detached tensors, not floats: float() would wait for the device on every step.
        return loss.detach(), correct

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
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                token_ids, real = self._inputs(tokens[start:stop], lengths[start:stop])
                probs[start:stop] = torch.sigmoid(network(token_ids, real).float())
        result = np.empty(n, dtype=np.float32)
        result[order] = probs.cpu().numpy()  # the one device sync of the evaluation
        return result


def make_network(spec: ModelSpec) -> QATransformer:
    p = spec.params
    return QATransformer(
        vocab_size=spec.vocab_size,
        max_len=spec.max_len,
        d_model=p["d_model"],
        heads=p["heads"],
        layers=p["layers"],
        ff_dim=p["ff_dim"],
        dropout=p["dropout"],
        pooling=p["pooling"],
        question_match=p["question_match"],
        conv_kernel=p["conv_kernel"],
        distance_bias=p["distance_bias"],
        pad_id=spec.pad_id,
    )


def make_optimizer(network: nn.Module, params: dict) -> torch.optim.Optimizer:
    """Adam, or AdamW (decoupled decay) when weight_decay > 0: plain Adam's L2 term would be
    scaled by the adaptive step sizes and barely regularise."""
    if params["weight_decay"] > 0:
        return torch.optim.AdamW(network.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
    return torch.optim.Adam(network.parameters(), lr=params["lr"])


def build(spec: ModelSpec, seed: bool = True) -> TorchModel:
    """A fresh model on the chosen device. ``seed=False`` when a checkpoint's weights and RNG
    state are about to replace everything the seed would decide."""
    params = dict(spec.params)
    device = resolve_device(params["device"])
    configure_threads(params["threads"])
    if seed:
        seed_everything(spec.seed)
    network = make_network(spec).to(device)
    return TorchModel(
        spec=spec,
        device=device,
        network=network,
        optimizer=make_optimizer(network, params),
        loss_fn=nn.BCEWithLogitsLoss(),
        grad_clip=float(params["grad_clip"]),
        weights=list(network.parameters()),
    )
