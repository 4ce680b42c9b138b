"""An independent reader of generated stories: parse the English, replay the world, answer.

It shares nothing with ``qa_core.data.generator`` but the English it reads: its own regexes turn
each sentence into events, its own world model replays them (refusing any event that breaks the
world's rules: taking what someone else holds, giving to someone in another room, ...), and it
answers the question from the final state. The tests require it to agree with every label.

Grammar it accepts (the generator's, described from the outside):

* A sentence is 1 to 3 clauses: ``A.``, ``A and B.``, ``A, B and C.``
* A clause is ``[Name] predicate``; without a name the subject is the previous clause's.
* Predicates: ``went|moved|travelled|journeyed|walked|ran to the PLACE``;
  ``picked up|took|grabbed|got the THING`` (or ``picked it up``, ``took it``, ...);
  ``dropped|put down|discarded|set down the THING`` (or ``dropped it``, ``put it down``, ...);
  ``gave|handed|passed the THING|it to Name``; ``put|placed the THING|it in|into the CONTAINER``.
* ``it`` is the last thing (object or container) mentioned earlier in the same sentence.
* The question is ``Is Name in the PLACE?`` or ``Is the THING in the PLACE?``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = r"[A-Z][a-z]+"
_NOUN = r"[a-z]+"

_SUBJECT = re.compile(rf"^(?P<subject>{_NAME}) (?P<rest>.*)$")
_PREDICATES = (
    ("move", re.compile(rf"^(?:went|moved|travelled|journeyed|walked|ran) to the (?P<place>{_NOUN})$")),
    ("take", re.compile(rf"^(?:(?:picked up|took|grabbed|got) the (?P<thing>{_NOUN})|picked it up|took it|grabbed it|got it)$")),
    ("drop", re.compile(rf"^(?:(?:dropped|put down|discarded|set down) the (?P<thing>{_NOUN})|dropped it|put it down|discarded it|set it down)$")),
    ("give", re.compile(rf"^(?:gave|handed|passed) (?:the (?P<thing>{_NOUN})|it) to (?P<receiver>{_NAME})$")),
    ("put", re.compile(rf"^(?:put|placed) (?:the (?P<thing>{_NOUN})|it) (?:in|into) the (?P<container>{_NOUN})$")),
)
_SENTENCE = re.compile(r"[^.]+\.")
_QUESTION = re.compile(rf"^Is (?:(?P<name>{_NAME})|the (?P<thing>{_NOUN})) in the (?P<place>{_NOUN})\?$")


class StoryError(ValueError):
    """The text is not in the grammar, or an event breaks the world's rules."""


@dataclass(frozen=True)
class Event:
    kind: str  # move | take | drop | give | put
    actor: str
    place: str | None = None
    thing: str | None = None
    receiver: str | None = None
    container: str | None = None


@dataclass
class Verdict:
    """What the checker makes of one record."""

    answer: bool
    entity: str
    asked_place: str
    final_place: str
    hops: int  # containment links from the entity up to its place: actor 1, held thing 2, ...
    history: list[str]  # places the entity occupied, in order, consecutive repeats merged
    events: list[Event] = field(repr=False)
    sentences: int
    clauses_per_sentence: list[int] = field(repr=False)
    pronouns: int  # how many "it"s were resolved
    support: list[int] = field(default_factory=list)  # sentences that decide where the entity is


def parse_story(story: str) -> tuple[list[Event], list[int], int]:
    """Events in order, the number of clauses of each sentence, and the number of "it"s."""
    events: list[Event] = []
    clause_counts: list[int] = []
    pronouns = 0
    sentences = _SENTENCE.findall(story)
    if "".join(sentences).replace(" ", "") != story.replace(" ", ""):
        raise StoryError(f"story is not a sequence of sentences ending with '.': {story!r}")
    for sentence in sentences:
        body = sentence.strip()[:-1]
        head, _, last = body.rpartition(" and ")
        clauses = (head.split(", ") + [last]) if head else [body]
        clause_counts.append(len(clauses))
        subject = None
        last_thing = None
        for clause in clauses:
            match = _SUBJECT.match(clause)
            if match:
                subject, predicate = match["subject"], match["rest"]
            elif subject is None:
                raise StoryError(f"clause without a subject: {clause!r} in {sentence!r}")
            else:
                predicate = clause
            for kind, pattern in _PREDICATES:
                found = pattern.match(predicate)
                if found:
                    break
            else:
                raise StoryError(f"unknown predicate {predicate!r} in {sentence!r}")
            groups = found.groupdict()
            thing = groups.get("thing")
            if kind != "move" and thing is None:
                if last_thing is None:
                    raise StoryError(f"'it' with nothing to refer to in {sentence!r}")
                thing = last_thing
                pronouns += 1
            events.append(
                Event(kind, subject, groups.get("place"), thing, groups.get("receiver"), groups.get("container"))
            )
            if thing is not None:
                last_thing = groups.get("container") or thing
    return events, clause_counts, pronouns


