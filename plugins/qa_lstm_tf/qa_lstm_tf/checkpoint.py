"""The qa header of an LSTM checkpoint: written into, and checked from, the ``.weights.h5`` file.

A checkpoint is the HDF5 file Keras' ``save_weights`` writes, with this plugin's facts added as
attributes of the root group, so a lone file (without its ``.meta.json``) can be identified and
checked before any weights are read. Needs h5py only (a Keras dependency), not TensorFlow.

Root attributes (all scalars; JSON text where the value is structured):

=====================  ==========================================================================
``qa_format``          1
``qa_package``         ``"qa-lstm-tf"``: the code that wrote the file, whatever its entry-point name
``qa_plugin``          the plugin name the run used (``spec.plugin``, normally ``"lstm"``)
``qa_plugin_version``  this package's version
``qa_vocab_hash``      sha256 of the vocabulary the embeddings index
``qa_vocab_size``      rows of the embedding matrix
``qa_max_len``         encoded sequence length
``qa_params``          JSON: every hyperparameter
``qa_meta``            JSON: the core's meta (epoch, metrics, ...), for a human reading the file
``qa_train_state``     JSON: the engine's own training state (the plateau rule's best loss and count)
=====================  ==========================================================================

The group ``qa_rng`` holds one dataset per Keras ``SeedGenerator`` (the state every dropout mask
is drawn from), so a resumed run draws the masks an uninterrupted one would have. Files written
before ``qa_train_state`` and ``qa_rng`` existed still load (format 1): without them a resumed
run starts its dropout stream and plateau count afresh, as those runs did.

Keras itself stores the optimizer's state (Adam's step count and moments) in the ``optimizer``
group, so a checkpoint resumes training where it stopped; :attr:`Header.optimizer_variables`
tells the loader whether that state is there (an optimizer that never stepped has 2 variables).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np
from qa_core import CheckpointError, ModelSpec

from . import __version__
from .params import ARCHITECTURE

FORMAT = 1
PACKAGE = "qa-lstm-tf"


@dataclass(frozen=True)
class Header:
    package: str
    plugin: str
    plugin_version: str
    vocab_hash: str
    vocab_size: int
    max_len: int
    params: dict[str, Any]
    #: How many optimizer variables Keras saved (step count, learning rate, then 2 per weight).
    optimizer_variables: int
    #: The engine's training state and the seed generators' states ({} and () in older files).
    train_state: dict[str, Any]
    rng: tuple[np.ndarray, ...]


def write_header(path: Path, spec: ModelSpec, meta: Mapping[str, Any], train_state: Mapping[str, Any], rng: Sequence[np.ndarray]) -> None:
    """Add the qa attributes, the training state and the random state to a weights file Keras
    just wrote."""
    with h5py.File(path, "a") as file:
        attrs = file.attrs
        attrs["qa_format"] = FORMAT
        attrs["qa_package"] = PACKAGE
        attrs["qa_plugin"] = spec.plugin
        attrs["qa_plugin_version"] = __version__
        attrs["qa_vocab_hash"] = spec.vocab_hash
        attrs["qa_vocab_size"] = int(spec.vocab_size)
        attrs["qa_max_len"] = int(spec.max_len)
        attrs["qa_params"] = json.dumps(dict(spec.params), sort_keys=True)
        attrs["qa_meta"] = json.dumps(dict(meta), sort_keys=True, default=str)
        attrs["qa_train_state"] = json.dumps(dict(train_state), sort_keys=True)
        group = file.require_group("qa_rng")
        for index, state in enumerate(rng):
            group.create_dataset(str(index), data=state)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_header(path: Path) -> Header:
    """The qa attributes of ``path``; CheckpointError when it is not a qa LSTM checkpoint."""
    try:
        file = h5py.File(path, "r")
    except OSError as exc:
        raise CheckpointError(f"{path}: not a Keras weights file (HDF5) of the LSTM plugin: {exc}") from None
    with file:
        attrs = file.attrs
        if "qa_package" not in attrs or "qa_plugin" not in attrs:
            raise CheckpointError(f"{path}: a weights file without the qa LSTM header: not written by the 'lstm' plugin")
        try:
            fmt = int(attrs["qa_format"])
            header = Header(
                package=_text(attrs["qa_package"]),
                plugin=_text(attrs["qa_plugin"]),
                plugin_version=_text(attrs["qa_plugin_version"]),
                vocab_hash=_text(attrs["qa_vocab_hash"]),
                vocab_size=int(attrs["qa_vocab_size"]),
                max_len=int(attrs["qa_max_len"]),
                params=json.loads(_text(attrs["qa_params"])),
                optimizer_variables=len(file.get("optimizer/vars", ())),
                train_state=json.loads(_text(attrs.get("qa_train_state", "{}"))),
                rng=tuple(np.asarray(rng[str(index)]) for index in range(len(rng))) if (rng := file.get("qa_rng")) else (),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: damaged qa header ({type(exc).__name__}: {exc})") from None
    if fmt != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {fmt}, this plugin reads format {FORMAT}")
    return header


def check_header(path: Path, header: Header, spec: ModelSpec) -> None:
    """Refuse a checkpoint written by other code, for another vocabulary or other shapes."""
    if header.package != PACKAGE or header.plugin != spec.plugin:
        raise CheckpointError(
            f"{path}: written by plugin '{header.plugin}' ({header.package}), "
            f"not by this run's plugin '{spec.plugin}' ({PACKAGE})"
        )
    if spec.vocab_hash and header.vocab_hash != spec.vocab_hash:
        raise CheckpointError(
            f"{path}: vocabulary mismatch: the checkpoint was trained with vocabulary "
            f"{header.vocab_hash[:12]}, the run uses {spec.vocab_hash[:12]}"
        )
    expected = {"vocab_size": spec.vocab_size, "max_len": spec.max_len}
    expected.update({name: spec.params[name] for name in ARCHITECTURE if name in spec.params})
    found = {"vocab_size": header.vocab_size, "max_len": header.max_len}
    saved = {"architecture": "plain", **header.params}  # a file from before `architecture` holds a plain network
    found.update({name: saved[name] for name in ARCHITECTURE if name in saved})
    wrong = [f"{name}={found[name]!r} (expected {expected[name]!r})" for name in expected if name in found and found[name] != expected[name]]
    if wrong:
        raise CheckpointError(f"{path}: shape mismatch: the checkpoint has {', '.join(wrong)}")

