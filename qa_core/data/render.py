"""Telling events in English: the generator's renderer.

``spec.clauses`` events go into one sentence (``A.``, ``A and B.``, ``A, B and C.``); event ``i``
is in sentence ``i // clauses``, which is how the generator turns supporting events into
supporting sentences. A clause whose subject is the previous clause's loses it ("Mary went to the
hall and took the cup"); with three clauses a sentence, ``it`` replaces a thing the sentence has
just named. Every synonym list is drawn from by its own length.
"""

from __future__ import annotations

from typing import Callable, Sequence

from .world import Drop, Event, Give, Move, Put, Take

# Verb phrases, each ending where the noun goes.
MOVE_VERBS = ("went to the ", "moved to the ", "travelled to the ", "journeyed to the ", "walked to the ", "ran to the ")
TAKE_VERBS = ("picked up the ", "took the ", "grabbed the ", "got the ")
TAKE_IT = ("picked it up", "took it", "grabbed it", "got it")
DROP_VERBS = ("dropped the ", "put down the ", "discarded the ", "set down the ")
DROP_IT = ("dropped it", "put it down", "discarded it", "set it down")
GIVE_VERBS = ("gave the ", "handed the ", "passed the ")
GIVE_IT = ("gave it to ", "handed it to ", "passed it to ")
PUT_VERBS = ("put the ", "placed the ")
PUT_IT = ("put it", "placed it")
INTO = (" in the ", " into the ")


def _pick(words: Sequence[str], rand: Callable[[], float]) -> str:
    return words[int(rand() * len(words))]


def clause(event: Event, rand: Callable[[], float]) -> str:
    """The predicate of one event ("went to the kitchen"), its verb drawn at random."""
    # Called once per event: the synonym draws are written out (no helper call per draw).
    kind = type(event)
    if kind is Move:
        return MOVE_VERBS[int(rand() * len(MOVE_VERBS))] + event.place
    if kind is Take:
        return TAKE_VERBS[int(rand() * len(TAKE_VERBS))] + event.thing
    if kind is Drop:
        return DROP_VERBS[int(rand() * len(DROP_VERBS))] + event.thing
    if kind is Give:
        return GIVE_VERBS[int(rand() * len(GIVE_VERBS))] + event.thing + " to " + event.receiver
    return PUT_VERBS[int(rand() * len(PUT_VERBS))] + event.thing + INTO[int(rand() * len(INTO))] + event.container


def it_clause(event: Event, rand: Callable[[], float]) -> str:
    """The predicate with "it" for its thing (the last thing named in the sentence)."""
    kind = type(event)
    if kind is Take:
        return _pick(TAKE_IT, rand)
    if kind is Drop:
        return _pick(DROP_IT, rand)
    if kind is Give:
        return _pick(GIVE_IT, rand) + event.receiver
    return _pick(PUT_IT, rand) + _pick(INTO, rand) + event.container


def _named(event: Event) -> str | None:
    """The thing a clause names last, which a following "it" may refer to."""
    kind = type(event)
    if kind is Move:
        return None
    return event.container if kind is Put else event.thing


def _refers(event: Event, last: str | None) -> bool:
    return last is not None and type(event) is not Move and event.thing == last


def render(events: Sequence[Event], clauses: int, rand: Callable[[], float]) -> str:
    """The story: ``clauses`` events a sentence, repeated subjects elided, "it" with three."""
    texts = [clause(event, rand) for event in events]
    if clauses == 1:
        return " ".join([event.actor + " " + text + "." for event, text in zip(events, texts)])
    if clauses == 2:  # the dense fast path: "A and B.", B's subject elided when it repeats
        sentences = []
        for i in range(0, len(events) - 1, 2):
            first, second = events[i].actor, events[i + 1].actor
            then = texts[i + 1] if second == first else second + " " + texts[i + 1]
            sentences.append(first + " " + texts[i] + " and " + then + ".")
        if len(events) % 2:
            sentences.append(events[-1].actor + " " + texts[-1] + ".")
        return " ".join(sentences)
    sentences = []
    for start in range(0, len(events), clauses):
        group = events[start : start + clauses]
        parts = [group[0].actor + " " + texts[start]]
        last = _named(group[0])
        for offset in range(1, len(group)):
            event, text = group[offset], texts[start + offset]
            if _refers(event, last):
                text = it_clause(event, rand)
            if event.actor != group[offset - 1].actor:
                text = event.actor + " " + text
            parts.append(text)
            last = _named(event) or last
        if len(parts) == 1:
            sentences.append(parts[0] + ".")
        else:
            sentences.append(", ".join(parts[:-1]) + " and " + parts[-1] + ".")
    return " ".join(sentences)
