"""The story generator: a tiny simulated world, told in English, asked yes/no about.

A story is a list of *events* in a world of actors, objects, containers and places:

    move  Mary went to the kitchen.              Mary is now in the kitchen
    take  Mary picked up the apple.              the apple is now with Mary (it was in her place)
    drop  Mary dropped the apple.                the apple now lies in Mary's place
    give  Mary gave the apple to John.           the apple is now with John (they share a place)
    put   Mary put the apple in the box.         the apple is now in the box (held or at hand)

Anything an actor holds goes where the actor goes, and anything in a container goes where the
container goes. The question always has the form "Is X in the P?", and its answer is read off the
simulated state, so every label is exact by construction (the independent checker in
``tests/story_checker.py`` re-reads the English and agrees on every label).

Two difficulty axes:

* **category** changes what must be tracked. The asked entity sits at the bottom of a chain of
  containment links up to a place, and the number of links is the number of reasoning hops:
  ``simple`` asks where an actor is (actor -> place, 1 hop), ``dense`` where an object is (object
  -> carrier -> place, 2 hops, the object may have changed hands), ``superdense`` where an object
  packed in a container is (object -> container -> carrier -> place, 3 hops, the container may
  have changed hands). Denser categories also pack more events into one sentence (1, 2, 3),
  elide repeated subjects, use "it", and add more distractor events.
* **noun count** is the number of distinct nouns the story mentions, exactly
  ``count_nouns(story)``: more actors, objects and places to keep apart.

The simulated world, the category specs and the way a story is built live in
:mod:`qa_core.data.world` (events as named tuples; the twin chain that makes every place-only cue
worthless), the English in :mod:`qa_core.data.render`; this module draws the nouns, asks the
question, finds the supporting sentences, and makes cells and splits.

Every record carries ``support``: the indices (0-based, in story order) of the sentences that
decide the answer, as bAbI's supporting facts do. ``sentences=N`` tells every story of a cell in
exactly N sentences (with irrelevant round trips added), so length can be held fixed across noun
counts or varied at a fixed noun count.

Randomness is derived from a string key per (seed, split, category, noun count, block of 256
stories) through SHA-256, so adding a category or a split never changes another cell, and no
result depends on hash randomisation or set order. Exactly half of every pair of consecutive
indices is a "yes", so every cell is balanced 50/50 (off by one for an odd size).
"""

from __future__ import annotations

import hashlib
import numbers
import random
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from .lexicon import CONTAINERS, NAMES, OBJECTS, PLACES
from .records import Example
from .render import render
from .world import SPECS, Spec, StoryWriter, allocation, supporting_events

CATEGORIES: tuple[str, ...] = ("simple", "dense", "superdense")  # ordered easy -> hard
CATEGORY_DESCRIPTIONS: dict[str, str] = {
    "simple": "one event per sentence; asks where an actor is (1 hop: actor -> place)",
    "dense": "two events per sentence, objects change hands; asks where an object is "
    "(2 hops: object -> carrier -> place)",
    "superdense": "three events per sentence, 'it', containers change hands; asks where a packed "
    "object is (3 hops: object -> container -> carrier -> place)",
}
DEFAULT_NOUN_COUNTS: tuple[int, ...] = (8, 15, 30)

#: Stories generated from one random stream; generate_cell(start_index=...) skips inside a block.
BLOCK_SIZE = 256
#: Bump when a change to the generator changes its output for the same arguments.
#: 2: the twin chain (shortcut-free at every accepted noun count), ``support``, ``sentences=``.
GENERATOR_VERSION = 2
#: Draws of one story tried before a ``sentences=`` length is declared too short for the cell.
LENGTH_ATTEMPTS = 40


def max_noun_count(category: str) -> int:
    """The largest noun count the lexicon supports for ``category``."""
    return _max_noun_count(category)


def _max_noun_count(category: str, _cache: dict = {}) -> int:
    if category not in _cache:
        n = SPECS[category].min_nouns
        while allocation(category, n + 1) is not None:
            n += 1
        _cache[category] = n
    return _cache[category]


def min_noun_count(category: str) -> int:
    """The smallest noun count ``category`` can be told with shortcut-free: its chain and the
    twin chain, plus the two places the question asks about."""
    return SPECS[category].min_nouns


def _check_cell(category: str, noun_count: int, sentences: int | None = None) -> Spec:
    if category not in SPECS:
        raise ConfigError(f"unknown story category {category!r} (choose from {', '.join(CATEGORIES)})")
    if isinstance(noun_count, bool) or not isinstance(noun_count, numbers.Integral):
        raise ConfigError(f"noun count must be an integer, got {noun_count!r}")
    spec = SPECS[category]
    low, high = min_noun_count(category), max_noun_count(category)
    if noun_count < low:
        raise ConfigError(
            f"noun count {noun_count} is too small for {category} stories: they need at least {low} to be "
            f"shortcut-free (the {spec.hops}-hop chain and a twin chain of its own nouns, so that the 'yes' "
            f"and the 'no' place look alike, plus the two places)"
        )
    if noun_count > high:
        raise ConfigError(f"noun count {noun_count} is too large for {category} stories: the lexicon allows at most {high}")
    if sentences is not None and (isinstance(sentences, bool) or not isinstance(sentences, numbers.Integral) or sentences < 1):
        raise ConfigError(f"sentences must be a positive integer, got {sentences!r}")
    return spec


# ---------------------------------------------------------------------------------------------
# Blocks, cells, splits


