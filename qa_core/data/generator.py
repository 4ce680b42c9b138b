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

How a story is built (all in :class:`_StoryWriter`): the *chain* thread is the events that
decide the answer, written for the category (e.g. Mary picks up the apple, walks through two
places, gives it to John, John walks on); every other actor gets a *distractor* thread of its own
moves, takes, drops and puts, on objects nobody else touches. The threads are then interleaved at
random, keeping each thread's order, in short runs so one actor often does two things in a row.
Because the distractor threads never touch the chain's actors or objects, replaying the chain
thread gives exactly the asked entity's history in the full story; the checker replays the full
story. The story is written *before* the answer is drawn, so nothing in the story differs between
yes and no questions: a "yes" asks the entity's final place, a "no" a place the entity really was
at earlier (a hard negative), so "was this place ever mentioned with this entity" is worthless.

Randomness is derived from a string key per (seed, split, category, noun count, block of 256
stories) through SHA-256, so adding a category or a split never changes another cell, and no
result depends on hash randomisation or set order. Exactly half of every pair of consecutive
indices is a "yes", so every cell is balanced 50/50 (off by one for an odd size).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .lexicon import CONTAINERS, NAMES, OBJECTS, PLACES
from .records import Example

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
GENERATOR_VERSION = 1

# Event kinds. An event is a tuple: (MOVE, actor, place), (TAKE, actor, thing),
# (DROP, actor, thing), (GIVE, actor, thing, receiver), (PUT, actor, thing, container).
MOVE, TAKE, DROP, GIVE, PUT = range(5)

# Verb phrases, each ending where the noun goes. "it" forms are used in superdense stories when
# the thing is the last object or container mentioned earlier in the same sentence.
_MOVE = ("went to the ", "moved to the ", "travelled to the ", "journeyed to the ", "walked to the ", "ran to the ")
_TAKE = ("picked up the ", "took the ", "grabbed the ", "got the ")
_TAKE_IT = ("picked it up", "took it", "grabbed it", "got it")
_DROP = ("dropped the ", "put down the ", "discarded the ", "set down the ")
_DROP_IT = ("dropped it", "put it down", "discarded it", "set it down")
_GIVE = ("gave the ", "handed the ", "passed the ")
_GIVE_IT = ("gave it to ", "handed it to ", "passed it to ")
_PUT = ("put the ", "placed the ")
_PUT_IT = ("put it", "placed it")
_INTO = (" in the ", " into the ")


@dataclass(frozen=True)
class _Spec:
    """What a category changes. Shares are fractions of the noun count given to each kind."""

    name: str
    hops: int
    min_nouns: int  # the chain's own nouns plus a second place for the hard negative
    clauses: int  # events told per sentence
    run: int  # longest run of one thread's events kept adjacent when interleaving
    pronouns: bool
    actor_share: float
    place_share: float
    container_share: float
    chain_moves: int  # most extra moves a chain actor makes at each stage
    extra_moves: float  # expected extra moves of each distractor actor
    wander_rate: float  # chance a distractor moves on before taking its next thing
    drop_rate: float
    put_rate: float
    echo_rate: float  # chance a distractor's free move goes to a place the asked entity has been


_SPECS = {
    spec.name: spec
    for spec in (
        _Spec("simple", 1, 3, 1, 1, False, 0.35, 0.30, 0.0, 2, 0.3, 0.3, 0.3, 0.0, 0.3),
        _Spec("dense", 2, 4, 2, 2, False, 0.35, 0.30, 0.0, 2, 0.8, 0.4, 0.4, 0.0, 0.3),
        _Spec("superdense", 3, 5, 3, 3, True, 0.35, 0.28, 0.10, 2, 1.2, 0.5, 0.35, 0.7, 0.3),
    )
}


@lru_cache(maxsize=None)
def _allocation(category: str, noun_count: int) -> tuple[int, int, int, int] | None:
    """(actors, objects, containers, places) summing to noun_count, or None if impossible."""
    spec = _SPECS[category]
    if noun_count < spec.min_nouns:
        return None
    containers = max(1, int(spec.container_share * noun_count + 0.5)) if spec.hops >= 3 else 0
    places = max(2, int(spec.place_share * noun_count + 0.5))
    actors = max(1, int(spec.actor_share * noun_count + 0.5))
    min_objects = 0 if spec.hops == 1 else 1
    # Small counts: give up actors first, then places, then containers, down to their minimums.
    while noun_count - actors - places - containers < min_objects:
        if actors > 1:
            actors -= 1
        elif places > 2:
            places -= 1
        elif containers > 1:
            containers -= 1
        else:
            return None
    objects = noun_count - actors - places - containers
    if actors > len(NAMES) or objects > len(OBJECTS) or containers > len(CONTAINERS) or places > len(PLACES):
        return None
    return actors, objects, containers, places


