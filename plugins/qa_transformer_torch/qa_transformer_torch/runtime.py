"""Where the model runs: device choice, CPU threads, seeding and random state, numeric precision."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from qa_core import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, else the CPU; an explicit device must exist here."""
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--param device={name}: CUDA is not available to torch {torch.__version__} on this machine; "
                "use device=auto or device=cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--param device={name}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if device.type == "mps" and not _mps_available():
        raise ConfigError(f"--param device={name}: MPS is not available on this machine; use device=auto or device=cpu")
    return device


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def usable_cpus() -> int:
    """The cores this process may really use: its CPU affinity, capped by a cgroup v2 quota.

    ``os.cpu_count()`` reports the host's cores, so inside a container limited to 2 CPUs torch
    would start one thread per host core and spend its time contending for the 2.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def configure_threads(threads: int) -> None:
    """Set torch's intra-op threads once per process (0 = every usable core)."""
    wanted = threads or usable_cpus()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def seed_everything(seed: int) -> None:
    """Seed torch's CPU and CUDA generators: weight init and dropout draw from them."""
    torch.manual_seed(seed)

def rng_state() -> dict[str, Any]:
    """The generators dropout draws from, to store in a checkpoint."""
    return {
        "torch": torch.get_rng_state(),
        # Only when CUDA is already in use: querying it would initialise it for nothing.
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }


def restore_rng(state: Mapping[str, Any], device: torch.device) -> None:
    """Put the generators back where :func:`rng_state` found them, so a resumed run draws the
    dropout masks an uninterrupted one would have; evaluation draws nothing."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if state.get("cuda") and device.type == "cuda" and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: plain float32).

    float16 is refused off CUDA: without a loss-scaled fused kernel path it is slower than
    float32 on a CPU and its 5-bit exponent underflows small gradients; bfloat16 has float32's
    range and is the mixed precision for CPUs (and recent GPUs).
    """
    if precision == "32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type != "cuda":
        raise ConfigError(
            f"--param precision=16: float16 training needs a CUDA device (this model runs on {device.type}); "
            "use precision=bf16 for mixed precision here"
        )
    return torch.float16
