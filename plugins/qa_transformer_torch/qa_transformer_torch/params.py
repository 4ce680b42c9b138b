"""The transformer's hyperparameters: defaults, types and checks, with no torch import.

``qa plugins`` shows this table and ``qa run --param key=value`` sets it; the core converts each
string, applies ``minimum``/``maximum``/``choices``/``check`` and then :func:`validate` for the
rules that involve two parameters, so a bad value stops the run before any data is encoded or
any model is built.

The defaults (measurements in README.md): the memory network (3 hops following the asked entity
word by word) with attention supervision (``support_loss``), whole stories encoded
(``max_len=0``), a 2-layer, 64-wide sentence encoder. For ``architecture=plain``: the question-match feature, a 9-wide convolutional position
encoding and a distance bias, which together turn a model that memorises into one that learns the
simple category in 2-4 epochs.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from qa_core import Param, training_kit

# "auto", "cpu", "mps", "cuda" or "cuda:<index>"; availability is checked when the model is built.
_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")

POOLINGS = ("last", "mean", "cls")

#: memory: sentences encoded one by one, hops following the asked entity (network.EntityHops);
#: plain: the original Transformer encoder over the whole row, pooled (network.QATransformer).
ARCHITECTURES = ("plain", "memory")


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"


def _odd_or_zero(value: int) -> str | None:
    # An even kernel cannot be centred: the output would be one step longer than the input.
    return None if value == 0 or value % 2 == 1 else f"must be odd (or 0 for off), got {value}"


def _device(value: str) -> str | None:
    if _DEVICE.fullmatch(value.strip().lower()):
        return None
    return f"expected auto, cpu, mps, cuda or cuda:<index>, got {value!r}"


PARAMS: tuple[Param, ...] = (
    Param(
        "architecture",
        str,
        "memory",
        "memory: each sentence encoded on its own, then hops that follow the asked entity to its "
        "holder, container and place, the most recent mention winning, attention supervised by "
        "the data's supporting sentences; plain: the original Transformer encoder over the whole "
        "row, pooled (README.md compares them)",
        choices=ARCHITECTURES,
    ),
    Param("hops", int, 3, "memory: links followed from the asked entity (3 = object -> container -> carrier -> place)", minimum=1, maximum=16),
    Param(
        "support_loss",
        float,
        1.0,
        "memory: weight of the attention supervision added to the loss while training, where the "
        "data names each answer's supporting sentences (each hop should read a supporting sentence, "
        "each supporting sentence some hop); 0 turns it off; never used when scoring",
        minimum=0.0,
        maximum=100.0,
    ),
    Param("d_model", int, 64, "width of the token embeddings and of every encoder layer", minimum=8, maximum=4096),
    Param("heads", int, 4, "attention heads per layer; must divide d_model", minimum=1, maximum=256),
    Param("layers", int, 2, "encoder layers", minimum=1, maximum=48),
    Param("ff_dim", int, 128, "hidden width of each layer's feed-forward block", minimum=1, maximum=65536),
    Param(
        "dropout",
        float,
        0.0,
        "dropout in attention, feed-forward and embeddings (off by default: in a 5-epoch run it "
        "slows learning more than it prevents overfitting; try 0.1 for long runs)",
        minimum=0.0,
        maximum=0.9,
    ),
    Param(
        "max_len",
        int,
        0,
        "tokens per example (story, SEP, question); 0 = cover the data (the longest record); "
        "a shorter one drops the start of longer stories, and the run counts what that cost",
        minimum=0,
        check=lambda value: None if value == 0 or value >= 4 else "must be >= 4 (or 0: cover the data)",
        maximum=4096,
    ),
    Param(
        "pooling",
        str,
        "last",
        "how the encoder's outputs become one vector: the last token (it ends the question), "
        "the mean over real tokens, or a prepended CLS token",
        choices=POOLINGS,
    ),
    Param(
        "question_match",
        bool,
        True,
        "add a learned vector to each token saying which question word it repeats (an exact-match feature)",
    ),
    Param(
        "conv_kernel",
        int,
        9,
        "width of the convolutional position encoding over the embeddings (odd); 0 turns it off",
        minimum=0,
        maximum=63,
        check=_odd_or_zero,
    ),
    Param(
        "distance_bias",
        float,
        0.05,
        "attention logits lose this much per token of distance (ALiBi-like prior toward a "
        "token's own sentence and recent ones); 0 turns it off",
        minimum=0.0,
        maximum=10.0,
    ),
    Param(
        "lr",
        float,
        2e-3,
        "Adam learning rate (qa run --lr sets it too; the plain encoder's measurements in README.md used 1e-3)",
        check=_positive,
    ),
    Param(
        "weight_decay",
        float,
        0.0,
        "decoupled weight decay; > 0 switches the optimizer from Adam to AdamW",
        minimum=0.0,
        maximum=1.0,
    ),
    Param("grad_clip", float, 1.0, "clip the global gradient norm to this value; 0 turns clipping off", minimum=0.0),
    Param("device", str, "auto", "auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:<index> or mps", check=_device),
    Param("threads", int, 0, "CPU threads for torch; 0 = the cores this process may use", minimum=0, maximum=1024),
    # schedule, warmup_steps, min_lr_ratio, plateau_*, precision, gradient_accumulation_steps
    *training_kit.PARAMS,
)

DEFAULTS: dict[str, Any] = {param.name: param.default for param in PARAMS}

#: The parameters that decide the shapes of the weights: a checkpoint must agree on all of them.
ARCHITECTURE = ("architecture", "hops", "d_model", "heads", "layers", "ff_dim", "max_len", "pooling", "question_match", "conv_kernel")


def validate(params: Mapping[str, Any]) -> None:
    """Cross-parameter rules; raises ValueError with the message the user sees."""
    training_kit.validate(params)
    if params["precision"] == "16":
        # Only then is torch imported here: float16 needs CUDA, known before any work is done.
        from .runtime import autocast_dtype, resolve_device

        autocast_dtype("16", resolve_device(params["device"]))
    d_model, heads = params["d_model"], params["heads"]
    if d_model % heads:
        divisors = [h for h in range(1, min(d_model, 16) + 1) if d_model % h == 0]
        raise ValueError(
            f"heads={heads} must divide d_model={d_model} (each head is d_model/heads wide); "
            f"heads that fit: {', '.join(map(str, divisors))}"
        )
