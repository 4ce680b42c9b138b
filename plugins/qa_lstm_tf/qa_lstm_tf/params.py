"""The LSTM's hyperparameters: defaults, types and checks, with no TensorFlow import.

``qa plugins`` shows this table and ``qa run --param key=value`` sets it; the core converts each
string, applies ``minimum``/``maximum``/``choices``/``check``, then :func:`validate`, so a bad
value stops the run before any data is encoded or TensorFlow is imported.

The defaults are tuned for the generated data on a 2-core CPU (numbers and the experiments
behind them in README.md): the recurrence is sequential in ``max_len``, so the sequence length
is the main cost knob, and the reading aids (``question_first``, ``question_match``,
``conv_width``, ``embedding_scale``, ``chrono_init``) decide whether the LSTM learns the task in
five epochs or only memorises the training set.
"""

from __future__ import annotations

from typing import Any, Mapping

from qa_core import Param, training_kit

from .runtime import STRATEGY_PARAMS, check_strategy


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"


PARAMS: tuple[Param, ...] = (
    Param(
        "architecture",
        str,
        "memory",
        "memory: hops that follow the asked entity up its chain (each sentence read by a BiLSTM, "
        "the latest mention that moves the entity wins, a pointer to its new holder, container "
        "or place), then an answer MLP; plain: one LSTM over the whole row (the earlier default)",
        choices=("memory", "plain"),
    ),
    Param("hops", int, 3, "memory: links followed from the asked entity (3 = object -> container -> carrier -> place)", minimum=1, maximum=8),
    Param(
        "support_loss",
        float,
        1.0,
        "memory: weight of the attention supervision where the data names supporting sentences "
        "(each one picked by some hop, no hop reading outside them); 0 = learn from the answers "
        "alone; never used when scoring",
        minimum=0.0,
        maximum=100.0,
    ),
    Param("embedding_dim", int, 32, "width of the token embeddings", minimum=1, maximum=4096),
    Param(
        "embedding_scale",
        float,
        1.0,
        "embeddings (and question-slot vectors) start uniform in [-scale, scale]; Keras' 0.05 "
        "leaves the LSTM gates blind to their input for epochs",
        minimum=1e-4,
        maximum=10.0,
    ),
    Param(
        "question_first",
        bool,
        True,
        "plain: read the question before the story (rows rotated inside the model), so the LSTM knows "
        "what to track while it reads",
    ),
    Param(
        "question_match",
        str,
        "replace",
        "plain: story words that occur in the question get a learned vector per question position: "
        "replace their embedding with it, add it to it, or none",
        choices=("replace", "add", "none"),
    ),
    Param(
        "conv_width",
        int,
        5,
        "plain: causal convolution over this many tokens before the LSTM (residual, ReLU), so each step "
        "sees its phrase; 0 or 1 = off",
        minimum=0,
        maximum=64,
    ),
    Param("units", int, 64, "hidden units of each LSTM layer (per direction; memory: of the question and hop BiLSTMs)", minimum=1, maximum=4096),
    Param("layers", int, 1, "plain: stacked LSTM layers", minimum=1, maximum=16),
    Param("bidirectional", bool, True, "plain: read the sequence both ways (two LSTMs per layer; memory's are always)"),
    Param(
        "dropout",
        float,
        0.1,
        "dropout on each LSTM layer's inputs and before the output layer (memory: the hop BiLSTM's inputs and the answer MLP)",
        minimum=0.0,
        maximum=0.9,
    ),
    Param(
        "recurrent_dropout",
        float,
        0.0,
        "plain: dropout on the recurrent state (on a GPU it rules out the fused cuDNN kernel)",
        minimum=0.0,
        maximum=0.9,
    ),
    Param(
        "chrono_init",
        bool,
        True,
        "plain: LSTM gate biases that start out remembering over up to max_len steps (chrono init) "
        "instead of Keras' forget bias 1",
    ),
    Param("weight_decay", float, 0.0, "decoupled weight decay of Adam (AdamW's)", minimum=0.0, maximum=1.0),
    Param("lr", float, 5e-3, "Adam learning rate (qa run --lr sets it too)", maximum=10.0, check=_positive),
    Param(
        "clipnorm",
        float,
        1.0,
        "clip each gradient's norm to this value; 0 = off",
        minimum=0.0,
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
    # schedule, warmup_steps, min_lr_ratio, plateau_*, precision, gradient_accumulation_steps
    *training_kit.PARAMS,
    *STRATEGY_PARAMS,  # strategy, devices: where the model runs (runtime.py)
)

DEFAULTS: dict[str, Any] = {param.name: param.default for param in PARAMS}

#: The parameters that decide the model's weights and wiring: a checkpoint must agree on all of
#: them. (The sequence length is ``ModelSpec.max_len``, checked on its own: ``qa run --max-len``
#: overrides the ``max_len`` parameter.)
ARCHITECTURE = ("architecture", "hops", "embedding_dim", "question_first", "question_match", "conv_width", "units", "layers", "bidirectional")



def validate(params: Mapping[str, Any]) -> None:
    """Cross-parameter rules; raises ValueError with the message the user sees."""
    training_kit.validate(params)
    if problem := check_strategy(params):
        raise ValueError(problem)
    if params["precision"] == "16":
        # Only then is TensorFlow imported here: float16 needs a GPU, known before any work is done.
        from .runtime import dtype_policy

        dtype_policy("16")
