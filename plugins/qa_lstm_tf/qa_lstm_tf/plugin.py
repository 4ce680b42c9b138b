"""The ``lstm`` entry point (``lstm = "qa_lstm_tf.plugin"``): the hooks the core calls, and
nothing heavier.

This module must import without TensorFlow (``qa plugins`` describes the plugin from here), so
:func:`qa_build` and :func:`qa_load_checkpoint` import :mod:`.engine` on first call; every other
hook goes straight to a method of the handle they returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from qa_core import EncodedSplit, ModelSpec, PluginInfo, hookimpl

from .params import PARAMS, validate

CHECKPOINT_SUFFIX = ".weights.h5"  # Keras 3 refuses any other name for a weights file


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="model",
        description="Keras LSTM (embedding with padding mask, optionally stacked and bidirectional) on TensorFlow",
        framework="tensorflow",
        params=PARAMS,
        checkpoint_suffix=CHECKPOINT_SUFFIX,
        validate=validate,
    )


@hookimpl
def qa_build(spec: ModelSpec) -> Any:
    from . import engine

    return engine.build(spec)


@hookimpl
def qa_train_epoch(
    model: Any, data: EncodedSplit, batch_size: int, epoch: int, on_batch: Callable[[int, Any], None]
) -> Mapping[str, float]:
    return model.train_epoch(data, batch_size, epoch, on_batch)


@hookimpl
def qa_model_metrics(model: Any) -> Mapping[str, float]:
    return model.metrics()


@hookimpl
def qa_evaluate(model: Any, data: EncodedSplit, batch_size: int) -> np.ndarray:
    return model.evaluate(data, batch_size)


@hookimpl
def qa_save_checkpoint(model: Any, path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> bool:
    model.save(Path(path), meta)
    return True


@hookimpl
def qa_load_checkpoint(path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> Any:
    from . import checkpoint

    # Refuse a foreign file before paying for the TensorFlow import (h5py only).
    checkpoint.check_header(Path(path), checkpoint.read_header(Path(path)), spec)
    from . import engine

    return engine.load(Path(path), spec)
