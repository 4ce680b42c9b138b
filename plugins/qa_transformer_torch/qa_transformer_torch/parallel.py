"""Data-parallel training under torchrun: the process group, the DDP replica, the one collective
the core asks for (``qa_all_reduce``: the epoch means and, after every step, the stop vote).

The core gives every rank its shard of each global batch (qa_core/distributed.py); here each
rank's per-rank mean loss is back-propagated through ``DistributedDataParallel``, which averages
the gradients over the ranks: with equal shards that is the gradient of the mean loss over the
global batch, so 2 ranks x 16 rows step exactly as 1 process x 32 rows. Evaluation and
checkpoints use the plain network (no collectives), so rank 0 can score the test split alone.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


#: A gloo group beside nccl's for :func:`all_reduce` (None: the default group is gloo already).
_host_group: Any = None


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "") or 1)


def setup(device: torch.device) -> torch.device:
    """Join the launcher's process group once per process (nccl on CUDA, gloo on the CPU; the
    rendezvous comes from MASTER_ADDR/MASTER_PORT, which torchrun sets). On CUDA each rank takes
    the GPU of its LOCAL_RANK. A single process is left alone."""
    if world_size() <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "") or 0))
        torch.cuda.set_device(device)
    global _host_group
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        # The core's collectives (a stop vote after every step, the epoch means) carry a few
        # numbers from the host: over nccl each would wait for the GPU's queued work.
        _host_group = dist.new_group(backend="gloo") if device.type == "cuda" else None
        atexit.register(teardown)
    return device


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def replicate(network: nn.Module, device: torch.device) -> nn.Module:
    """The DDP wrapper training steps go through (its constructor broadcasts rank 0's weights)."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(network, device_ids=[device.index] if device.type == "cuda" else None)


def all_reduce(values: Any, device: torch.device) -> np.ndarray:
    """``values`` summed over the ranks (float64), on the CPU through gloo: called after every
    training step (the core's stop vote), it must not sync a GPU."""
    tensor = torch.as_tensor(np.asarray(values, dtype=np.float64))
    dist.all_reduce(tensor, group=_host_group)
    return tensor.numpy()
