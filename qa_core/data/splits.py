"""Stratified splitting: carve a slice off a set of records that looks like the whole.

The strata are the cells the metrics report on: (category, noun count, answer). Each cell is
split in the given proportion, so a validation slice taken from train keeps the mix of
categories, difficulties and yes/no answers, and every cell with at least two records appears on
both sides, so no group the metrics report on is missing from validation.

Each cell holds out the floor or the ceiling of its share (clipped to [1, n-1] for cells of two
or more, [0, 1] for singletons). Rounding every cell the same way would drift (a thousand
singletons at 0.1 would give none or all), so the cells with the largest remainders are rounded
up, largest remainder first, until the total reaches ``round(fraction * len(examples))``; ties
break at random, by ``seed``. The one-per-side rule can push the total above that target (many
cells of two at 0.05); the big cells are then left at their share rather than cut to compensate.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ConfigError
from .records import Example

CellKey = tuple[str, int, bool]


def cell_key(example: Example) -> CellKey:
    """The stratum of one record: (category, noun_count, answer)."""
    return (example.category, example.noun_count, example.answer)


def cell_codes(examples: Sequence[Example]) -> tuple[np.ndarray, list[CellKey]]:
    """Integer cell code per record (int64 [n]) and the key of each code, keys sorted."""
    if not examples:
        return np.zeros(0, dtype=np.int64), []
    categories, category_codes = np.unique([e.category for e in examples], return_inverse=True)
    columns = np.stack(
        [
            category_codes.reshape(-1),
            np.fromiter((e.noun_count for e in examples), dtype=np.int64, count=len(examples)),
            np.fromiter((e.answer for e in examples), dtype=np.int64, count=len(examples)),
        ],
        axis=1,
    )
    cells, codes = np.unique(columns, axis=0, return_inverse=True)
    keys = [(str(categories[c]), int(n), bool(a)) for c, n, a in cells]
    return codes.reshape(-1).astype(np.int64), keys


def stratified_split(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split into (rest, held_out), ``held_out`` taking ``fraction`` of every cell.

    Deterministic for a seed; both parts keep the input order; their union is the input.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"split fraction must be between 0 and 1 (exclusive), got {fraction}")
    held = stratified_mask(cell_codes(examples)[0], fraction, seed)
    return [e for e, h in zip(examples, held) if not h], [e for e, h in zip(examples, held) if h]


def stratified_mask(codes: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask [n] of the records to hold out, given each record's cell code."""
    n = len(codes)
    held = np.zeros(n, dtype=bool)
    if n == 0:
        return held
    rng = np.random.default_rng(seed)
    sizes = np.bincount(codes)
    quotas = _allocate(sizes, fraction, rng)
    # Shuffle, then group by cell keeping the shuffled order (stable sort): the first
    # quota[cell] records of each group are a random sample of that cell.
    order = rng.permutation(n)
    order = order[np.argsort(codes[order], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank_in_cell = np.arange(n) - starts[codes[order]]
    held[order] = rank_in_cell < quotas[codes[order]]
    return held


def _allocate(sizes: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """How many records of each cell to hold out (see the module docstring)."""
    total = int(sizes.sum())
    low = (sizes >= 2).astype(np.int64)  # cells of two or more: at least one on each side
    high = sizes - low
    share = sizes * fraction
    floor = np.clip(np.floor(share).astype(np.int64), low, high)
    ceil = np.clip(np.ceil(share).astype(np.int64), low, high)
    # One record held out and one kept whenever there are two to split, even if all are singletons.
    target = round(total * fraction)
    if total >= 2:
        target = min(max(target, 1), total - 1)
    # Round up the cells with the largest remainders until the total reaches the target. A cell
    # never moves further than that from its share: when the one-per-side minimum of many small
    # cells overshoots the target, the total stays above it rather than big cells being skewed.
    need = target - int(floor.sum())
    quotas = floor.copy()
    if need > 0:
        can_round_up = np.flatnonzero(ceil > floor)
        remainder = share[can_round_up] - floor[can_round_up]
        ranked = can_round_up[np.lexsort((rng.random(len(can_round_up)), -remainder))]
        quotas[ranked[:need]] += 1
    return quotas
