"""Nearest centroid on word presence, in numpy: a second baseline, written from docs/plugins.md.

Features: which words of the vocabulary occur in the story, and which in the question (two bags,
split at ``spec.sep_id``; padding, unknown words and the separator are no words). Training adds
each batch's features to a running sum per answer (yes / no), so an epoch's centroids are the
means of everything seen; one pass over the data is all it needs, later epochs change nothing but
the balance of a resumed count. A row's probability of "yes" compares its cosine similarity to
the two centroids: ``sigmoid(sharpness * (sim_yes - sim_no))``.

The state is two sums and two counts, so a checkpoint holds everything (no optimizer, no RNG) and
a resumed run equals an uninterrupted one exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from qa_core import Batch, CheckpointError, EncodedSplit, ModelSpec, Param, PluginInfo, hookimpl

NAME = "centroid"
FORMAT = 1


@dataclass
class CentroidModel:
    spec: ModelSpec
    #: [2, 2V] feature sums of the "no" (row 0) and "yes" (row 1) records seen so far.
    sums: np.ndarray
    #: [2] how many records each sum holds.
    counts: np.ndarray


def features(tokens: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """[n, 2V] word presence: story words in the first half, question words in the second."""
    n, vocab = tokens.shape[0], spec.vocab_size
    question = np.cumsum(tokens == spec.sep_id, axis=1) > 0
    words = ~np.isin(tokens, (spec.pad_id, spec.unk_id, spec.sep_id))
    index = tokens + question * vocab + (np.arange(n) * 2 * vocab)[:, None]
    counts = np.bincount(index[words].ravel(), minlength=n * 2 * vocab).reshape(n, 2 * vocab)
    return (counts > 0).astype(np.float32)


def probabilities(model: CentroidModel, x: np.ndarray) -> np.ndarray:
    if not model.counts.all():  # a class never seen: no opinion yet
        return np.full(len(x), 0.5, dtype=np.float32)
    centroids = model.sums / model.counts[:, None]
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-12
    rows = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    similarity = rows @ centroids.T  # [n, 2]
    margin = model.spec.params["sharpness"] * (similarity[:, 1] - similarity[:, 0])
    return (1.0 / (1.0 + np.exp(-np.clip(margin, -30, 30)))).astype(np.float32)


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="model",
        description="Nearest centroid on story and question word presence (numpy)",
        framework="numpy",
        params=(Param("sharpness", float, 20.0, "how sharply a similarity margin becomes a probability", minimum=1e-3, maximum=1e4),),
        checkpoint_suffix=".npz",
    )


@hookimpl
def qa_build(spec: ModelSpec) -> CentroidModel:
    # Nothing random: the same spec always builds the same (empty) model.
    return CentroidModel(spec, np.zeros((2, 2 * spec.vocab_size), np.float64), np.zeros(2, np.int64))


@hookimpl
def qa_train_step(model: CentroidModel, batch: Batch) -> tuple[float, int]:
    x = features(batch.tokens, model.spec)
    yes = batch.labels > 0.5
    # Loss and correct count of the predictions before this batch is added: what the model knew.
    p = np.clip(probabilities(model, x), 1e-7, 1 - 1e-7)
    loss = float(-np.mean(np.where(yes, np.log(p), np.log(1 - p))))
    correct = int(((p > 0.5) == yes).sum())
    np.add.at(model.sums, yes.astype(np.int64), x)
    model.counts += np.bincount(yes.astype(np.int64), minlength=2)
    return loss, correct


@hookimpl
def qa_evaluate(model: CentroidModel, data: EncodedSplit, batch_size: int) -> np.ndarray:
    return np.concatenate([probabilities(model, features(b.tokens, model.spec)) for b in data.batches(batch_size)] or [np.zeros(0, np.float32)])


@hookimpl
def qa_save_checkpoint(model: CentroidModel, path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> bool:
    with open(path, "wb") as handle:
        np.savez(handle, sums=model.sums, counts=model.counts, plugin=np.array(NAME), format=np.array(FORMAT), vocab_sha256=np.array(spec.vocab_hash))
    return True


@hookimpl
def qa_load_checkpoint(path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> CentroidModel:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable {NAME} checkpoint ({exc})") from None
    if str(arrays.get("plugin", "")) != NAME:
        raise CheckpointError(f"{path}: not written by the {NAME!r} plugin")
    if str(arrays.get("vocab_sha256", "")) != spec.vocab_hash:
        raise CheckpointError(f"{path}: trained with a different vocabulary")
    if arrays["sums"].shape != (2, 2 * spec.vocab_size):
        raise CheckpointError(f"{path}: centroids for a vocabulary of {arrays['sums'].shape[1] // 2}, not {spec.vocab_size}")
    return CentroidModel(spec, arrays["sums"], arrays["counts"])
