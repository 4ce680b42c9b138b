"""Splits of generated stories: every cell in every split, no story in two splits.

The splitting half of the generator (:mod:`qa_core.data.generator` makes cells,
:mod:`qa_core.data.world` simulates, :mod:`qa_core.data.render` tells). Both functions are
importable from :mod:`qa_core.data.generator` too.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

from ..errors import ConfigError
from .generator import BLOCK_SIZE, CATEGORIES, DEFAULT_NOUN_COUNTS, _category_order, _check_cell, _regenerate, generate_cell
from .records import Example


def generate_splits(
    sizes: Mapping[str, int],
    *,
    categories: Sequence[str] = CATEGORIES,
    noun_counts: Sequence[int] = DEFAULT_NOUN_COUNTS,
    seed: int = 0,
    per_cell: bool = False,
    progress: Callable[[int], None] | None = None,
    sentences: Sequence[int] | None = None,
) -> dict[str, list[Example]]:
    """Stratified splits: every (category, noun count) cell in every split, no story in two splits.

    With ``sentences`` (story lengths), a cell is (category, noun count, length) and every story
    of it is told in exactly that many sentences: one length holds length fixed across noun
    counts, several vary it at each noun count.

    ``sizes`` maps split name to its total record count, spread evenly over the cells (the first
    cells in category-then-noun-count order take one more when it does not divide), or with
    ``per_cell=True`` to the count *per cell*. Records come ordered by cell, then index.
    A story that also appears in an earlier split (in ``sizes`` order) is replaced by a fresh one
    with the same id and answer. ``progress(k)`` is called after each chunk of k new records.
    """
    categories = list(dict.fromkeys(categories))
    noun_counts = list(dict.fromkeys(noun_counts))
    if not categories or not noun_counts:
        raise ConfigError("need at least one category and one noun count")
    lengths: list[int | None] = list(dict.fromkeys(sentences)) if sentences else [None]
    for category in categories:
        for noun_count in noun_counts:
            for length in lengths:
                _check_cell(category, noun_count, length)
    lengths.sort(key=lambda length: length or 0)
    cells = [(c, n, s) for c in sorted(categories, key=_category_order) for n in sorted(noun_counts) for s in lengths]
    result: dict[str, list[Example]] = {}
    seen: set[str] = set()
    for split, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ConfigError(f"split {split!r}: size must be a non-negative integer, got {size!r}")
        if per_cell:
            counts = [size] * len(cells)
        else:
            share, extra = divmod(size, len(cells))
            counts = [share + (i < extra) for i in range(len(cells))]
        if min(counts) < 1:
            raise ConfigError(
                f"split {split!r} is too small: {size} record(s){' per cell' if per_cell else ''} cannot hold "
                f"one record in each of the {len(cells)} cells ({len(categories)} categories x {len(noun_counts)} noun counts"
                f"{f' x {len(lengths)} lengths' if sentences else ''})"
            )
        records: list[Example] = []
        for (category, noun_count, length), count in zip(cells, counts):
            for start in range(0, count, 4 * BLOCK_SIZE):
                chunk = generate_cell(
                    category, noun_count, min(4 * BLOCK_SIZE, count - start), seed=seed, split=split, start_index=start, sentences=length
                )
                records.extend(chunk)
                if progress is not None:
                    progress(len(chunk))
        _replace_seen(records, seen, seed, split)
        seen.update(example.story for example in records)
        result[split] = records
    return result


def _replace_seen(records: list[Example], seen: set[str], seed: int, split: str) -> None:
    """Give every record whose story is in ``seen`` a fresh story (same id, cell and answer)."""
    for i, example in enumerate(records):
        attempt = 0
        while example.story in seen:
            attempt += 1
            if attempt > 100:
                raise ConfigError(f"cannot make {example.id} differ from the stories of earlier splits")
            example = _regenerate(example, seed, split, attempt, _sentences_of(example))
        records[i] = example


def _sentences_of(example: Example) -> int | None:
    """The ``sentences=`` a generated record was made with (its id says: ``...-n8-s20-00001``)."""
    part = example.id.rsplit("-", 2)[-2]
    return int(part[1:]) if part[:1] == "s" and part[1:].isdigit() else None


def cell_stats(examples: Iterable[Example]) -> list[dict]:
    """One row per (category, noun count): count, yes, no. Sorted by category order, then noun count."""
    table: dict[tuple[str, int], list[int]] = {}
    for example in examples:
        row = table.setdefault((example.category, example.noun_count), [0, 0])
        row[0 if example.answer else 1] += 1
    return [
        {"category": category, "noun_count": noun_count, "count": yes + no, "yes": yes, "no": no}
        for (category, noun_count), (yes, no) in sorted(table.items(), key=lambda item: (_category_order(item[0][0]), item[0][1]))
    ]
