"""The ``.pt`` checkpoint file format: one ``torch.save``d dict of plain values and tensors.

This module knows the file only (write, read safely, check against a spec); what goes into the
engine's part of it and back into a model is :mod:`.engine`'s business.

Layout (``format`` 1)::

    {"format": 1, "package": "qa-transformer-torch", "plugin": "transformer",
     "plugin_version": "0.1.0", "torch_version": "2.13.0+cpu",
     "vocab_hash": "<sha256>", "vocab_size": 412, "max_len": 96, "pad_id": 0,
     "params": {"d_model": 64, ...}, "epoch": 3, "metrics": {...},
     "model": <state_dict>, "optimizer": <state_dict>,
     "scheduler": <state_dict> | None, "scaler": <state_dict> | None,
     "rng": {"torch": <ByteTensor>, "cuda": [<ByteTensor>, ...]}}

``scheduler`` (the learning-rate schedule's position) and ``scaler`` (float16's loss scale) came
with the training kit; a file written before them has neither and loads as "no schedule state",
which is exactly what its run had.

It is read back with ``torch.load(weights_only=True)``, which unpickles nothing but containers,
numbers, strings and tensors, so a checkpoint can never run code. Loading checks the file's own
record (plugin, vocabulary hash, vocabulary size, sequence length, architecture) against the spec
and refuses a mismatch with a :class:`~qa_core.CheckpointError` before touching any weights.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch

from qa_core import CheckpointError, ModelSpec

from . import __version__
from .params import ARCHITECTURE

FORMAT = 1
PACKAGE = "qa-transformer-torch"


def write(path: Path, spec: ModelSpec, meta: Mapping[str, Any], state: Mapping[str, Any]) -> None:
    """Write the record of ``spec`` and ``meta`` with the engine's ``state`` (model, optimizer,
    scheduler, scaler, rng) into one ``.pt`` file."""
    record = {
        "format": FORMAT,
        "package": PACKAGE,
        "plugin": spec.plugin,
        "plugin_version": __version__,
        "torch_version": str(torch.__version__),  # TorchVersion is a class weights_only refuses
        "vocab_hash": spec.vocab_hash,
        "vocab_size": spec.vocab_size,
        "max_len": spec.max_len,
        "pad_id": spec.pad_id,
        "params": plain(dict(spec.params)),
        "epoch": int(meta.get("epoch") or 0),
        "metrics": plain(dict(meta.get("metrics") or {})),
        **state,
    }
    torch.save(record, path)


def plain(value: Any) -> Any:
    """Builtin types only: a numpy float or a str subclass in the record would make the file
    unreadable by ``weights_only=True``, which allows containers, numbers, strings and tensors."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if value is None:
        return None
    for kind in (bool, int, float, str):  # bool first: it is an int
        if isinstance(value, kind):
            return kind(value)  # np.float64 is a float subclass; this makes it a float
    if hasattr(value, "item"):  # other numpy scalars
        return value.item()
    return str(value)


def read(path: Path) -> dict[str, Any]:
    """Load the file safely; every way it can fail becomes one CheckpointError line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused: holds Python objects beyond plain values and tensors ({_unpickler_reason(exc)}); "
            "a qa checkpoint never does, and loading it could run code"
        ) from None
    except Exception as exc:  # noqa: BLE001 - truncated zip, not a torch file at all, ...
        raise CheckpointError(f"{path}: unreadable torch checkpoint (truncated or not a .pt file): {exc}") from None
    if not isinstance(state, dict) or "format" not in state or "plugin" not in state:
        raise CheckpointError(f"{path}: not a qa checkpoint (no format/plugin record; a bare state_dict?)")
    return state


def _unpickler_reason(exc: Exception) -> str:
    """The one informative line of torch's long weights_only message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = next((line for line in lines if "WeightsUnpickler error" in line), lines[-1] if lines else type(exc).__name__)
    return reason.replace("WeightsUnpickler error: ", "").split(". Please use")[0]


def legacy_spec(state: dict[str, Any], spec: ModelSpec) -> ModelSpec:
    """A file written before ``architecture`` existed holds the plain encoder: say so in its
    record and in the spec the model is rebuilt from (today's default would be the memory
    network, whose weights it does not have)."""
    saved = state.get("params")
    if not isinstance(saved, dict) or "architecture" in saved:
        return spec
    state["params"] = {**saved, "architecture": "plain", "hops": spec.params.get("hops")}
    return dataclasses.replace(spec, params={**spec.params, "architecture": "plain"})


def check(state: Mapping[str, Any], path: Path, spec: ModelSpec) -> None:
    """Refuse a file written by another plugin, for another vocabulary or another shape."""
    if state["plugin"] != spec.plugin or state.get("package") != PACKAGE:
        raise CheckpointError(
            f"{path}: written by plugin '{state['plugin']}' ({state.get('package', '?')}), "
            f"not by '{spec.plugin}' ({PACKAGE}); load it with --plugin {state['plugin']}"
        )
    if state["format"] != FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {state['format']} is not {FORMAT}; "
            f"it was written by {PACKAGE} {state.get('plugin_version', '?')}, this is {__version__}"
        )
    if state.get("vocab_hash") != spec.vocab_hash:
        raise CheckpointError(
            f"{path}: vocabulary mismatch: the checkpoint was trained with vocabulary "
            f"{str(state.get('vocab_hash'))[:12]}..., the data is encoded with {spec.vocab_hash[:12]}...; "
            "use the run's own vocab.json"
        )
    expected = {"vocab_size": spec.vocab_size, "max_len": spec.max_len, "pad_id": spec.pad_id}
    expected.update({name: spec.params.get(name) for name in ARCHITECTURE})
    found = {name: state["params"].get(name) for name in ARCHITECTURE}
    found.update({name: state.get(name) for name in ("vocab_size", "max_len", "pad_id")})
    different = [f"{name}={found[name]!r} (expected {value!r})" for name, value in expected.items() if found[name] != value]
    if different:
        raise CheckpointError(f"{path}: shape mismatch: checkpoint has {', '.join(different)}")
