"""The ``transformer`` entry point: the hooks the core calls, and nothing heavier.

This module must import without torch (``qa plugins`` describes the plugin from here), so
:func:`qa_build` and :func:`qa_load_checkpoint` import :mod:`.engine` on first call; every other
hook goes straight to a method of the handle they returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from qa_core import Batch, EncodedSplit, ModelSpec, PluginInfo, hookimpl

from .params import PARAMS, validate

CHECKPOINT_SUFFIX = ".pt"


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="model",
        description="Transformer encoder (PyTorch): embeddings + positions, masked self-attention, pooled to one logit",
        framework="torch",
        params=PARAMS,
        checkpoint_suffix=CHECKPOINT_SUFFIX,
        validate=validate,
        distributed=True,
    )


@hookimpl
def qa_build(spec: ModelSpec) -> Any:
    from . import engine

    return engine.build(spec)


@hookimpl
def qa_train_step(model: Any, batch: Batch) -> tuple[Any, Any]:
    return model.train_step(batch)


@hookimpl
def qa_model_metrics(model: Any) -> Mapping[str, float]:
    return model.metrics()


@hookimpl
def qa_all_reduce(model: Any, values: np.ndarray) -> np.ndarray:
    from . import parallel

    return parallel.all_reduce(values, model.device)


@hookimpl
def qa_evaluate(model: Any, data: EncodedSplit, batch_size: int) -> np.ndarray:
    return model.evaluate(data, batch_size)


@hookimpl
def qa_save_checkpoint(model: Any, path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> bool:
    model.save(Path(path), meta)
    return True


@hookimpl
def qa_load_checkpoint(path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> Any:
    from . import engine

    return engine.load(Path(path), spec)