@lru_cache(maxsize=None)
def max_noun_count(category: str) -> int:
    """The largest noun count the lexicon supports for ``category``."""
    n = _SPECS[category].min_nouns
    while _allocation(category, n + 1) is not None:
        n += 1
    return n


def min_noun_count(category: str) -> int:
    """The smallest noun count ``category`` can be told with (its chain plus a second place)."""
    return _SPECS[category].min_nouns


def _check_cell(category: str, noun_count: int) -> _Spec:
    if category not in _SPECS:
        raise ConfigError(f"unknown story category {category!r} (choose from {', '.join(CATEGORIES)})")
    if isinstance(noun_count, bool) or not isinstance(noun_count, int):
        raise ConfigError(f"noun count must be an integer, got {noun_count!r}")
    low, high = min_noun_count(category), max_noun_count(category)
    if noun_count < low:
        raise ConfigError(
            f"noun count {noun_count} is too small for {category} stories: they need at least {low} "
            f"({_SPECS[category].hops}-hop chain plus a second place for the 'no' answers)"
        )
    if noun_count > high:
        raise ConfigError(f"noun count {noun_count} is too large for {category} stories: the lexicon allows at most {high}")
    return _SPECS[category]


# ---------------------------------------------------------------------------------------------
# One story


class _StoryWriter:
    """Writes the stories of one block: one random stream, one category, one noun count."""

    def __init__(self, spec: _Spec, rand: Callable[[], float]):
        self.spec = spec
        self.rand = rand

    # -- small steps, each appending one event to a thread and updating `loc` -----------------

    def move(self, thread: list, actor: str, loc: dict, places: list, visited: set) -> None:
        """Send ``actor`` somewhere it is not."""
        rand = self.rand
        here = loc.get(actor)
        n = len(places)
        place = places[int(rand() * n)]
        while place == here:
            place = places[int(rand() * n)]
        loc[actor] = place
        visited.add(place)
        thread.append((MOVE, actor, place))

    def moves(self, thread: list, actor: str, count: int, loc: dict, places: list, visited: set) -> None:
        for _ in range(count):
            self.move(thread, actor, loc, places, visited)

    def up_to(self, most: int) -> int:
        """A number of extra moves, 0..most."""
        return int(self.rand() * (most + 1))

    # -- the chain: the events the answer depends on -----------------------------------------

    def chain_simple(self, actors, loc, places, visited) -> tuple[list, str, list]:
        """Mary walks through 2+ places; asked where she is."""
        chain: list = []
        mary = actors[0]
        self.moves(chain, mary, 2 + self.up_to(self.spec.chain_moves), loc, places, visited)
        return chain, mary, [mary]

    def chain_dense(self, actors, objects, loc, places, visited) -> tuple[list, str, list]:
        """The apple is carried, maybe handed over (give, or drop and pick up); asked where it is."""
        rand, most = self.rand, self.spec.chain_moves
        chain: list = []
        apple = objects[0]
        carrier = actors[0]
        if len(actors) < 2 or rand() < 0.34:
            self.moves(chain, carrier, 1 + self.up_to(most), loc, places, visited)
            chain.append((TAKE, carrier, apple))
            self.moves(chain, carrier, self.up_to(most), loc, places, visited)
            return chain, apple, [carrier]
        first = actors[1]
        self.moves(chain, first, 1 + self.up_to(most), loc, places, visited)
        chain.append((TAKE, first, apple))
        self.moves(chain, first, self.up_to(most), loc, places, visited)
        self.hand_over(chain, first, carrier, apple, loc, places, visited)
        self.moves(chain, carrier, self.up_to(most), loc, places, visited)
        self.moves(chain, first, self.up_to(1), loc, places, visited)  # the giver walks on: a trap
        return chain, apple, [carrier, first]

    def chain_superdense(self, actors, objects, containers, loc, places, visited) -> tuple[list, str, list]:
        """The apple is packed into the box, the box is carried and maybe handed over."""
        rand, most = self.rand, self.spec.chain_moves
        chain: list = []
        apple, box = objects[0], containers[0]
        carrier = actors[0]
        packer = carrier if len(actors) < 2 or rand() < 0.34 else actors[1]
        self.moves(chain, packer, 1 + self.up_to(most), loc, places, visited)
        first, second = (apple, box) if rand() < 0.5 else (box, apple)
        chain.append((TAKE, packer, first))
        self.moves(chain, packer, self.up_to(1), loc, places, visited)
        chain.append((TAKE, packer, second))
        self.moves(chain, packer, self.up_to(1), loc, places, visited)
        chain.append((PUT, packer, apple, box))
        self.moves(chain, packer, self.up_to(most), loc, places, visited)
        if packer != carrier:
            self.hand_over(chain, packer, carrier, box, loc, places, visited)
            self.moves(chain, carrier, self.up_to(most), loc, places, visited)
            self.moves(chain, packer, self.up_to(1), loc, places, visited)
        return chain, apple, [carrier] if packer == carrier else [carrier, packer]

    def hand_over(self, chain, giver, receiver, thing, loc, places, visited) -> None:
        """``receiver`` comes to ``giver``'s place and gets ``thing``: by give, or drop and take."""
        rand = self.rand
        self.moves(chain, receiver, self.up_to(1), loc, places, visited)  # somewhere else first
        there = loc[giver]
        if rand() < 0.5:
            if loc.get(receiver) != there:
                loc[receiver] = there
                chain.append((MOVE, receiver, there))
            chain.append((GIVE, giver, thing, receiver))
        else:
            # drop, then the receiver arrives (or was already there) and picks it up
            arrive_first = rand() < 0.5
            if arrive_first and loc.get(receiver) != there:
                loc[receiver] = there
                chain.append((MOVE, receiver, there))
            chain.append((DROP, giver, thing))
            if loc.get(receiver) != there:
                loc[receiver] = there
                chain.append((MOVE, receiver, there))
            chain.append((TAKE, receiver, thing))

    # -- distractors -------------------------------------------------------------------------

    def distractor(self, actor, things, loc, places, visited, pending, echo, containers) -> list:
        """One actor's own errands: moves, takes of its own things, a put, a drop."""
        rand, spec = self.rand, self.spec
        thread: list = []
        self.arrive(thread, actor, loc, places, visited, pending, echo)
        held_objects: list = []
        held_containers: list = []
        for thing in things:
            if rand() < spec.wander_rate:
                self.arrive(thread, actor, loc, places, visited, pending, echo)
            thread.append((TAKE, actor, thing))
            (held_containers if thing in containers else held_objects).append(thing)
        if held_objects and held_containers and rand() < spec.put_rate:
            thing = held_objects.pop(int(rand() * len(held_objects)))
            thread.append((PUT, actor, thing, held_containers[int(rand() * len(held_containers))]))
        held = held_objects + held_containers
        if held and rand() < spec.drop_rate:
            if rand() < 0.5:
                self.arrive(thread, actor, loc, places, visited, pending, echo)
            thread.append((DROP, actor, held[int(rand() * len(held))]))
        for _ in range(int(spec.extra_moves + rand())):
            self.arrive(thread, actor, loc, places, visited, pending, echo)
        return thread

    def arrive(self, thread, actor, loc, places, visited, pending: list, echo: list) -> None:
        """Move: first to places nobody has visited (each must be mentioned), often to ``echo``."""
        while pending and pending[-1] in visited:
            pending.pop()
        if pending:
            place = pending.pop()
        elif echo and self.rand() < self.spec.echo_rate:
            place = echo[int(self.rand() * len(echo))]
            if place == loc.get(actor):
                self.move(thread, actor, loc, places, visited)
                return
        else:
            self.move(thread, actor, loc, places, visited)
            return
        loc[actor] = place
        visited.add(place)
        thread.append((MOVE, actor, place))

    def add_errands(self, chain: list, actor: str, things: list) -> None:
        """Slot a chain actor's own (irrelevant) takes and drops in after its first move."""
        rand = self.rand
        first = next(i for i, event in enumerate(chain) if event[0] == MOVE and event[1] == actor)
        for thing in things:
            at = first + 1 + int(rand() * (len(chain) - first))
            chain.insert(at, (TAKE, actor, thing))
            if rand() < self.spec.drop_rate:
                chain.insert(at + 1 + int(rand() * (len(chain) - at)), (DROP, actor, thing))

    # -- the whole story ---------------------------------------------------------------------

    def write(self, actors: list, objects: list, containers: list, places: list, answer: bool) -> tuple[str, str, bool]:
        rand, spec = self.rand, self.spec
        loc: dict = {}
        visited: set = set()
        if spec.hops == 1:
            chain, target, chain_actors = self.chain_simple(actors, loc, places, visited)
        elif spec.hops == 2:
            chain, target, chain_actors = self.chain_dense(actors, objects, loc, places, visited)
        else:
            chain, target, chain_actors = self.chain_superdense(actors, objects, containers, loc, places, visited)

        history, _ = _place_history(chain, target)
        if len(set(history)) < 2:
            # The thing never left its first place: its carrier walks on, so a hard "no" exists.
            self.move(chain, chain_actors[0], loc, places, visited)
        # The "no" question will ask the decoy, a place the asked entity really left. Chosen now,
        # before the answer is known, so the story is the same whichever is asked.
        history, _ = _place_history(chain, target)
        final = history[-1]
        earlier = [place for place in dict.fromkeys(history) if place != final]
        decoy = earlier[int(rand() * len(earlier))]
        echo = [final, *earlier] if spec.echo_rate else []

        # One distractor (when there is one) is the mirror: it only walks the asked entity's way
        # backwards, to the final place and then to the decoy, timed below so that place-only
        # cues (which of the two was mentioned last, or more often) say nothing.
        others = [actor for actor in actors if actor not in chain_actors]
        mirror = others.pop(0) if others else None
        workers = chain_actors + others

        # Every other object and container belongs to one actor, chosen at random.
        owned: dict = {actor: [] for actor in workers}
        n_workers = len(workers)
        for thing in objects[1:] if spec.hops > 1 else objects:
            owned[workers[int(rand() * n_workers)]].append(thing)
        for thing in containers[1:]:
            owned[workers[int(rand() * n_workers)]].append(thing)

        pending = [place for place in places if place not in visited]
        container_set = frozenset(containers)
        threads = [chain]
        for actor in others:
            threads.append(self.distractor(actor, owned[actor], loc, places, visited, pending, echo, container_set))
        unvisited = [place for place in pending if place not in visited]
        if unvisited:
            # Only when nobody else is around: the chain's first actor saw those places first.
            first_actor = chain[0][1]
            chain[:0] = [(MOVE, first_actor, place) for place in unvisited]
        for actor in chain_actors:
            if owned[actor]:
                self.add_errands(chain, actor, owned[actor])

        history, settled = _place_history(chain, target)
        final = history[-1]
        asked = final if answer else decoy
        events, chain_at = self.interleave(threads)
        if mirror is not None:
            # The mirror's two moves both come after, or both before (coin flip), the moment the
            # asked entity reaches its final place, at random points of that side.
            at = chain_at[settled]
            if rand() < 0.5:
                to_decoy = at + 1 + int(rand() * (len(events) - at))
                to_final = at + 1 + int(rand() * (to_decoy - at))
            else:
                to_decoy = int(rand() * (at + 1))
                to_final = int(rand() * (to_decoy + 1))
            events.insert(to_decoy, (MOVE, mirror, decoy))
            events.insert(to_final, (MOVE, mirror, final))
            self.even_out(events, final, decoy, [mirror, *others])
        label = asked == final
        story = self.render(events)
        if target[0].isupper():
            question = f"Is {target} in the {asked}?"
        else:
            question = f"Is the {target} in the {asked}?"
        return story, question, label

    def even_out(self, events: list, final: str, decoy: str, movers: list) -> None:
        """Add distractor visits until the final place and the decoy are mentioned equally often.

        Each visit goes to a random distractor at a random point of its own timeline where it
        neither comes from nor goes next to that place (no "went to the X" twice in a row).
        """
        rand = self.rand
        gap = 0
        for event in events:
            if event[0] == MOVE:
                gap += (event[2] == final) - (event[2] == decoy)
        attempts = 4 * abs(gap) + 4
        while gap and attempts:
            attempts -= 1
            place = decoy if gap > 0 else final
            actor = movers[int(rand() * len(movers))]
            own = [i for i, event in enumerate(events) if event[1] == actor]
            slot = int(rand() * (len(own) + 1))  # before own[slot]
            before = next((events[i][2] for i in reversed(own[:slot]) if events[i][0] == MOVE), None)
            after = next((events[i][2] for i in own[slot:] if events[i][0] == MOVE), None)
            if place in (before, after):
                continue
            low = own[slot - 1] + 1 if slot else 0
            high = own[slot] if slot < len(own) else len(events)
            events.insert(low + int(rand() * (high - low + 1)), (MOVE, actor, place))
            gap += -1 if gap > 0 else 1

    def interleave(self, threads: list) -> tuple[list, list[int]]:
        """Merge the threads at random, keeping each thread's order, in runs of 1..spec.run.

        Returns the events and, for each event of ``threads[0]`` (the chain), its new index.
        """
        rand, run = self.rand, self.spec.run
        keyed = []
        for number, thread in enumerate(threads):
            runs = []
            i, n = 0, len(thread)
            while i < n:
                step = 1 + int(rand() * run)
                runs.append(thread[i : i + step])
                i += step
            keys = sorted([rand() for _ in runs])
            keyed.extend(zip(keys, [number] * len(runs), runs))
        keyed.sort(key=_first)
        events: list = []
        chain_at: list = []
        for _, number, events_run in keyed:
            if number == 0:
                chain_at.extend(range(len(events), len(events) + len(events_run)))
            events.extend(events_run)
        return events, chain_at

    def render(self, events: list) -> str:
        """English sentences of spec.clauses events each; repeated subjects elided, 'it' in superdense."""
        rand, spec = self.rand, self.spec
        per, pronouns = spec.clauses, spec.pronouns
        sentences = []
        for start in range(0, len(events), per):
            clauses = []
            subject = None
            last_thing = None
            for event in events[start : start + per]:
                kind, actor = event[0], event[1]
                if kind == MOVE:
                    text = _MOVE[int(rand() * 6)] + event[2]
                else:
                    thing = event[2]
                    it = pronouns and thing == last_thing
                    if kind == TAKE:
                        text = _TAKE_IT[int(rand() * 4)] if it else _TAKE[int(rand() * 4)] + thing
                    elif kind == DROP:
                        text = _DROP_IT[int(rand() * 4)] if it else _DROP[int(rand() * 4)] + thing
                    elif kind == GIVE:
                        k = int(rand() * 3)
                        text = (_GIVE_IT[k] if it else _GIVE[k] + thing + " to ") + event[3]
                    else:
                        k = int(rand() * 2)
                        text = (_PUT_IT[k] if it else _PUT[k] + thing) + _INTO[int(rand() * 2)] + event[3]
                        thing = event[3]
                    last_thing = thing
                clauses.append(text if actor == subject else actor + " " + text)
                subject = actor
            if len(clauses) == 1:
                sentences.append(clauses[0] + ".")
            else:
                sentences.append(", ".join(clauses[:-1]) + " and " + clauses[-1] + ".")
        return " ".join(sentences)


