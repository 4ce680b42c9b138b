"""The core's noun counter: how many distinct actors, objects and places a story mentions.

A word counts as a noun when it follows a determiner ("the kitchen", "a box") or is capitalised
and not a function word ("Mary" at any position, but not "The" or "Is"). This is exact for the
stories the generator writes (names are capitalised, every object and place takes "the") and for
bAbI, and a fair estimate for other English text. Nouns are compared in lower case, and a
possessive counts as its noun ("Mary's" is "mary").
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")

DETERMINERS = frozenset({"the", "a", "an"})

#: Capitalised words that are not nouns: sentence starts, pronouns, question words.
FUNCTION_WORDS = frozenset(
    """
    the a an and or but then after before afterwards later meanwhile finally first next
    is are was were be been do does did has have had will would can could
    he she it they them him her his hers their its we you i me my our your
    who what where when why how which whose whom this that these those there here
    yes no not to in on at of from with by into onto for
    following yesterday today tomorrow now so also again
    """.split()
)


def noun_set(text: str) -> set[str]:
    """The distinct nouns of ``text``, lower-cased."""
    nouns: set[str] = set()
    previous = ""
    for word in _WORD.findall(text):
        lower = word.lower()
        if lower.endswith("'s"):
            lower = lower[:-2]
        elif lower.endswith("'"):
            lower = lower[:-1]
        if lower not in FUNCTION_WORDS and (previous in DETERMINERS or word[0].isupper()):
            nouns.add(lower)
        previous = lower
    return nouns


def count_nouns(text: str) -> int:
    """How many distinct nouns ``text`` mentions (see the module docstring for the rule)."""
    return len(noun_set(text))
