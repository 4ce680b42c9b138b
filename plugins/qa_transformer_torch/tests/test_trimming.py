"""Each batch reaches the network cut to its longest row, in training and in evaluation (where
rows are scored shortest first), for both architectures: what makes --group-by-length pay."""

from __future__ import annotations

import numpy as np
import pytest

from qa_core.batching import group_by_length
from qa_core.testing.data import tiny_data

SMALL = {"d_model": "16", "heads": "2", "layers": "1", "ff_dim": "32", "max_len": "0", "device": "cpu", "threads": "1"}


@pytest.mark.parametrize("architecture", ["plain", "memory"])
def test_training_and_evaluation_batches_are_cut_to_their_longest_row(model_plugin, architecture):
    params = model_plugin.resolve_params({**SMALL, "architecture": architecture})
    data = tiny_data("transformer", params, batch_size=8)
    model = model_plugin.build(data.spec)
    seen: list[tuple[int, int]] = []  # (columns the network got, the longest real row)
    model.network.register_forward_pre_hook(lambda _net, args: seen.append((args[0].shape[1], int(args[1].max()))))
    train = data.splits["train"]
    order = group_by_length(np.random.default_rng(0).permutation(len(train)), train.lengths, 8, seed=0, epoch=1)
    for batch in train.take(order).batches(8):
        model_plugin.train_step(model, batch)
    assert len(seen) == train.num_batches(8) and all(width == longest for width, longest in seen)
    assert max(width for width, _ in seen) <= data.spec.max_len and min(width for width, _ in seen) < data.spec.max_len
    seen.clear()
    val = data.splits["val"].take(np.random.default_rng(1).permutation(len(data.splits["val"])))  # stored order is by cell
    model_plugin.predict(model, val, 8)
    widths = [width for width, longest in seen if width == longest]
    assert len(widths) == len(seen) == val.num_batches(8)
    assert widths == sorted(widths)  # shortest first: each batch holds rows of similar length
    assert widths[-1] == int(val.lengths.max()) and widths[0] < widths[-1]
