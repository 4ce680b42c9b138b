"""The ``lstm`` model plugin's hooks (entry point ``lstm = "qa_lstm_tf.plugin"``).

This module must stay cheap to import: ``qa plugins`` and ``qa --help`` load it. TensorFlow comes
in with :mod:`qa_lstm_tf.model`, which every hook below but :func:`qa_describe` imports on first
use (a second import is a dictionary lookup).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from qa_core import EncodedSplit, ModelSpec, PluginInfo, hookimpl

from .params import PARAMS

CHECKPOINT_SUFFIX = ".weights.h5"  # Keras 3 refuses any other name for a weights file


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="model",
        description="Keras LSTM (embedding with padding mask, optionally stacked and bidirectional) on TensorFlow",
        framework="tensorflow",
        params=PARAMS,
        checkpoint_suffix=CHECKPOINT_SUFFIX,
    )


@hookimpl
def qa_build(spec: ModelSpec) -> Any:
    from . import model as keras_lstm

    return keras_lstm.build(spec)


@hookimpl
def qa_train_epoch(
    model: Any, data: EncodedSplit, batch_size: int, epoch: int, on_batch: Callable[[int, Any], None]
) -> Mapping[str, float]:
    from . import model as keras_lstm

    return keras_lstm.train_epoch(model, data, batch_size, epoch, on_batch)


@hookimpl
def qa_evaluate(model: Any, data: EncodedSplit, batch_size: int) -> np.ndarray:
    from . import model as keras_lstm

    return keras_lstm.predict(model, data, batch_size)


@hookimpl
def qa_save_checkpoint(model: Any, path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> bool:
    from . import model as keras_lstm

    return keras_lstm.save(model, path, spec, meta)


@hookimpl
def qa_load_checkpoint(path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> Any:
    from . import checkpoint

    # Refuse a foreign file before paying for the TensorFlow import (h5py only).
    checkpoint.check_header(Path(path), checkpoint.read_header(Path(path)), spec)
    from . import model as keras_lstm

    return keras_lstm.load(path, spec, meta)
