"""Where the model runs: TensorFlow and Keras imported once, quietly, with the TensorFlow
backend; seeding and the random state dropout draws from; numeric precision; the
``tf.distribute`` strategy the model is built, compiled and trained under (:func:`strategy`).

TensorFlow prints start-up notices from C++ before Python gets control (oneDNN, CPU features,
CUDA not found, absl's "log messages before InitializeLog" banner) and logs at run time
(oneDNN's DT_BOOL fallback when the padding mask is applied). None of that is the user's
business unless they ask, so by default:

* ``TF_CPP_MIN_LOG_LEVEL`` is set to 3 (unless the user set it): C++ logging off. A real failure
  still reaches the user as a Python exception with TensorFlow's status message.
* While ``tensorflow`` is imported, file descriptor 2 goes to a temporary file; afterwards every
  captured line that is not a known start-up notice is written back to stderr. This is needed
  because TensorFlow 2.21 writes some notices before absl logging exists, ignoring the level.
* TensorFlow's and absl's Python loggers are turned down to errors.

``QA_TF_VERBOSE=1`` turns all of this off and shows TensorFlow exactly as it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from types import ModuleType
from typing import Any, Iterator, Sequence

from qa_core import ConfigError, Param, QAError, console

VERBOSE_ENV = "QA_TF_VERBOSE"

#: absl/glog lines at INFO or WARNING level ("I0000 00:00:1795552461.726743   7435 port.cc:153] ..."),
#: absl's banner, and the continuation line of the CPU-feature notice.
_NOISE = re.compile(
    r"^(?:[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)

_modules: tuple[ModuleType, ModuleType] | None = None


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Send fd 2 to a temporary file; replay what is not start-up noise when done."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = "".join(line for line in text.splitlines(keepends=True) if not _NOISE.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def _import() -> tuple[ModuleType, ModuleType]:
    # Keras reads its backend when first imported; this plugin is written for TensorFlow.
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"
    try:
        import tensorflow as tf
        import keras
    except ImportError as exc:
        raise QAError(
            f"the 'lstm' plugin needs TensorFlow and Keras 3 ({exc}); install one TensorFlow build: "
            "pip install 'qa-lstm-tf[cpu]' (tensorflow-cpu), '[tensorflow]' or '[gpu]'"
        ) from exc
    if keras.backend.backend() != "tensorflow":
        raise QAError(
            f"the 'lstm' plugin needs Keras' TensorFlow backend, but Keras was already imported "
            f"with the {keras.backend.backend()!r} backend (KERAS_BACKEND)"
        )
    return tf, keras


def load() -> tuple[ModuleType, ModuleType]:
    """``(tensorflow, keras)``, imported on first use with the noise rules above."""
    global _modules
    if _modules is not None:
        return _modules
    if verbose():
        _modules = _import()
        return _modules
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _filtered_stderr():
        tf, keras = _import()
    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    _modules = (tf, keras)
    return _modules


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow: the initial weights and every dropout mask follow."""
    _, keras = load()
    keras.utils.set_random_seed(seed)


def seed_generators(model: Any) -> list[Any]:
    """Every Keras ``SeedGenerator`` of ``model`` (one per dropout of each layer), in layer order.

    Keras 3's dropout is stateless random ops keyed by these generators' states, and
    ``save_weights`` leaves the states out; a checkpoint that did not store them would make a
    resumed run draw the masks of epoch 1 again.
    """
    return [generator for layer in model._flatten_layers() for generator in layer._seed_generators]


def rng_state(model: Any) -> list[Any]:
    return [generator.state.numpy() for generator in seed_generators(model)]


def restore_rng(model: Any, states: Sequence[Any]) -> None:
    generators = seed_generators(model)
    if len(states) != len(generators):
        raise ValueError(f"{len(states)} random-generator states for the model's {len(generators)}")
    for generator, state in zip(generators, states):
        generator.state.assign(state)


def dtype_policy(precision: str) -> str:
    """The Keras mixed-precision policy of ``precision``.

    float16 is refused without a GPU: TensorFlow's CPU kernels run it slower than float32 and its
    5-bit exponent underflows small gradients; bfloat16 has float32's range and runs on CPUs.
    """
    if precision == "32":
        return "float32"
    if precision == "bf16":
        return "mixed_bfloat16"
    tf, _ = load()
    if not tf.config.list_physical_devices("GPU"):
        raise ConfigError(
            "--param precision=16: float16 training needs a GPU (TensorFlow sees none here); "
            "use precision=bf16 for mixed precision here"
        )
    return "mixed_float16"


