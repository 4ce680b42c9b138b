"""Fixtures test_engine.py shares: the plugin through the real plugin manager, tiny data."""

from __future__ import annotations

import pytest
from qa_core.data.generator import generate_splits
from qa_core.data.tokenizer import Vocabulary, encode
from qa_core.plugins import ModelPlugin, load_plugins

#: The encoded length of the tiny data (test_engine.TINY's max_len).
MAX_LEN = 48


@pytest.fixture(scope="session")
def lstm() -> ModelPlugin:
    """Found through its ``qa`` entry point, exactly as ``qa run --plugin lstm`` finds it."""
    return load_plugins().model("lstm")


@pytest.fixture(scope="session")
def data():
    """(vocabulary, train, val): 96 + 32 one-category stories, encoded as a run encodes them."""
    splits = generate_splits({"train": 96, "val": 32}, categories=["simple"], noun_counts=[8], seed=5)
    vocab = Vocabulary.build(splits["train"])
    train, _ = encode(splits["train"], vocab, MAX_LEN, "train")
    val, _ = encode(splits["val"], vocab, MAX_LEN, "val", train.category_names)
    return vocab, train, val
