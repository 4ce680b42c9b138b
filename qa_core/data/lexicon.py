"""The generator's vocabulary: who acts, what they carry, what they carry it in, where they go.

Every entry is a single word, so one word is one noun for :func:`qa_core.data.nouns.count_nouns`.
The four lists are disjoint once lower-cased (a name never doubles as an object, "Rose"/"rose"),
and no entry is one of the noun counter's function words ("Will" would not count as a noun).
``tests/test_generator.py`` checks all of that, and that the lists are big enough for the noun
counts the generator accepts (it derives its maximum noun count from these sizes).
"""

from __future__ import annotations

#: Actors. Capitalised, so the noun counter sees them anywhere in a sentence.
NAMES: tuple[str, ...] = tuple(
    """
    Mary John Sandra Daniel Fred Julie Emily Jason Yann Greg Brian Lily Bernhard Jessica Winona
    Gertrude Antoine Sumit Alice Bob Carol David Erin Frank Gina Henry Irene Kevin Laura Martin
    Nina Oscar Paula Quentin Rachel Steven Tina Ursula Victor Wendy Xavier Yvonne Zach Aaron Bella
    Chloe Dmitri Elena Felix Greta Hugo Ingrid Jonas Karin Leon Maya Nadia Omar Petra Rafael Sofia
    Tomas Uma Vera Walter Ximena Yusuf Zoe Anton Beatrice Cedric Diana Edgar Fiona Gustav Helena
    Isaac Julia Kai Lena Marco Nora Otto Priya Raj Simon Tara Ulrich Viktor Wanda Yara
    """.split()
)

#: Things an actor can pick up, drop, give and put into a container.
OBJECTS: tuple[str, ...] = tuple(
    """
    apple football milk banana book key pen pencil ball cup plate fork spoon knife phone lamp hat
    scarf glove umbrella camera clock candle bottle ticket letter coin ring watch wallet map
    compass guitar violin drum flute kite doll puzzle sock shoe jacket towel pillow blanket brush
    comb mirror laptop tablet radio torch hammer wrench rope shovel broom mug kettle teapot vase
    magazine newspaper notebook envelope stamp marble dice trophy medal badge button feather shell
    stone orange lemon pear peach carrot potato tomato cookie cake sandwich cheese bread egg
    helmet necklace bracelet ribbon balloon whistle
    """.split()
)

#: Things that hold objects. Only the superdense category uses them (object -> container ->
#: carrier -> place is its third hop); they are objects too: they can be taken, dropped, given.
CONTAINERS: tuple[str, ...] = tuple(
    """
    box bag basket crate chest suitcase backpack sack jar bin carton hamper pouch purse satchel
    trunk briefcase tub barrel cooler tote pail casket canister coffer
    """.split()
)

#: Where actors go. Objects are only ever *in* a place through an actor or a drop.
PLACES: tuple[str, ...] = tuple(
    """
    kitchen garden hallway bathroom bedroom office cellar attic garage library cinema park school
    hospital museum station airport beach forest bakery market church theatre gym cafe restaurant
    bank pharmacy zoo stadium harbour farm barn lighthouse castle palace playground classroom
    laboratory studio workshop greenhouse balcony porch terrace corridor lobby basement pantry
    lounge nursery chapel canteen hotel factory warehouse shed courtyard orchard meadow island
    """.split()
)
