"""Shared fixtures: the real plugin through the real plugin manager, on tiny generated data."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from qa_core import EncodedSplit, ModelSpec
from qa_core.data.generator import generate_splits
from qa_core.data.tokenizer import Vocabulary, encode
from qa_core.plugins import ModelPlugin, load_plugins

#: A model small enough that a test trains it in a fraction of a second on one CPU core.
TINY = {
    "d_model": "16",
    "heads": "2",
    "layers": "1",
    "ff_dim": "32",
    "max_len": "64",
    "dropout": "0.1",
    "lr": "0.003",
    "device": "cpu",
}


@dataclasses.dataclass
class TinyData:
    vocab: Vocabulary
    train: EncodedSplit
    val: EncodedSplit


@pytest.fixture(scope="session")
def model_plugin() -> ModelPlugin:
    """Found through its ``qa`` entry point, exactly as ``qa run --plugin transformer`` finds it."""
    return load_plugins().model("transformer")


@pytest.fixture(scope="session")
def tiny_data() -> TinyData:
    splits = generate_splits({"train": 96, "val": 48}, seed=3)
    vocab = Vocabulary.build(splits["train"])
    max_len = int(TINY["max_len"])
    train, _ = encode(splits["train"], vocab, max_len, "train")
    val, _ = encode(splits["val"], vocab, max_len, "val", train.category_names)
    return TinyData(vocab, train, val)


@pytest.fixture
def make_spec(model_plugin: ModelPlugin, tiny_data: TinyData):
    """``make_spec(seed=0, **param_overrides)``: a resolved ModelSpec for the tiny data."""

    def make(seed: int = 0, plugin: str = "transformer", vocab_hash: str | None = None, **overrides: Any) -> ModelSpec:
        params = model_plugin.resolve_params({**TINY, **{k: str(v) for k, v in overrides.items()}})
        return ModelSpec(
            plugin=plugin,
            params=params,
            vocab_size=len(tiny_data.vocab),
            max_len=params["max_len"],
            seed=seed,
            vocab_hash=tiny_data.vocab.sha256 if vocab_hash is None else vocab_hash,
            vocab=tiny_data.vocab.tokens,
        )

    return make