# -------------------------------------------------------------------------------------------------
# tf.distribute: one model on several devices
# -------------------------------------------------------------------------------------------------

#: Declared here (not in params.py) because they say where the model runs, not what it is: a
#: checkpoint trained under one strategy loads under any other.
STRATEGY_PARAMS: tuple[Param, ...] = (
    Param(
        "strategy",
        str,
        "none",
        "tf.distribute strategy: none (one device) or mirrored (MirroredStrategy: the model on "
        "every local device, each step's batch split between them, gradients summed)",
        choices=("none", "mirrored"),
    ),
    Param(
        "devices",
        int,
        0,
        "strategy=mirrored: how many replicas. 0 = every GPU TensorFlow sees (the CPU when there "
        "is none); N = the first N GPUs, or with no GPU the CPU split into N logical devices "
        "(same cores: for testing, not for speed)",
        minimum=0,
        maximum=64,
    ),
)


def check_strategy(params: Any) -> str | None:
    """The cross-parameter rule of :data:`STRATEGY_PARAMS` (None when they agree)."""
    strategy = params.get("strategy", "none")
    if params.get("devices", 0) and strategy == "none":
        return f"devices={params['devices']} needs strategy=mirrored (without a strategy the model runs on one device)"
    if strategy != "none" and params.get("gradient_accumulation_steps", 1) > 1:
        # Measured with Keras 3.15: its accumulation branch (ops.cond) holds a merge_call, which
        # tf.distribute refuses inside a compiled step ("merge_call called while defining a new graph").
        return (
            f"gradient_accumulation_steps={params['gradient_accumulation_steps']} does not combine with "
            f"strategy={strategy} (Keras 3 accumulates inside a conditional, where tf.distribute cannot "
            "synchronise the replicas); raise --batch-size instead"
        )
    return None


def strategy(params: Any) -> Any:
    """The ``tf.distribute`` strategy ``params`` asks for; its ``scope()`` is where the model,
    its optimizer and every variable are created. ``strategy=none`` is TensorFlow's default
    strategy (one device; its scope changes nothing).

    Call it before anything runs on TensorFlow in this process: splitting the CPU into logical
    devices is possible only before TensorFlow initialises its devices.
    """
    tf, _ = load()
    if params.get("strategy", "none") == "none":
        return tf.distribute.get_strategy()
    devices = local_devices(params.get("devices", 0))
    chosen = tf.distribute.MirroredStrategy(devices)
    line = f"lstm: MirroredStrategy, {chosen.num_replicas_in_sync} replicas ({', '.join(devices)}): each step's batch is split between them"
    if line not in _said:  # once per process (the best epoch's reload for the test split builds again)
        _said.add(line)  # TensorFlow's own "Using MirroredStrategy with devices" is an INFO log, hidden above
        console.say(line)
    return chosen


_said: set[str] = set()


def local_devices(count: int) -> list[str]:
    """The device names of ``count`` replicas on this machine (0 = all GPUs, else the CPU)."""
    tf, _ = load()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if count > len(gpus):
            raise ConfigError(f"--param devices={count}: TensorFlow sees {len(gpus)} GPU(s) here")
        return [f"/gpu:{index}" for index in range(count or len(gpus))]
    if count > 1:
        split_cpu(count)
    return [device.name for device in tf.config.list_logical_devices("CPU")][: max(count, 1)]


def split_cpu(count: int) -> None:
    """The CPU as ``count`` logical devices (``tf.config.set_logical_device_configuration``), so
    MirroredStrategy has replicas to mirror to on a machine without GPUs. They share the cores
    and TensorFlow's thread pools: the point is testing multi-device code, not speed."""
    tf, _ = load()
    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu)
    if configured is not None and len(configured) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        raise ConfigError(
            f"--param devices={count}: TensorFlow already runs on {have} CPU device(s) in this "
            "process, and the CPU can be split only before TensorFlow starts (a fresh process)"
        ) from None