def _first(pair):
    return pair[0]


def _place_history(events: Sequence[tuple], target: str) -> tuple[list[str], int]:
    """The places ``target`` occupied, in order (consecutive repeats merged), by replaying events,
    and the index of the event that brought it to its final place.

    The containment chain is followed upward: a thing's holder is an actor, a container, or a
    place it was dropped in; an actor's place is its last move.
    """
    loc: dict = {}
    parent: dict = {}
    history: list = []
    settled = -1
    for index, event in enumerate(events):
        kind = event[0]
        if kind == MOVE:
            loc[event[1]] = event[2]
        elif kind == TAKE:
            parent[event[2]] = event[1]
        elif kind == DROP:
            parent[event[2]] = ("at", loc[event[1]])
        else:  # GIVE and PUT: the thing goes to the receiver or into the container
            parent[event[2]] = event[3]
        node = target
        place = None
        while True:
            if node in loc:
                place = loc[node]
                break
            node = parent.get(node)
            if node is None:
                break
            if type(node) is tuple:
                place = node[1]
                break
        if place is not None and (not history or history[-1] != place):
            history.append(place)
            settled = index
    return history, settled


# ---------------------------------------------------------------------------------------------
# Blocks, cells, splits


def _block_key(seed: int, split: str, category: str, noun_count: int, block: int | str) -> str:
    return f"qa-generator/v{GENERATOR_VERSION}/seed={seed}/split={split}/{category}/n{noun_count}/block={block}"


