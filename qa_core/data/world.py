"""The generator's simulated world: events, what each category asks, and how a story is built.

Events are named tuples, one type per kind::

    Move(actor, place)                 the actor is now in the place
    Take(actor, thing)                 the thing is now with the actor (it was where she is)
    Drop(actor, thing)                 the thing now lies where the actor is
    Give(actor, thing, receiver)       the thing is now with the receiver (they share a place)
    Put(actor, thing, container)       the thing is now in the container (held or at hand)

**Shortcut-free by construction: the twin.** A story holds two chains of the same kind: the
asked entity's, which ends in the final place F after leaving the decoy D, and its *twin*'s, a
second entity of the same kind whose chain is drawn the same way and then relabelled so that it
ends in D after leaving F. The threads (the two chains and every distractor's) are interleaved
uniformly at random and distractors treat F and D alike. So swapping the words F and D (and the
two entities) maps the distribution of stories onto itself: any cue that looks at the story and
the asked *place* alone (which place is named last, first, most, in which words, at which
positions) has exactly the same distribution for the "yes" place F and the "no" place D, and
scores 50% in expectation. ``qa data audit`` measures it.

The twin needs nouns of its own (a second actor, thing and container), so each category has a
smallest noun count: 4 simple, 6 dense, 8 superdense.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, NamedTuple, Sequence, Union

from .lexicon import CONTAINERS, NAMES, OBJECTS, PLACES


class Move(NamedTuple):
    actor: str
    place: str


class Take(NamedTuple):
    actor: str
    thing: str


class Drop(NamedTuple):
    actor: str
    thing: str


class Give(NamedTuple):
    actor: str
    thing: str
    receiver: str


class Put(NamedTuple):
    actor: str
    thing: str
    container: str


Event = Union[Move, Take, Drop, Give, Put]


@dataclass(frozen=True)
class Spec:
    """What a category changes. Shares are fractions of the noun count given to each kind."""

    name: str
    hops: int  # containment links from the asked entity up to its place
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
    echo_rate: float  # chance a distractor's free move goes to a place a chain has been

    @property
    def min_objects(self) -> int:
        return 2 if self.hops >= 2 else 0  # the asked thing and its twin

    @property
    def min_containers(self) -> int:
        return 2 if self.hops >= 3 else 0

    @property
    def min_nouns(self) -> int:
        """The chain's nouns, twice (the twin), plus the two places F and D."""
        return 2 + self.min_objects + self.min_containers + 2


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec(name="simple", hops=1, clauses=1, run=1, actor_share=0.35, place_share=0.30, container_share=0.0,
             chain_moves=2, extra_moves=0.3, wander_rate=0.3, drop_rate=0.3, put_rate=0.0, echo_rate=0.3),
        Spec(name="dense", hops=2, clauses=2, run=2, actor_share=0.35, place_share=0.30, container_share=0.0,
             chain_moves=2, extra_moves=0.8, wander_rate=0.4, drop_rate=0.4, put_rate=0.0, echo_rate=0.3),
        Spec(name="superdense", hops=3, clauses=3, run=3, actor_share=0.35, place_share=0.28, container_share=0.10,
             chain_moves=2, extra_moves=1.2, wander_rate=0.5, drop_rate=0.35, put_rate=0.7, echo_rate=0.3),
    )
}  # fmt: skip


@lru_cache(maxsize=None)
def allocation(category: str, noun_count: int) -> tuple[int, int, int, int] | None:
    """(actors, objects, containers, places) summing to noun_count, or None if impossible."""
    spec = SPECS[category]
    if noun_count < spec.min_nouns:
        return None
    containers = max(spec.min_containers, int(spec.container_share * noun_count + 0.5)) if spec.hops >= 3 else 0
    places = max(2, int(spec.place_share * noun_count + 0.5))
    actors = max(2, int(spec.actor_share * noun_count + 0.5))
    # Small counts: give up actors first, then places, then containers, down to their minimums.
    while noun_count - actors - places - containers < spec.min_objects:
        if actors > 2:
            actors -= 1
        elif places > 2:
            places -= 1
        elif containers > spec.min_containers:
            containers -= 1
        else:
            return None
    objects = noun_count - actors - places - containers
    if actors > len(NAMES) or objects > len(OBJECTS) or containers > len(CONTAINERS) or places > len(PLACES):
        return None
    return actors, objects, containers, places


