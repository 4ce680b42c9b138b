"""A bag-of-words logistic regression, in numpy: the baseline, and the example of a model plugin.

Features: for each record, which vocabulary words occur in the story and which in the question
(two separate bags, so "Is *Mary* ..." and "... *Mary* went" are different features). Model:
``p = sigmoid(x @ w + b)``, trained with Adam on binary cross-entropy, one ``qa_train_step`` per
batch. The core hands over numpy token arrays; the bag is built with one ``np.bincount`` per batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from qa_core import Batch, CheckpointError, EncodedSplit, ModelSpec, Param, PluginInfo, hookimpl

NAME = "bow"


@dataclass
class BowModel:
    spec: ModelSpec
    w: np.ndarray
    b: float = 0.0
    step: int = 0
    adam: dict[str, np.ndarray] = field(default_factory=dict)


def features(tokens: np.ndarray, spec: ModelSpec, binary: bool) -> np.ndarray:
    """[n, 2V] bag of words: story words in the first half, question words in the second."""
    n, length = tokens.shape
    vocab = spec.vocab_size
    after_sep = np.cumsum(tokens == spec.sep_id, axis=1) > 0  # True from the separator on: the question
    index = tokens + after_sep * vocab + (np.arange(n) * 2 * vocab)[:, None]
    words = ~np.isin(tokens, (spec.pad_id, spec.unk_id, spec.sep_id))  # padding and markers are no words
    counts = np.bincount(index[words].ravel(), minlength=n * 2 * vocab).reshape(n, 2 * vocab)
    x = (counts > 0) if binary else counts
    return x.astype(np.float32)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


@hookimpl
def qa_describe() -> PluginInfo:
    return PluginInfo(
        kind="model",
        description="Bag-of-words logistic regression (numpy): the baseline to beat.",
        framework="numpy",
        params=(
            Param("lr", float, 0.05, "Adam learning rate", minimum=1e-6, maximum=10.0),
            Param("l2", float, 1e-4, "L2 penalty on the weights", minimum=0.0),
            Param("binary", bool, True, "Word presence (true) or word counts (false)"),
        ),
        checkpoint_suffix=".npz",
    )


@hookimpl
def qa_build(spec: ModelSpec) -> BowModel:
    rng = np.random.default_rng(spec.seed)
    w = rng.normal(0.0, 0.01, size=2 * spec.vocab_size).astype(np.float32)
    return BowModel(spec, w, adam={"mw": np.zeros_like(w), "vw": np.zeros_like(w), "mb": np.zeros(1), "vb": np.zeros(1)})


@hookimpl
def qa_train_step(model: BowModel, batch: Batch) -> tuple[float, float]:
    params = model.spec.params
    x = features(batch.tokens, model.spec, params["binary"])
    y = batch.labels
    p = sigmoid(x @ model.w + model.b)
    error = (p - y) / len(y)
    grad_w = x.T @ error + params["l2"] * model.w
    grad_b = float(error.sum())
    model.step += 1
    beta1, beta2, eps, lr, t = 0.9, 0.999, 1e-8, params["lr"], model.step
    state = model.adam
    for name, grad in (("w", grad_w), ("b", np.array([grad_b]))):
        state["m" + name] = beta1 * state["m" + name] + (1 - beta1) * grad
        state["v" + name] = beta2 * state["v" + name] + (1 - beta2) * grad * grad
        update = lr * (state["m" + name] / (1 - beta1**t)) / (np.sqrt(state["v" + name] / (1 - beta2**t)) + eps)
        if name == "w":
            model.w = (model.w - update).astype(np.float32)
        else:
            model.b -= float(update[0])
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)))
    correct = float(((p >= 0.5) == (y >= 0.5)).sum())
    return loss, correct


@hookimpl
def qa_evaluate(model: BowModel, data: EncodedSplit, batch_size: int) -> np.ndarray:
    out = np.empty(len(data), dtype=np.float32)
    for batch in data.batches(max(batch_size, 256)):
        out[batch.start : batch.stop] = sigmoid(features(batch.tokens, model.spec, model.spec.params["binary"]) @ model.w + model.b)
    return out


@hookimpl
def qa_save_checkpoint(model: BowModel, path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> bool:
    with open(path, "wb") as handle:  # a file handle: np.savez would append ".npz" to a name
        np.savez(
            handle,
            w=model.w,
            b=np.array([model.b]),
            step=np.array([model.step]),
            **{f"adam_{k}": v for k, v in model.adam.items()},
            meta=np.array(json.dumps({**dict(meta), "plugin": NAME, "vocab_sha256": spec.vocab_hash}, default=str)),
        )
    return True


@hookimpl
def qa_load_checkpoint(path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> BowModel:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable bow checkpoint ({exc})") from None
    embedded = json.loads(str(arrays["meta"])) if "meta" in arrays else {}
    if embedded.get("plugin") != NAME:
        raise CheckpointError(f"{path}: written by plugin {embedded.get('plugin')!r}, not {NAME!r}")
    if embedded.get("vocab_sha256") != spec.vocab_hash:
        raise CheckpointError(f"{path}: trained with a different vocabulary")
    if arrays["w"].shape != (2 * spec.vocab_size,):
        raise CheckpointError(f"{path}: weights for a vocabulary of {arrays['w'].shape[0] // 2}, not {spec.vocab_size}")
    adam = {key[5:]: value for key, value in arrays.items() if key.startswith("adam_")}
    return BowModel(spec, arrays["w"], float(arrays["b"][0]), int(arrays["step"][0]), adam)