class World:
    """Actors stand in places; things are held by an actor, inside a container, or lie in a place."""

    def __init__(self) -> None:
        self.actor_place: dict[str, str] = {}
        self.parent: dict[str, tuple[str, str]] = {}  # thing -> ("actor"|"in"|"at", name)
        self.moved_in: dict[str, int] = {}  # actor -> sentence of its last move
        self.linked_in: dict[str, set[int]] = {}  # thing -> sentences that put it where it is

    def apply(self, event: Event, sentence: int = 0) -> None:
        actor, thing = event.actor, event.thing
        if event.kind == "move":
            self.actor_place[actor] = event.place
            self.moved_in[actor] = sentence
            return
        self.linked_in[thing] = {sentence} if event.kind != "drop" else {sentence, self.moved_in.get(actor, sentence)}
        here = self.actor_place.get(actor)
        if here is None:
            raise StoryError(f"{actor} acts before being anywhere: {event}")
        if event.kind == "take":
            current = self.parent.get(thing)
            if current is not None and current != ("at", here):
                raise StoryError(f"{actor} cannot take the {thing}: it is {current}, {actor} is in the {here}")
            self.parent[thing] = ("actor", actor)
            return
        if self.parent.get(thing) != ("actor", actor):
            raise StoryError(f"{actor} does not hold the {thing}: {event}")
        if event.kind == "drop":
            self.parent[thing] = ("at", here)
        elif event.kind == "give":
            if self.actor_place.get(event.receiver) != here:
                raise StoryError(f"{event.receiver} is not in the {here} to receive the {thing}")
            self.parent[thing] = ("actor", event.receiver)
        elif event.kind == "put":
            box = self.parent.get(event.container)
            if box not in (("actor", actor), ("at", here)) or event.container == thing:
                raise StoryError(f"{actor} cannot put the {thing} in the {event.container}: it is {box}")
            self.parent[thing] = ("in", event.container)

    def support(self, entity: str) -> list[int]:
        """The sentences that decide where ``entity`` is now: each link's last change, and the
        last move of the actor at the top (for a dropped thing, its dropper's move before the drop)."""
        sentences: set[int] = set()
        node = entity
        while node not in self.actor_place:
            sentences |= self.linked_in[node]
            how, where = self.parent[node]
            if how == "at":
                return sorted(sentences)
            node = where
        return sorted(sentences | {self.moved_in[node]})

    def locate(self, entity: str) -> tuple[str | None, int]:
        """(place, number of links followed to reach it); (None, 0) when not anywhere yet."""
        links = 0
        node = entity
        while True:
            if node in self.actor_place:
                return self.actor_place[node], links + 1
            if node not in self.parent:
                return None, 0
            how, where = self.parent[node]
            links += 1
            if how == "at":
                return where, links
            node = where


def check(story: str, question: str) -> Verdict:
    """Parse, replay and answer one record; raises StoryError on anything it cannot accept."""
    events, clause_counts, pronouns = parse_story(story)
    asked = _QUESTION.match(question)
    if not asked:
        raise StoryError(f"question not understood: {question!r}")
    entity = asked["name"] or asked["thing"]
    world = World()
    history: list[str] = []
    sentence_of = [i for i, count in enumerate(clause_counts) for _ in range(count)]
    for event, sentence in zip(events, sentence_of):
        world.apply(event, sentence)
        place, _ = world.locate(entity)
        if place is not None and (not history or history[-1] != place):
            history.append(place)
    final, hops = world.locate(entity)
    if final is None:
        raise StoryError(f"the story never places the {entity}")
    return Verdict(
        answer=final == asked["place"],
        entity=entity,
        asked_place=asked["place"],
        final_place=final,
        hops=hops,
        history=history,
        events=events,
        sentences=len(clause_counts),
        clauses_per_sentence=clause_counts,
        pronouns=pronouns,
        support=world.support(entity),
    )