class StoryWriter:
    """Writes the stories of one block: one random stream, one category, one noun count.

    ``write`` keeps the story being built on ``self``: ``loc`` (each actor's place so far, while
    its thread is written) and ``places`` (the story's places).
    """

    def __init__(self, spec: Spec, rand: Callable[[], float]):
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
            thread.append(Move(actor, place))

    def go(self, thread: list, actor: str, place: str) -> None:
        """Send ``actor`` to ``place`` unless it is there already."""
        if self.loc.get(actor) != place:
            self.loc[actor] = place
            thread.append(Move(actor, place))

    def up_to(self, most: int) -> int:
        """A number of extra moves, 0..most."""
        return int(self.rand() * (most + 1))

    # -- a chain: the events the answer depends on (written twice: the asked one and its twin) --

    def chain(self, actors: list, thing: str | None, box: str | None) -> tuple[list, str, list]:
        """(events, asked entity, chain actors) for the category."""
        if self.spec.hops == 1:
            return self.chain_simple(actors)
        if self.spec.hops == 2:
            return self.chain_dense(actors, thing)
        return self.chain_superdense(actors, thing, box)

    def chain_simple(self, actors: list) -> tuple[list, str, list]:
        """Mary walks through 2+ places; asked where she is."""
        chain: list = []
        mary = actors[0]
        self.moves(chain, mary, 2 + self.up_to(self.spec.chain_moves))
        return chain, mary, [mary]

    def chain_dense(self, actors: list, apple: str) -> tuple[list, str, list]:
        """The apple is carried, maybe handed over (give, or drop and pick up); asked where it is."""
        rand, most, up_to, moves = self.rand, self.spec.chain_moves, self.up_to, self.moves
        chain: list = []
        carrier = actors[0]
        if len(actors) < 2 or rand() < 0.34:
            moves(chain, carrier, 1 + up_to(most))
            chain.append(Take(carrier, apple))
            moves(chain, carrier, up_to(most))
            return chain, apple, [carrier]
        first = actors[1]
        moves(chain, first, 1 + up_to(most))
        chain.append(Take(first, apple))
        moves(chain, first, up_to(most))
        self.hand_over(chain, first, carrier, apple)
        moves(chain, carrier, up_to(most))
        moves(chain, first, up_to(1))  # the giver walks on: a trap for "last seen with"
        return chain, apple, [carrier, first]

    def chain_superdense(self, actors: list, apple: str, box: str) -> tuple[list, str, list]:
        """The apple is packed into the box, the box is carried and maybe handed over."""
        rand, most, up_to, moves = self.rand, self.spec.chain_moves, self.up_to, self.moves
        chain: list = []
        carrier = actors[0]
        packer = carrier if len(actors) < 2 or rand() < 0.34 else actors[1]
        moves(chain, packer, 1 + up_to(most))
        first, second = (apple, box) if rand() < 0.5 else (box, apple)
        chain.append(Take(packer, first))
        moves(chain, packer, up_to(1))
        chain.append(Take(packer, second))
        moves(chain, packer, up_to(1))
        chain.append(Put(packer, apple, box))
        moves(chain, packer, up_to(most))
        if packer == carrier:
            return chain, apple, [carrier]
        self.hand_over(chain, packer, carrier, box)
        moves(chain, carrier, up_to(most))
        moves(chain, packer, up_to(1))
        return chain, apple, [carrier, packer]

    def hand_over(self, chain: list, giver: str, receiver: str, thing: str) -> None:
        """``receiver`` comes to ``giver``'s place and gets ``thing``: by give, or drop and take."""
        rand = self.rand
        self.moves(chain, receiver, self.up_to(1))  # maybe somewhere else first
        there = self.loc[giver]
        if rand() < 0.5:
            self.go(chain, receiver, there)
            chain.append(Give(giver, thing, receiver))
        else:
            if rand() < 0.5:  # the receiver is there before the drop, or comes after it
                self.go(chain, receiver, there)
            chain.append(Drop(giver, thing))
            self.go(chain, receiver, there)
            chain.append(Take(receiver, thing))

    def settled_chain(self, actors: list, thing: str | None, box: str | None) -> tuple[list, str, list, list]:
        """A chain whose entity has been in two places at least (so a hard "no" exists), and
        the entity's places in order."""
        chain, target, chain_actors = self.chain(actors, thing, box)
        history = place_history(chain, target)
        if len(set(history)) < 2:
            # The thing never left its first place: its carrier walks on.
            self.moves(chain, chain_actors[0], 1)
            history.append(chain[-1].place)
        return chain, target, chain_actors, history

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
            thread.append(Take(actor, thing))
            (held_containers if thing in containers else held_objects).append(thing)
        if held_objects and held_containers and rand() < spec.put_rate:
            thing = held_objects.pop(int(rand() * len(held_objects)))
            thread.append(Put(actor, thing, held_containers[int(rand() * len(held_containers))]))
        held = held_objects + held_containers
        if held and rand() < spec.drop_rate:
            if rand() < 0.5:
                arrive(thread, actor, pending, echo)
            thread.append(Drop(actor, held[int(rand() * len(held))]))
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
        thread.append(Move(actor, place))

    def add_errands(self, chain: list, actor: str, things: list) -> None:
        """Slot a chain actor's own (irrelevant) takes and drops in after its first move."""
        rand = self.rand
        first = next(i for i, event in enumerate(chain) if type(event) is Move and event.actor == actor)
        for thing in things:
            at = first + 1 + int(rand() * (len(chain) - first))
            chain.insert(at, Take(actor, thing))
            if rand() < self.spec.drop_rate:
                chain.insert(at + 1 + int(rand() * (len(chain) - at)), Drop(actor, thing))

    def round_trips(self, threads: list, extra: int) -> None:
        """Lengthen the story by ``extra`` events that change no answer: an actor walks away
        and comes back (or, for an odd count, away, on, and back) before its next event.

        Thread and position are drawn alike for every thread, the chain and its twin included,
        so the twin's symmetry holds."""
        rand, places = self.rand, self.places
        while extra > 0:
            size = 3 if extra % 2 else 2
            thread = threads[int(rand() * len(threads))]
            at = 1 + int(rand() * len(thread))  # after the thread's first event, always a move
            actor = thread[at - 1].actor
            here = next(e.place for e in reversed(thread[:at]) if type(e) is Move and e.actor == actor)
            away = [p for p in places if p != here]
            first = away[int(rand() * len(away))]
            trip = [Move(actor, first)]
            if size == 3:
                on = [p for p in away if p != first]
                trip.append(Move(actor, on[int(rand() * len(on))]))
            trip.append(Move(actor, here))
            thread[at:at] = trip
            extra -= size

    # -- the whole story ---------------------------------------------------------------------

    def write(self, actors: list, objects: list, containers: list, places: list, length: int | None = None) -> tuple[list, str, str, str] | None:
        """(events, asked entity, final place, decoy), or None when ``length`` events cannot
        hold this draw (the caller draws again)."""
        rand, spec = self.rand, self.spec
        self.loc = {}
        self.places = places
        pair = 2 if len(actors) >= 4 and spec.hops > 1 else 1  # actors each chain may use (a hand-over needs two)
        chain, target, chain_actors, history = self.settled_chain(actors[:pair], objects[0] if objects else None, containers[0] if containers else None)
        twin, _, twin_actors, twin_history = self.settled_chain(actors[pair : 2 * pair], objects[1] if spec.hops > 1 else None, containers[1] if spec.hops > 2 else None)
        # The "no" question asks the decoy, a place the asked entity really left. Chosen now,
        # before the answer is known, so the story is the same whichever is asked.
        final, decoy = history[-1], self.earlier(history)
        self.relabel(twin, twin_history, final, decoy)

        used = set(chain_actors + twin_actors)
        others = [actor for actor in actors if actor not in used]  # a chain may not need both its actors
        workers = chain_actors + twin_actors + others
        owned: dict = {actor: [] for actor in workers}
        for thing in objects[spec.min_objects :] + containers[spec.min_containers :]:
            owned[workers[int(rand() * len(workers))]].append(thing)

        # Every place must be mentioned: distractors go first to places no chain visits.
        visited = {event.place for event in chain + twin if type(event) is Move}
        pending = [place for place in places if place not in visited]
        echo = [place for place in places if place in visited]
        container_set = frozenset(containers)
        threads = [chain, twin]
        for actor in others:
            threads.append(self.distractor(actor, owned[actor], pending, echo, container_set))
        if pending:  # nobody else is around: one chain's first actor saw those places first
            first = chain if rand() < 0.5 else twin
            first[:0] = [Move(first[0].actor, place) for place in pending]
        for actor, thread in [(a, chain) for a in chain_actors] + [(a, twin) for a in twin_actors]:
            if owned[actor]:
                self.add_errands(thread, actor, owned[actor])
        if length is not None:
            extra = length - sum(map(len, threads))
            if extra % 2 and (extra == 1 or len(places) < 3):  # no three-move trip fits
                if spec.clauses == 1:
                    return None
                extra -= 1  # one clause fewer in the last sentence: the same sentence count
            if extra < 0:
                return None
            self.round_trips(threads, extra)
        return self.interleave(threads), target, final, decoy

    def earlier(self, history: list) -> str:
        """A random earlier place of the entity (not its final one): the decoy."""
        final = history[-1]
        earlier = [place for place in dict.fromkeys(history) if place != final]
        return earlier[int(self.rand() * len(earlier))]

    def relabel(self, twin: list, history: list, final: str, decoy: str) -> None:
        """Rename the twin's places so it ends in ``decoy`` after leaving ``final``: its own final
        place becomes the decoy, its own decoy the final place, the rest a random permutation."""
        own_final, own_decoy = history[-1], self.earlier(history)
        rest_from = [p for p in self.places if p not in (own_final, own_decoy)]
        rest_to = [p for p in self.places if p not in (final, decoy)]
        rand = self.rand
        for i in range(len(rest_to) - 1, 0, -1):  # Fisher-Yates on the random stream
            j = int(rand() * (i + 1))
            rest_to[i], rest_to[j] = rest_to[j], rest_to[i]
        mapping = {own_final: decoy, own_decoy: final, **dict(zip(rest_from, rest_to))}
        for i, event in enumerate(twin):
            if type(event) is Move:
                twin[i] = Move(event.actor, mapping[event.place])
        for event in twin:
            if type(event) is Move:
                self.loc[event.actor] = event.place

    def interleave(self, threads: list) -> list:
        """Merge the threads at random, keeping each thread's order, in runs of 1..spec.run.

        Every run draws a uniform random key; sorting the keys decides which thread speaks at
        each turn, and each thread's runs fill its turns in order: a uniformly random
        interleaving, the same for every thread.
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
        turns.sort()  # keys are distinct floats, so only keys are compared
        next_run = [iter(runs).__next__ for runs in split]
        return [event for _, number in turns for event in next_run[number]()]


def place_history(events: Sequence[Event], target: str) -> list[str]:
    """The places ``target`` occupied, in order (consecutive repeats merged), by replaying events.

    The containment chain is followed upward: a thing's holder is an actor, a container, or a
    place it was dropped in; an actor's place is its last move.
    """
    loc: dict = {}
    parent: dict = {}
    history: list = []
    for event in events:
        kind = type(event)
        if kind is Move:
            loc[event.actor] = event.place
        elif kind is Take:
            parent[event.thing] = event.actor
        elif kind is Drop:
            parent[event.thing] = ("at", loc[event.actor])
        elif kind is Give:
            parent[event.thing] = event.receiver
        else:
            parent[event.thing] = event.container
        node, place = target, None
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
    return history


def supporting_events(events: Sequence[Event], target: str) -> list[int]:
    """Indices of the events that decide where ``target`` is at the end, in story order: the
    last link of each containment step (take, give, put or drop) and the last move of the
    actor at the top (for a drop, the dropper's move before it)."""
    last_move: dict = {}
    holder: dict = {}  # thing -> (event index, parent: an actor, a container, or ("at", move index))
    for index, event in enumerate(events):
        kind = type(event)
        if kind is Move:
            last_move[event.actor] = index
        elif kind is Take:
            holder[event.thing] = (index, event.actor)
        elif kind is Drop:
            holder[event.thing] = (index, ("at", last_move[event.actor]))
        elif kind is Give:
            holder[event.thing] = (index, event.receiver)
        else:
            holder[event.thing] = (index, event.container)
    needed = []
    node = target
    while node not in last_move:
        index, parent = holder[node]
        needed.append(index)
        if type(parent) is tuple:
            needed.append(parent[1])
            break
        node = parent
    else:
        needed.append(last_move[node])
    return sorted(needed)
