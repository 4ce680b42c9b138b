"""10. Full-length stories: the transformer's epoch with no record cut vs the old 96-token epoch.

Both sides are ``train_one_epoch`` with the plugin's default model (one torch thread) on the same
records in the same order: one encoded at ``max_len`` 96 (the wave-1 default, which cut long
stories), one at the length that covers the data (what ``qa run`` resolves ``max_len = 0`` to
now). Each batch is trimmed to its longest row, so the full-length side only pays for the
stories that are really longer. Alternated epochs, median ratio.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qa_core.trainer import train_one_epoch

from .common import Result, model_plugin, prepare, side_by_side

BATCH_SIZE = 32
OLD_MAX_LEN = 96


def run(quick: bool, train_rows: int | None = None, repeats: int | None = None) -> Result:
    result = Result("full_length", "10. Full-length stories: transformer epoch, no cut vs 96 tokens")
    plugin = model_plugin("transformer", needs="torch")
    if plugin is None:
        result.skipped = "the transformer plugin (or torch) is not installed"
        return result
    train_rows = train_rows or (320 if quick else 4500)
    repeats = repeats or (3 if quick else 7)
    sides: dict[str, Any] = {}
    for name, max_len in (("full", None), ("cut_96", OLD_MAX_LEN)):
        prepared = prepare(plugin, {"threads": "1", "max_len": "0"}, train_rows, 90, max_len)
        sides[name] = (prepared, plugin.build(prepared.spec))
    order = np.random.default_rng(1)
    state: dict[str, Any] = {}

    def new_order(round_index: int) -> None:
        state["order"] = order.permutation(train_rows)

    def epoch(name: str) -> Any:
        prepared, model = sides[name]
        return lambda: train_one_epoch(plugin, model, prepared.splits["train"].take(state["order"]), BATCH_SIZE, 2, 2, False)

    comparison = side_by_side({"full": epoch("full"), "cut_96": epoch("cut_96")}, repeats=repeats, before=new_order)
    result.figures["transformer_full_length_epoch_ratio_vs_96_tokens"] = comparison.ratio
    result.targets["transformer_full_length_epoch_ratio_vs_96_tokens"] = ("<=", 1.5)
    full = sides["full"][0]
    result.details["epoch"] = comparison.to_json()
    result.details["setup"] = {
        "train_rows": train_rows, "full_max_len": full.spec.max_len, "mean_tokens": float(full.splits["train"].lengths.mean()),
        "rows_longer_than_96": int((full.splits["train"].lengths > OLD_MAX_LEN).sum()), "params": full.params,
    }
    return result