def _block_key(seed: int, split: str, category: str, noun_count: int, block: int | str, sentences: int | None = None) -> str:
    length = "" if sentences is None else f"/s{sentences}"
    return f"qa-generator/v{GENERATOR_VERSION}/seed={seed}/split={split}/{category}/n{noun_count}{length}/block={block}"


#: One generated record before it gets its id: story, question, answer, supporting sentences.
Story = tuple[str, str, bool, tuple[int, ...]]


def _generate_block(
    spec: Spec, noun_count: int, key: str, count: int, answers: Sequence[bool] | None = None, sentences: int | None = None
) -> list[Story]:
    """The first ``count`` stories of the block named by ``key`` (each block is one stream)."""
    digest = hashlib.sha256(key.encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:16], "little"))
    rand = random.Random(int.from_bytes(digest[16:], "little")).random
    n_actors, n_objects, n_containers, n_places = allocation(spec.name, noun_count)  # type: ignore[misc]
    actors, objects = _pick(rng, NAMES, n_actors), _pick(rng, OBJECTS, n_objects)
    containers, places = _pick(rng, CONTAINERS, n_containers), _pick(rng, PLACES, n_places)
    if answers is None:
        # One yes and one no in every pair of indices, in random order: balanced cells.
        flips = (rng.random(BLOCK_SIZE // 2) < 0.5).repeat(2).tolist()
        answers = [bool(i & 1) != flip for i, flip in enumerate(flips)]
    writer = StoryWriter(spec, rand)
    length = None if sentences is None else sentences * spec.clauses
    return [_story(writer, actors[i], objects[i], containers[i], places[i], answers[i], length, noun_count) for i in range(count)]


def _story(writer: StoryWriter, actors, objects, containers, places, answer: bool, length: int | None, noun_count: int) -> Story:
    spec = writer.spec
    for _ in range(LENGTH_ATTEMPTS):
        written = writer.write(actors, objects, containers, places, length)
        if written is not None:
            break
    else:
        raise ConfigError(
            f"{spec.name} stories with {noun_count} nouns do not fit in {length // spec.clauses} sentences "  # type: ignore[operator]
            f"(every noun must be mentioned and both chains told): ask for more sentences or fewer nouns"
        )
    events, target, final, decoy = written
    asked = final if answer else decoy
    question = f"Is {target} in the {asked}?" if target[0].isupper() else f"Is the {target} in the {asked}?"
    clauses = spec.clauses
    support = tuple(sorted({index // clauses for index in supporting_events(events, target)}))
    return render(events, clauses, writer.rand), question, answer, support


def _pick(rng: np.random.Generator, words: tuple[str, ...], k: int) -> list[list[str]]:
    """For each story of a block, ``k`` distinct words in random order (the k smallest keys)."""
    if k == 0:
        return [[] for _ in range(BLOCK_SIZE)]
    keys = rng.random((BLOCK_SIZE, len(words)))
    # An object array hands back the lexicon's own str objects: no per-word conversion.
    return _LEXICON_ARRAYS[words][np.argsort(keys, axis=1)[:, :k]].tolist()


_LEXICON_ARRAYS = {words: np.array(words, dtype=object) for words in (NAMES, OBJECTS, CONTAINERS, PLACES)}


def generate_cell(
    category: str,
    noun_count: int,
    n: int,
    *,
    seed: int = 0,
    split: str = "train",
    start_index: int = 0,
    sentences: int | None = None,
) -> list[Example]:
    """Records ``start_index .. start_index + n - 1`` of one (category, noun count) cell, every
    story told in exactly ``sentences`` sentences when given.

    Deterministic: the same arguments give the same records, and a range cut into pieces gives
    the same records as the whole range.
    """
    spec = _check_cell(category, noun_count, sentences)
    if n < 0 or start_index < 0:
        raise ConfigError(f"record count and start index must be >= 0, got n={n}, start_index={start_index}")
    records: list[Example] = []
    end = start_index + n
    block = start_index // BLOCK_SIZE
    prefix = f"{split}-{category}-n{noun_count}-" + ("" if sentences is None else f"s{sentences}-")
    while block * BLOCK_SIZE < end:
        base = block * BLOCK_SIZE
        low, high = max(start_index, base), min(end, base + BLOCK_SIZE)
        key = _block_key(seed, split, category, noun_count, block, sentences)
        stories = _generate_block(spec, noun_count, key, high - base, sentences=sentences)
        for i in range(low, high):
            story, question, answer, support = stories[i - base]
            records.append(Example(f"{prefix}{i:05d}", story, question, answer, category, noun_count, support))
        block += 1
    return records


def _regenerate(example: Example, seed: int, split: str, attempt: int, sentences: int | None) -> Example:
    """A fresh story for the same record id and answer (used to remove a story seen in another split)."""
    spec = SPECS[example.category]
    key = _block_key(seed, split, example.category, example.noun_count, f"redo-{example.id}-{attempt}", sentences)
    story, question, answer, support = _generate_block(spec, example.noun_count, key, 1, [example.answer], sentences)[0]
    return Example(example.id, story, question, answer, example.category, example.noun_count, support)


def _category_order(category: str) -> tuple[int, str]:
    return (CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES), category)



def __getattr__(name: str):
    """``generate_splits`` and ``cell_stats`` live in :mod:`qa_core.data.generated_splits` (the
    splitting); they are importable from here too, resolved on first use (no import cycle)."""
    if name in ("generate_splits", "cell_stats", "_replace_seen"):
        from . import generated_splits

        return getattr(generated_splits, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
