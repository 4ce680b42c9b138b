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
moves, takes, drops and puts, on things nobody else touches. The threads are then interleaved at
random, keeping each thread's order, in short runs so one actor often does two things in a row.
Because the distractor threads never touch the chain's actors or things, replaying the chain
thread gives exactly the asked entity's history in the full story (the checker replays the full
story and agrees).

No shortcut gives the answer away:

* The story is written *before* the answer is drawn: a "yes" asks the entity's final place, a
  "no" asks the *decoy*, a place the entity really was at earlier (a hard negative), chosen
  with the story. So "was this place ever mentioned with this entity" is worthless.
* The entity reaches its final place after it left the decoy, so "the place mentioned last" or
  "most often" would favour "yes". One distractor, the *mirror*, walks the same way backwards
  (final place, then decoy) on a shadow copy of the chain's timeline, and other distractors
  visit the less named of the two until both are named equally often. ``tests/test_generator.py``
  checks that such place-only guesses score near 50% in every cell.

Randomness is derived from a string key per (seed, split, category, noun count, block of 256
stories) through SHA-256, so adding a category or a split never changes another cell, and no
result depends on hash randomisation or set order. Exactly half of every pair of consecutive
indices is a "yes", so every cell is balanced 50/50 (off by one for an odd size).
"""

from __future__ import annotations

import hashlib
import numbers
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
    clauses: int  # events told per sentence; with 3, "it" replaces a thing the sentence just named
    run: int  # longest run of one thread's events kept adjacent when interleaving
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
        _Spec("simple", 1, 3, 1, 1, 0.35, 0.30, 0.0, 2, 0.3, 0.3, 0.3, 0.0, 0.3),
        _Spec("dense", 2, 4, 2, 2, 0.35, 0.30, 0.0, 2, 0.8, 0.4, 0.4, 0.0, 0.3),
        _Spec("superdense", 3, 5, 3, 3, 0.35, 0.28, 0.10, 2, 1.2, 0.5, 0.35, 0.7, 0.3),
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
    if isinstance(noun_count, bool) or not isinstance(noun_count, numbers.Integral):
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
    """Writes the stories of one block: one random stream, one category, one noun count.

    ``write`` keeps the story being built on ``self``: ``loc`` (each actor's place so far, while
    its thread is written) and ``places`` (the story's places).
    """

    def __init__(self, spec: _Spec, rand: Callable[[], float]):
        self.spec = spec
        self.rand = rand
        self.loc: dict = {}
        self.places: list = []

    # -- small steps, each appending events to a thread and updating `loc` --------------------

    def moves(self, thread: list, actor: str, count: int) -> None:
        """Send ``actor`` ``count`` times somewhere it is not."""
        rand, loc, places = self.rand, self.loc, self.places
        n = len(places)
        for _ in range(count):
            here = loc.get(actor)
            place = places[int(rand() * n)]
            while place == here:
                place = places[int(rand() * n)]
            loc[actor] = place
            thread.append((MOVE, actor, place))

    def go(self, thread: list, actor: str, place: str) -> None:
        """Send ``actor`` to ``place`` unless it is there already."""
        if self.loc.get(actor) != place:
            self.loc[actor] = place
            thread.append((MOVE, actor, place))

    def up_to(self, most: int) -> int:
        """A number of extra moves, 0..most."""
        return int(self.rand() * (most + 1))

    # -- the chain: the events the answer depends on -----------------------------------------

    def chain_simple(self, actors) -> tuple[list, str, list]:
        """Mary walks through 2+ places; asked where she is."""
        chain: list = []
        mary = actors[0]
        self.moves(chain, mary, 2 + self.up_to(self.spec.chain_moves))
        return chain, mary, [mary]

    def chain_dense(self, actors, objects) -> tuple[list, str, list]:
        """The apple is carried, maybe handed over (give, or drop and pick up); asked where it is."""
        rand, most, up_to, moves = self.rand, self.spec.chain_moves, self.up_to, self.moves
        chain: list = []
        apple = objects[0]
        carrier = actors[0]
        if len(actors) < 2 or rand() < 0.34:
            moves(chain, carrier, 1 + up_to(most))
            chain.append((TAKE, carrier, apple))
            moves(chain, carrier, up_to(most))
            return chain, apple, [carrier]
        first = actors[1]
        moves(chain, first, 1 + up_to(most))
        chain.append((TAKE, first, apple))
        moves(chain, first, up_to(most))
        self.hand_over(chain, first, carrier, apple)
        moves(chain, carrier, up_to(most))
        moves(chain, first, up_to(1))  # the giver walks on: a trap for "last seen with"
        return chain, apple, [carrier, first]

    def chain_superdense(self, actors, objects, containers) -> tuple[list, str, list]:
        """The apple is packed into the box, the box is carried and maybe handed over."""
        rand, most, up_to, moves = self.rand, self.spec.chain_moves, self.up_to, self.moves
        chain: list = []
        apple, box = objects[0], containers[0]
        carrier = actors[0]
        packer = carrier if len(actors) < 2 or rand() < 0.34 else actors[1]
        moves(chain, packer, 1 + up_to(most))
        first, second = (apple, box) if rand() < 0.5 else (box, apple)
        chain.append((TAKE, packer, first))
        moves(chain, packer, up_to(1))
        chain.append((TAKE, packer, second))
        moves(chain, packer, up_to(1))
        chain.append((PUT, packer, apple, box))
        moves(chain, packer, up_to(most))
        if packer == carrier:
            return chain, apple, [carrier]
        self.hand_over(chain, packer, carrier, box)
        moves(chain, carrier, up_to(most))
        moves(chain, packer, up_to(1))
        return chain, apple, [carrier, packer]

    def hand_over(self, chain, giver, receiver, thing) -> None:
        """``receiver`` comes to ``giver``'s place and gets ``thing``: by give, or drop and take."""
        rand = self.rand
        self.moves(chain, receiver, self.up_to(1))  # maybe somewhere else first
        there = self.loc[giver]
        if rand() < 0.5:
            self.go(chain, receiver, there)
            chain.append((GIVE, giver, thing, receiver))
        else:
            if rand() < 0.5:  # the receiver is there before the drop, or comes after it
                self.go(chain, receiver, there)
            chain.append((DROP, giver, thing))
            self.go(chain, receiver, there)
            chain.append((TAKE, receiver, thing))

    # -- distractors -------------------------------------------------------------------------

    def distractor(self, actor: str, things: list, pending: list, echo: list, containers: frozenset) -> list:
        """One actor's own errands: moves, takes of its own things, a put, a drop."""
        rand, spec, arrive = self.rand, self.spec, self.arrive
        thread: list = []
        arrive(thread, actor, pending, echo)
        held_objects: list = []
        held_containers: list = []
        for thing in things:
            if rand() < spec.wander_rate:
                arrive(thread, actor, pending, echo)
            thread.append((TAKE, actor, thing))
            (held_containers if thing in containers else held_objects).append(thing)
        if held_objects and held_containers and rand() < spec.put_rate:
            thing = held_objects.pop(int(rand() * len(held_objects)))
            thread.append((PUT, actor, thing, held_containers[int(rand() * len(held_containers))]))
        held = held_objects + held_containers
        if held and rand() < spec.drop_rate:
            if rand() < 0.5:
                arrive(thread, actor, pending, echo)
            thread.append((DROP, actor, held[int(rand() * len(held))]))
        for _ in range(int(spec.extra_moves + rand())):
            arrive(thread, actor, pending, echo)
        return thread

    def arrive(self, thread: list, actor: str, pending: list, echo: list) -> None:
        """Move: first to places nobody has visited (each must be mentioned), often to ``echo``."""
        rand, loc = self.rand, self.loc
        here = loc.get(actor)
        if pending:
            place = pending.pop()
        elif echo and rand() < self.spec.echo_rate:
            place = echo[int(rand() * len(echo))]
        else:
            place = here
        if place == here:
            places = self.places
            while place == here:
                place = places[int(rand() * len(places))]
        loc[actor] = place
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

    def even_out(self, events: list, gap: int, final: str, decoy: str, movers: list, before: int) -> None:
        """Add distractor visits until the final place and the decoy are mentioned equally often.

        The asked entity's own extra visits all happen before it settles in its final place, so
        these do too: each goes to a random distractor at a random point before ``before``
        where that actor neither comes from nor goes next to the place (no "went to the X"
        twice in a row). ``gap`` is how many more times the final place is named than the decoy.
        """
        rand = self.rand
        attempts = 4 * abs(gap) + 4
        while gap and attempts:
            attempts -= 1
            place = decoy if gap > 0 else final
            actor = movers[int(rand() * len(movers))]
            spot = int(rand() * (before + 1))  # the visit goes before events[spot]
            came = next((e[2] for e in reversed(events[:spot]) if e[1] == actor and e[0] == MOVE), None)
            goes = next((e[2] for e in events[spot:] if e[1] == actor and e[0] == MOVE), None)
            if place != came and place != goes:
                events.insert(spot, (MOVE, actor, place))
                before += 1
                gap += -1 if gap > 0 else 1

    # -- the whole story ---------------------------------------------------------------------

    def write(self, actors: list, objects: list, containers: list, places: list, answer: bool) -> tuple[str, str, bool]:
        rand, spec = self.rand, self.spec
        self.loc = {}
        self.places = places
        if spec.hops == 1:
            chain, target, chain_actors = self.chain_simple(actors)
        elif spec.hops == 2:
            chain, target, chain_actors = self.chain_dense(actors, objects)
        else:
            chain, target, chain_actors = self.chain_superdense(actors, objects, containers)

        history, entries = _place_history(chain, target)
        if len(set(history)) < 2:
            # The thing never left its first place: its carrier walks on, so a hard "no" exists.
            self.moves(chain, chain_actors[0], 1)
            history.append(chain[-1][2])
            entries.append(len(chain) - 1)
        # The "no" question will ask the decoy, a place the asked entity really left. Chosen now,
        # before the answer is known, so the story is the same whichever is asked.
        final = history[-1]
        earlier = [place for place in dict.fromkeys(history) if place != final]
        decoy = earlier[int(rand() * len(earlier))]
        echo = [final, *earlier] if spec.echo_rate else []
        # The events that brought the asked entity to its final place and, last time, to the
        # decoy; later insertions into the chain must not lose them, so they are kept by identity.
        settling = chain[entries[-1]]
        leaving = chain[max(entry for entry, place in zip(entries, history) if place == decoy)]

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

        # Every place must be mentioned: distractors go first to places the chain never visits.
        chain_places = {event[2] for event in chain if event[0] == MOVE}
        pending = [place for place in places if place not in chain_places]
        container_set = frozenset(containers)
        threads = [chain]
        for actor in others:
            threads.append(self.distractor(actor, owned[actor], pending, echo, container_set))
        if pending:
            # Only when nobody else is around: the chain's first actor saw those places first.
            chain[:0] = [(MOVE, chain[0][1], place) for place in pending]
        for actor in chain_actors:
            if owned[actor]:
                self.add_errands(chain, actor, owned[actor])

        # The mirror walks the asked entity's way backwards: to the final place when the entity
        # was (last) at the decoy, to the decoy when the entity settles in the final place, each
        # on a shadow copy of the chain's timeline. So "was the final place or the decoy mentioned
        # last" is a fair coin. While the chain still names the final place more often, the
        # mirror also starts at the decoy; other distractors make up the rest.
        mentioned = [event[2] for thread in threads for event in thread if event[0] == MOVE]
        gap = mentioned.count(final) - mentioned.count(decoy)
        walk: list = []
        if mirror is not None:
            if gap > 0:
                walk.append(((MOVE, mirror, decoy), leaving, rand()))
                gap -= 1
            walk.append(((MOVE, mirror, final), leaving, 1.0))
            walk.append(((MOVE, mirror, decoy), settling, 1.0))
        events = self.interleave(threads, walk)
        if gap and others:
            self.even_out(events, gap, final, decoy, others, _index_of(events, settling))

        asked = final if answer else decoy
        story = self.render(events)
        if target[0].isupper():
            question = f"Is {target} in the {asked}?"
        else:
            question = f"Is the {target} in the {asked}?"
        return story, question, asked == final

    def interleave(self, threads: list, walk: list) -> list:
        """Merge the threads at random, keeping each thread's order, in runs of 1..spec.run.

        Every run draws a uniform random key; sorting the keys decides which thread speaks at
        each turn, and each thread's runs fill its turns in order: a uniformly random
        interleaving. ``walk`` is the mirror's moves as (event, chain event, scale): each gets
        the key the chain event's run would get on an independent copy of the chain's
        timeline, times scale, so it lands where that chain event would, statistically.
        """
        rand, run = self.rand, self.spec.run
        if run > 1:
            split = []
            for thread in threads:
                runs = []
                i, n = 0, len(thread)
                while i < n:
                    step = 1 + int(rand() * run)
                    runs.append(thread[i : i + step])
                    i += step
                split.append(runs)
        else:
            split = [[[event] for event in thread] for thread in threads]
        turns = [(rand(), number) for number, runs in enumerate(split) for _ in runs]
        if walk:
            chain_runs = split[0]
            run_of = [r for r, events in enumerate(chain_runs) for _ in events]
            shadow = sorted([rand() for _ in chain_runs])
            keys = [shadow[run_of[_index_of(threads[0], mark)]] * scale for _, mark, scale in walk]
            for i in range(len(keys) - 2, -1, -1):  # the walk keeps its order
                if keys[i] >= keys[i + 1]:
                    keys[i] = keys[i + 1] * rand()
            split.append([[event] for event, _, _ in walk])
            turns += [(key, len(split) - 1) for key in keys]
        turns.sort()  # keys are distinct floats, so only keys are compared
        next_run = [iter(runs).__next__ for runs in split]
        return [event for _, number in turns for event in next_run[number]()]

    def render(self, events: list) -> str:
        """English: spec.clauses events a sentence, repeated subjects elided, 'it' in superdense."""
        rand = self.rand
        texts = []
        for event in events:
            kind = event[0]
            if kind == MOVE:
                texts.append(_MOVE[int(rand() * 6)] + event[2])
            elif kind == TAKE:
                texts.append(_TAKE[int(rand() * 4)] + event[2])
            elif kind == DROP:
                texts.append(_DROP[int(rand() * 4)] + event[2])
            elif kind == GIVE:
                texts.append(_GIVE[int(rand() * 3)] + event[2] + " to " + event[3])
            else:
                texts.append(_PUT[int(rand() * 2)] + event[2] + _INTO[int(rand() * 2)] + event[3])
        if self.spec.clauses == 1:
            return " ".join([event[1] + " " + text + "." for event, text in zip(events, texts)])
        if self.spec.clauses == 2:
            sentences = []
            for i in range(0, len(events) - 1, 2):
                first, second = events[i][1], events[i + 1][1]
                then = texts[i + 1] if second == first else second + " " + texts[i + 1]
                sentences.append(first + " " + texts[i] + " and " + then + ".")
            if len(events) % 2:
                sentences.append(events[-1][1] + " " + texts[-1] + ".")
            return " ".join(sentences)
        # Superdense: three clauses a sentence, "it" for a thing the sentence has just named.
        named = [None if e[0] == MOVE else e[3] if e[0] == PUT else e[2] for e in events]
        it_form = self.it_form
        sentences = []
        n = len(events)
        for i in range(0, n - 2, 3):
            a, b, c = events[i], events[i + 1], events[i + 2]
            text_b, text_c = texts[i + 1], texts[i + 2]
            last = named[i]
            if last is not None and b[0] != MOVE and b[2] == last:
                text_b = it_form(b)
            last = named[i + 1] or last
            if last is not None and c[0] != MOVE and c[2] == last:
                text_c = it_form(c)
            if b[1] != a[1]:
                text_b = b[1] + " " + text_b
            if c[1] != b[1]:
                text_c = c[1] + " " + text_c
            sentences.append(f"{a[1]} {texts[i]}, {text_b} and {text_c}.")
        rest = n % 3
        if rest:
            a = events[n - rest]
            if rest == 1:
                sentences.append(f"{a[1]} {texts[-1]}.")
            else:
                b, text_b = events[-1], texts[-1]
                if named[-2] is not None and b[0] != MOVE and b[2] == named[-2]:
                    text_b = it_form(b)
                if b[1] != a[1]:
                    text_b = b[1] + " " + text_b
                sentences.append(f"{a[1]} {texts[-2]} and {text_b}.")
        return " ".join(sentences)

    def it_form(self, event: tuple) -> str:
        """The clause with "it" for the thing (the last thing named in the sentence)."""
        kind, rand = event[0], self.rand
        if kind == TAKE:
            return _TAKE_IT[int(rand() * 4)]
        if kind == DROP:
            return _DROP_IT[int(rand() * 4)]
        if kind == GIVE:
            return _GIVE_IT[int(rand() * 3)] + event[3]
        return _PUT_IT[int(rand() * 2)] + _INTO[int(rand() * 2)] + event[3]


def _index_of(events: list, event: tuple) -> int:
    """Position of this very event object (equal tuples may occur more than once)."""
    for index, candidate in enumerate(events):
        if candidate is event:
            return index
    raise ValueError("event not found")


def _place_history(events: Sequence[tuple], target: str) -> tuple[list[str], list[int]]:
    """The places ``target`` occupied, in order (consecutive repeats merged), by replaying events,
    and for each the index of the event that brought it there.

    The containment chain is followed upward: a thing's holder is an actor, a container, or a
    place it was dropped in; an actor's place is its last move.
    """
    loc: dict = {}
    parent: dict = {}
    history: list = []
    entries: list = []
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
            entries.append(index)
    return history, entries


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
    actors, objects = _pick(rng, NAMES, n_actors), _pick(rng, OBJECTS, n_objects)
    containers, places = _pick(rng, CONTAINERS, n_containers), _pick(rng, PLACES, n_places)
    if answers is None:
        # One yes and one no in every pair of indices, in random order: balanced cells.
        flips = (rng.random(BLOCK_SIZE // 2) < 0.5).repeat(2).tolist()
        answers = [bool(i & 1) != flip for i, flip in enumerate(flips)]
    writer = _StoryWriter(spec, rand)
    write = writer.write
    return [write(actors[i], objects[i], containers[i], places[i], answers[i]) for i in range(count)]


def _pick(rng: np.random.Generator, words: tuple[str, ...], k: int) -> list[list[str]]:
    """For each story of a block, ``k`` distinct words in random order (the k smallest keys)."""
    if k == 0:
        return [[] for _ in range(BLOCK_SIZE)]
    keys = rng.random((BLOCK_SIZE, len(words)))
    # An object array hands back the lexicon's own str objects: no per-word conversion.
    return _LEXICON_ARRAYS[words][np.argsort(keys, axis=1)[:, :k]].tolist()


_LEXICON_ARRAYS = {words: np.array(words, dtype=object) for words in (NAMES, OBJECTS, CONTAINERS, PLACES)}


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
            example = _regenerate(example, seed, split, attempt)
        records[i] = example


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
