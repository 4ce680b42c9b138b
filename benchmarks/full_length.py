"""10. Full-length stories: the transformer's epoch with no record cut vs the old 96-token epoch.

Three sides per architecture (``plain`` and ``memory``), each ``train_one_epoch`` with the
plugin's default model of that architecture (one torch thread) on the default data's training
rows (4,500), in the same shuffled order each round:

* ``grouped``: encoded at the length that covers the data (what ``qa run`` resolves
  ``max_len = 0`` to), rows in the order ``--group-by-length`` (the default) gives them;
* ``ungrouped``: the same length, the plain shuffle (``--no-group-by-length``);
* ``cut_96``: encoded at 96 tokens (the wave-1 default, which cut long stories), plain shuffle:
  the epoch the issue measures against.

The engine trims each batch to its longest row, so a side pays for the padding its order leaves.
All six sides alternate (the order rotates every round) after a warm-up round; each ratio is the
median of one side over the median of another from the same rounds, in wall time (the figures)
and in thread CPU time (``..._cpu``, less swayed by other processes on a shared machine). ``--quick`` trains the first
``QUICK_STEPS`` batches of each epoch's order (grouping still runs over all 4,500 rows, so the
batches are the ones a real epoch has), the full run whole epochs.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

import numpy as np

from qa_core.batching import group_by_length, padding_fraction
from qa_core.config import DEFAULT_DATA_SIZES
from qa_core.trainer import train_one_epoch

from .common import Comparison, Result, model_plugin, prepare

BATCH_SIZE = 32
OLD_MAX_LEN = 96
ARCHITECTURES = ("plain", "memory")
ORDERS = ("grouped", "ungrouped", "cut_96")
QUICK_STEPS = 20


def rotated_rounds(
    sides: Mapping[str, Callable[[], Any]], repeats: int, before: Callable[[int], None], warmup: int = 1
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall seconds, thread CPU seconds) per timed round of each side; every round starts one
    side later than the last, so no side always runs first or right after the same neighbour.
    CPU time (torch on one thread computes on the calling thread) leaves out the time the
    process waited for a core, which on a shared machine is most of the wall time's noise."""
    names = list(sides)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        before(round_index)
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start, start_cpu = time.perf_counter(), time.thread_time()
            sides[name]()
            if round_index >= warmup:
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.thread_time() - start_cpu)
    return wall, cpu


def run(quick: bool, train_rows: int | None = None, repeats: int | None = None, architectures: tuple[str, ...] = ARCHITECTURES) -> Result:
    result = Result("full_length", "10. Full-length stories: transformer epoch, no cut (grouped by length, and not) vs 96 tokens")
    plugin = model_plugin("transformer", needs="torch")
    if plugin is None:
        result.skipped = "the transformer plugin (or torch) is not installed"
        return result
    train_rows = train_rows or DEFAULT_DATA_SIZES["train"]
    repeats = repeats or (3 if quick else 5)
    steps = min(QUICK_STEPS, -(-train_rows // BATCH_SIZE)) if quick else None
    load_before = os.getloadavg()
    models: dict[str, tuple[Any, Any]] = {}
    for arch in architectures:
        for max_len, sides in ((None, ("grouped", "ungrouped")), (OLD_MAX_LEN, ("cut_96",))):
            prepared = prepare(plugin, {"threads": "1", "max_len": "0", "architecture": arch}, train_rows, 90, max_len)
            model = plugin.build(prepared.spec)
            for side in sides:
                models[f"{arch}/{side}"] = (prepared, model if side == sides[0] else plugin.build(prepared.spec))
    lengths = models[f"{architectures[0]}/grouped"][0].splits["train"].lengths
    shuffles = np.random.default_rng(1)
    orders: dict[str, np.ndarray] = {}

    def new_orders(round_index: int) -> None:
        plain = shuffles.permutation(train_rows)
        grouped = group_by_length(plain, lengths, BATCH_SIZE, seed=0, epoch=round_index + 1)
        rows = slice(None) if steps is None else slice(0, steps * BATCH_SIZE)
        orders.update(grouped=grouped[rows], ungrouped=plain[rows], cut_96=plain[rows])

    def epoch(name: str) -> Callable[[], Any]:
        prepared, model = models[name]
        side = name.split("/")[1]
        return lambda: train_one_epoch(plugin, model, prepared.splits["train"].take(orders[side]), BATCH_SIZE, 2, 2, False)

    times, cpu = rotated_rounds({name: epoch(name) for name in models}, repeats, new_orders)
    report(result, times, cpu, architectures, plugin.resolve_params({})["architecture"])
    new_orders(0)
    full = models[f"{architectures[0]}/grouped"][0]
    result.details["setup"] = {
        "train_rows": train_rows, "steps_per_epoch": steps or -(-train_rows // BATCH_SIZE), "rounds": repeats,
        "full_max_len": full.spec.max_len, "mean_tokens": float(lengths.mean()),
        "rows_longer_than_96": int((lengths > OLD_MAX_LEN).sum()),
        "padding_fraction": {side: padding_fraction(orders[side], np.minimum(lengths, OLD_MAX_LEN) if side == "cut_96" else lengths, BATCH_SIZE) for side in ORDERS},
        "params": {arch: models[f"{arch}/grouped"][0].params for arch in architectures},
        "load_average": {"before": load_before, "after": os.getloadavg()},
    }
    return result


def report(result: Result, times: dict[str, list[float]], cpu: dict[str, list[float]], architectures: tuple[str, ...], default_architecture: str) -> None:
    """Figures per architecture (wall time; ``..._cpu``: thread CPU time of the same rounds); the
    headline figure is the plugin's default architecture's."""
    for arch in architectures:
        grouped, ungrouped, cut = (f"{arch}/{side}" for side in ORDERS)
        pairs = {
            f"transformer_{arch}_full_length_epoch_ratio_vs_96_tokens": (grouped, cut),
            f"transformer_{arch}_full_length_ungrouped_epoch_ratio_vs_96_tokens": (ungrouped, cut),
            f"transformer_{arch}_full_length_grouped_vs_ungrouped": (grouped, ungrouped),
        }
        for key, (a, b) in pairs.items():
            comparison = Comparison(a, b, times[a], times[b])
            result.figures[key] = comparison.ratio
            result.details[key] = comparison.to_json()
            result.details[f"{key}_cpu"] = Comparison(a, b, cpu[a], cpu[b]).to_json()
        result.figures[f"transformer_{arch}_full_length_epoch_ratio_vs_96_tokens_cpu"] = result.details[f"transformer_{arch}_full_length_epoch_ratio_vs_96_tokens_cpu"]["ratio"]
        result.targets[f"transformer_{arch}_full_length_epoch_ratio_vs_96_tokens"] = ("<=", 1.5)
    if default_architecture in architectures:
        headline = f"transformer_{default_architecture}_full_length_epoch_ratio_vs_96_tokens"
        result.figures["transformer_full_length_epoch_ratio_vs_96_tokens"] = result.figures[headline]
        result.targets["transformer_full_length_epoch_ratio_vs_96_tokens"] = ("<=", 1.5)
        result.notes.append(f"transformer_full_length_epoch_ratio_vs_96_tokens: the default architecture ({default_architecture}), grouped by length (the default)")
    if "plain" in architectures and "memory" in architectures:
        comparison = Comparison("memory/grouped", "plain/cut_96", times["memory/grouped"], times["plain/cut_96"])
        result.figures["transformer_memory_full_length_epoch_ratio_vs_plain_96_tokens"] = comparison.ratio
        result.details["transformer_memory_full_length_epoch_ratio_vs_plain_96_tokens"] = comparison.to_json()
