"""The optimisation options every framework plugin offers, declared once: learning-rate schedule
(warm-up, cosine or linear decay, reduce-on-plateau), numeric precision and gradient accumulation.

A model plugin adds :data:`PARAMS` to its own table and calls :func:`validate` from its own
``validate``; ``qa run --param schedule=cosine --param warmup_steps=50`` then means the same in
every framework. Each plugin implements them with its framework's own tools (a torch
``LambdaLR``, a Keras ``LearningRateSchedule``); :func:`lr_factor` is the formula both follow.
No framework is imported here.

The schedule counts *optimizer* steps (one per ``gradient_accumulation_steps`` batches) over the
run's training plan (``ModelSpec.epochs`` x ``ModelSpec.steps_per_epoch``). Step ``s`` (0-based)
trains at ``lr * lr_factor(s, ...)``:

* warm-up (``s < warmup_steps``): ``(s + 1) / warmup_steps``, so the first step already learns
  (HF Trainer's warm-up starts at 0, a wasted step) and step ``warmup_steps - 1`` reaches ``lr``;
* then, with ``p = (s - warmup_steps) / (total - warmup_steps)`` going from 0 to just below 1:
  cosine ``m + (1 - m) * (1 + cos(pi p)) / 2`` or linear ``m + (1 - m) * (1 - p)``, where
  ``m = min_lr_ratio``;
* ``plateau``: ``lr`` until the validation loss has not improved for ``plateau_patience`` epochs,
  then ``lr * plateau_factor``, and so on (Keras' ``ReduceLROnPlateau`` semantics).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from .types import Param

SCHEDULES = ("constant", "cosine", "linear", "plateau")
PRECISIONS = ("32", "bf16", "16")


def _fraction(value: float) -> str | None:
    return None if 0.0 < value < 1.0 else f"must be between 0 and 1 (exclusive), got {value}"


PARAMS: tuple[Param, ...] = (
    Param(
        "schedule",
        str,
        "constant",
        "learning-rate schedule over the run's optimizer steps: constant, warm-up then cosine or "
        "linear decay, or plateau (lower it when the validation loss stalls)",
        choices=SCHEDULES,
    ),
    Param("warmup_steps", int, 0, "optimizer steps of linear warm-up to lr (cosine, linear, constant)", minimum=0, maximum=10**9),
    Param("min_lr_ratio", float, 0.0, "cosine/linear decay ends at lr * min_lr_ratio", minimum=0.0, maximum=1.0),
    Param("plateau_factor", float, 0.5, "plateau: multiply lr by this when the validation loss stalls", check=_fraction),
    Param("plateau_patience", int, 2, "plateau: epochs without a lower validation loss before lr drops", minimum=1, maximum=10**6),
    Param(
        "precision",
        str,
        "32",
        "32 (float32), bf16 (bfloat16 mixed precision, CPU or GPU) or 16 (float16 mixed "
        "precision with loss scaling; CUDA only)",
        choices=PRECISIONS,
    ),
    Param(
        "gradient_accumulation_steps",
        int,
        1,
        "batches whose gradients are summed into one optimizer step (an effective batch of "
        "batch_size x this)",
        minimum=1,
        maximum=1024,
    ),
)

NAMES = tuple(param.name for param in PARAMS)


def validate(params: Mapping[str, Any]) -> None:
    """Cross-parameter rules; raises ValueError with the message the user sees."""
    if params["schedule"] == "plateau" and params["warmup_steps"]:
        raise ValueError(
            f"warmup_steps={params['warmup_steps']} does not combine with schedule=plateau "
            "(the plateau rule sets the learning rate from validation losses); use warmup_steps=0"
        )


def lr_factor(step: int, total: int, warmup: int, schedule: str, min_ratio: float = 0.0) -> float:
    """The multiplier of ``lr`` for optimizer step ``step`` (0-based) of ``total``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule in ("constant", "plateau") or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / (total - warmup))
    if schedule == "cosine":
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_ratio + (1.0 - min_ratio) * (1.0 - progress)


def optimizer_steps(epochs: int, steps_per_epoch: int, accumulation: int, flush_each_epoch: bool) -> int:
    """Optimizer steps in the run's plan; 0 when the plan is unknown (``qa evaluate``).

    ``flush_each_epoch``: the plugin steps on a partial group of batches at the end of every
    epoch (the torch plugin) rather than carrying it into the next (Keras' accumulation).
    """
    if epochs <= 0 or steps_per_epoch <= 0:
        return 0
    if flush_each_epoch:
        return epochs * -(-steps_per_epoch // accumulation)
    return epochs * steps_per_epoch // accumulation