def _generate_block(
    spec: _Spec, noun_count: int, key: str, count: int, answers: Sequence[bool] | None = None
) -> list[tuple[str, str, bool]]:
    """The first ``count`` stories of the block named by ``key`` (each block is one stream)."""
    digest = hashlib.sha256(key.encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:16], "little"))
    rand = random.Random(int.from_bytes(digest[16:], "little")).random
    n_actors, n_objects, n_containers, n_places = _allocation(spec.name, noun_count)
    # Every story draws its nouns from the lexicon without replacement: one argsort per block.
    pick = lambda words, k: _LEXICON_ARRAYS[words][  # noqa: E731
        np.argsort(rng.random((BLOCK_SIZE, len(_LEXICON_ARRAYS[words]))), axis=1)[:, :k]
    ].tolist()
    actors, objects = pick("names", n_actors), pick("objects", n_objects)
    containers, places = pick("containers", n_containers), pick("places", n_places)
    if answers is None:
        # One yes and one no in every pair of indices, in random order: balanced cells.
        flips = (rng.random(BLOCK_SIZE // 2) < 0.5).repeat(2).tolist()
        answers = [bool(i & 1) != flip for i, flip in enumerate(flips)]
    writer = _StoryWriter(spec, rand)
    write = writer.write
    return [write(actors[i], objects[i], containers[i], places[i], answers[i]) for i in range(count)]


_LEXICON_ARRAYS = {
    "names": np.array(NAMES),
    "objects": np.array(OBJECTS),
    "containers": np.array(CONTAINERS),
    "places": np.array(PLACES),
}


def generate_cell(
    category: str, noun_count: int, n: int, *, seed: int = 0, split: str = "train", start_index: int = 0
) -> list[Example]:
    """Records ``start_index .. start_index + n - 1`` of one (category, noun count) cell.

    Deterministic: the same arguments give the same records, and a range cut into pieces gives
    the same records as the whole range.
    """
    spec = _check_cell(category, noun_count)
    if n < 0 or start_index < 0:
        raise ConfigError(f"record count and start index must be >= 0, got n={n}, start_index={start_index}")
    records: list[Example] = []
    end = start_index + n
    block = start_index // BLOCK_SIZE
    prefix = f"{split}-{category}-n{noun_count}-"
    while block * BLOCK_SIZE < end:
        base = block * BLOCK_SIZE
        low, high = max(start_index, base), min(end, base + BLOCK_SIZE)
        stories = _generate_block(spec, noun_count, _block_key(seed, split, category, noun_count, block), high - base)
        for i in range(low, high):
            story, question, answer = stories[i - base]
            records.append(Example(f"{prefix}{i:05d}", story, question, answer, category, noun_count))
        block += 1
    return records


def _regenerate(example: Example, seed: int, split: str, attempt: int) -> Example:
    """A fresh story for the same record id and answer (used to remove a story seen in another split)."""
    spec = _SPECS[example.category]
    key = _block_key(seed, split, example.category, example.noun_count, f"redo-{example.id}-{attempt}")
    story, question, answer = _generate_block(spec, example.noun_count, key, 1, answers=[example.answer])[0]
    return Example(example.id, story, question, answer, example.category, example.noun_count)


def generate_splits(
    sizes: Mapping[str, int],
    *,
    categories: Sequence[str] = CATEGORIES,
    noun_counts: Sequence[int] = DEFAULT_NOUN_COUNTS,
    seed: int = 0,
    per_cell: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, list[Example]]:
    """Stratified splits: every (category, noun count) cell in every split, no story in two splits.

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
    for category in categories:
        for noun_count in noun_counts:
            _check_cell(category, noun_count)
    cells = [(c, n) for c in sorted(categories, key=_category_order) for n in sorted(noun_counts)]
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
                f"one record in each of the {len(cells)} cells ({len(categories)} categories x {len(noun_counts)} noun counts)"
            )
        records: list[Example] = []
        for (category, noun_count), count in zip(cells, counts):
            for start in range(0, count, 4 * BLOCK_SIZE):
                chunk = generate_cell(
                    category, noun_count, min(4 * BLOCK_SIZE, count - start), seed=seed, split=split, start_index=start
                )
                records.extend(chunk)
                if progress is not None:
                    progress(len(chunk))
        for i, example in enumerate(records):
            attempt = 0
            while example.story in seen:
                attempt += 1
                if attempt > 100:
                    raise ConfigError(f"cannot make {example.id} differ from the stories of earlier splits")
                example = _regenerate(example, seed, split, attempt)
            records[i] = example
        seen.update(example.story for example in records)
        result[split] = records
    return result


def _category_order(category: str) -> tuple[int, str]:
    return (CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES), category)


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
