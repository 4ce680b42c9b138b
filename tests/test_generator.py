"""The story generator, checked from the outside.

Labels, hops and hard negatives are judged by ``story_checker`` (its own parser and world model,
nothing imported from the generator); noun counts by the core's ``count_nouns``.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa_core.data import generator
from qa_core.data.generator import (
    CATEGORIES,
    CATEGORY_DESCRIPTIONS,
    DEFAULT_NOUN_COUNTS,
    cell_stats,
    generate_cell,
    generate_splits,
    max_noun_count,
    min_noun_count,
)
from qa_core.data.lexicon import CONTAINERS, NAMES, OBJECTS, PLACES
from qa_core.data.nouns import FUNCTION_WORDS, count_nouns, noun_set
from qa_core.data.records import read_jsonl, write_jsonl
from qa_core.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parent))
from story_checker import StoryError, check  # noqa: E402

EXPECTED_HOPS = {"simple": 1, "dense": 2, "superdense": 3}
PER_DEFAULT_CELL = 1200  # 3 categories x 3 noun counts x 1200 = 10,800 stories, plus the extremes
EXTREME_CELLS = [("simple", 4), ("dense", 6), ("superdense", 8)] + [(c, 50) for c in CATEGORIES]


@pytest.fixture(scope="module")
def checked():
    """(example, checker verdict) for >10,000 stories across every category and noun count."""
    examples = []
    for category in CATEGORIES:
        for noun_count in DEFAULT_NOUN_COUNTS:
            examples += generate_cell(category, noun_count, PER_DEFAULT_CELL, seed=11, split="test")
    for category, noun_count in EXTREME_CELLS:
        examples += generate_cell(category, noun_count, 100, seed=11, split="test")
    return [(example, check(example.story, example.question)) for example in examples]


# -- labels, nouns, hops, hard negatives -------------------------------------------------------


def test_checker_agrees_with_every_label(checked):
    assert len(checked) >= 10_000
    wrong = [example.id for example, verdict in checked if verdict.answer != example.answer]
    assert not wrong, f"{len(wrong)} labels disagree with the checker, e.g. {wrong[:5]}"


def test_support_is_what_the_checker_needs(checked):
    """``support`` names exactly the sentences the checker's own replay says decide the answer."""
    wrong = [example.id for example, verdict in checked if list(example.support) != verdict.support]
    assert not wrong, f"{len(wrong)} records' support disagrees with the checker, e.g. {wrong[:5]}"
    sizes = collections.Counter(len(example.support) for example, _ in checked if example.category == "superdense")
    assert set(sizes) <= {1, 2, 3} and sizes[2] + sizes[3] > 0


def test_noun_count_is_exact(checked):
    wrong = [(example.id, count_nouns(example.story)) for example, _ in checked if count_nouns(example.story) != example.noun_count]
    assert not wrong, wrong[:5]


def test_question_only_names_nouns_of_the_story(checked):
    for example, _ in checked:
        assert noun_set(example.question) <= noun_set(example.story), example.id


def test_hops_by_category(checked):
    hops = collections.defaultdict(set)
    for example, verdict in checked:
        hops[example.category].add(verdict.hops)
    assert dict(hops) == {category: {EXPECTED_HOPS[category]} for category in CATEGORIES}


def test_no_answers_are_hard_negatives(checked):
    """A "no" names a place the asked entity really was at earlier, never a stranger to it."""
    noes = [(example, verdict) for example, verdict in checked if not example.answer]
    assert len(noes) * 2 == len(checked)
    for example, verdict in noes:
        assert verdict.asked_place in verdict.history[:-1], example.id
        assert verdict.asked_place != verdict.final_place


def test_exactly_half_yes_in_every_cell(checked):
    for row in cell_stats(example for example, _ in checked):
        assert row["yes"] == row["no"], row


def test_odd_cells_are_off_by_one_at_most():
    for count in (1, 7, 257):
        rows = cell_stats(generate_cell("dense", 8, count, seed=3))
        assert rows == [{"category": "dense", "noun_count": 8, "count": count, "yes": rows[0]["yes"], "no": rows[0]["no"]}]
        assert abs(rows[0]["yes"] - rows[0]["no"]) <= 1


# -- the two axes change what has to be tracked ------------------------------------------------


def test_categories_differ_in_structure(checked):
    by_category = collections.defaultdict(list)
    for example, verdict in checked:
        by_category[example.category].append(verdict)
    clause_counts = {c: collections.Counter(n for v in vs for n in v.clauses_per_sentence) for c, vs in by_category.items()}
    assert set(clause_counts["simple"]) == {1}
    assert max(clause_counts["dense"]) == 2 and clause_counts["dense"][2] > 10 * clause_counts["dense"][1]
    assert max(clause_counts["superdense"]) == 3 and clause_counts["superdense"][3] > 5 * clause_counts["superdense"][2]
    pronouns = {c: sum(v.pronouns for v in vs) for c, vs in by_category.items()}
    assert pronouns["simple"] == pronouns["dense"] == 0 and pronouns["superdense"] > len(by_category["superdense"]) / 4
    kinds = {c: collections.Counter(e.kind for v in vs for e in v.events) for c, vs in by_category.items()}
    assert kinds["simple"]["put"] == kinds["dense"]["put"] == 0
    assert all(any(e.kind == "put" for e in v.events) for v in by_category["superdense"])
    # objects change hands on the way to the answer in dense and superdense stories
    assert kinds["dense"]["give"] > 0 and kinds["superdense"]["give"] > 0


def test_more_nouns_mean_more_to_track(checked):
    for category in CATEGORIES:
        events = {n: np.mean([len(v.events) for e, v in checked if e.category == category and e.noun_count == n]) for n in DEFAULT_NOUN_COUNTS}
        actors = {n: np.mean([len({x.actor for x in v.events}) for e, v in checked if e.category == category and e.noun_count == n]) for n in DEFAULT_NOUN_COUNTS}
        counts = sorted(DEFAULT_NOUN_COUNTS)
        assert all(events[a] < events[b] and actors[a] < actors[b] for a, b in zip(counts, counts[1:])), (category, events, actors)


_PLACE_MENTION = re.compile(r"to the ([a-z]+)")


def _surface_guesses(example, verdict) -> dict[str, bool]:
    """Shortcut answers that read only where places are mentioned, not who went where."""
    sentences = re.findall(r"[^.]+\.", example.story)
    mentioned = _PLACE_MENTION.findall(example.story)
    counts = collections.Counter(mentioned)
    near_entity = [p for s in sentences if re.search(rf"\b{verdict.entity}\b", s) for p in _PLACE_MENTION.findall(s)]
    return {
        "asked place is the last place mentioned": mentioned[-1] == verdict.asked_place,
        "asked place is the most mentioned": counts[verdict.asked_place] == max(counts.values()),
        "asked place is the last one in a sentence naming the entity": bool(near_entity) and near_entity[-1] == verdict.asked_place,
    }


def test_surface_cues_do_not_give_the_answer_away(checked):
    """Place-only shortcuts score near chance. (For simple stories the last place in a sentence
    naming the actor is the actual 1-hop answer, so that one is only checked for the others.)"""
    scores = collections.defaultdict(list)
    for example, verdict in checked:
        if example.noun_count in DEFAULT_NOUN_COUNTS:
            for name, guess in _surface_guesses(example, verdict).items():
                if example.category != "simple" or "entity" not in name:
                    scores[example.category, example.noun_count, name].append(guess == example.answer)
    assert len(scores) == 3 * 2 + 6 * 3
    for (category, noun_count, name), hits in scores.items():
        # 1200 stories a cell: one standard error is about 0.015. The final place and the decoy
        # are named equally often by design, so that cue gets the tighter band.
        low, high = (0.45, 0.55) if "most" in name else (0.38, 0.62)
        assert low <= np.mean(hits) <= high, f"{category}/{noun_count}: '{name}' scores {np.mean(hits):.2f}"


# -- determinism, splits, arguments ------------------------------------------------------------


def test_same_arguments_same_records_different_seeds_differ():
    first = generate_cell("superdense", 15, 50, seed=7, split="val")
    assert first == generate_cell("superdense", 15, 50, seed=7, split="val")
    assert [e.story for e in first] != [e.story for e in generate_cell("superdense", 15, 50, seed=8, split="val")]
    assert [e.story for e in first] != [e.story for e in generate_cell("superdense", 15, 50, seed=7, split="test")]


def test_a_range_in_pieces_equals_the_whole():
    whole = generate_cell("dense", 8, 600, seed=2)
    pieces = generate_cell("dense", 8, 100, seed=2) + generate_cell("dense", 8, 300, seed=2, start_index=100)
    pieces += generate_cell("dense", 8, 200, seed=2, start_index=400)
    assert pieces == whole
    assert [e.id for e in whole[:2]] == ["train-dense-n8-00000", "train-dense-n8-00001"]


def test_files_are_byte_identical_across_runs_and_hash_seeds(tmp_path):
    script = (
        "import hashlib, sys; from qa_core.data.generator import generate_splits; "
        "from qa_core.data.records import write_jsonl; "
        "splits = generate_splits({'train': 90, 'test': 45}, seed=5); "
        "[write_jsonl(f'{sys.argv[1]}/{name}.jsonl', records) for name, records in splits.items()]"
    )
    digests = []
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env)
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()})
    assert digests[0] == digests[1] and len(digests[0]) == 2
    splits = generate_splits({"train": 90, "test": 45}, seed=5)
    write_jsonl(tmp_path / "here.jsonl", splits["train"])
    assert hashlib.sha256((tmp_path / "here.jsonl").read_bytes()).hexdigest() == digests[0]["train.jsonl"]
    assert read_jsonl(tmp_path / "here.jsonl") == splits["train"]


def test_adding_a_category_or_a_noun_count_leaves_other_cells_alone():
    alone = generate_splits({"train": 40, "val": 10}, categories=["dense"], noun_counts=[8], seed=1)
    more = generate_splits({"train": 160, "val": 40}, categories=["simple", "dense"], noun_counts=[8, 15], seed=1)
    for split in ("train", "val"):
        assert alone[split] == [e for e in more[split] if e.category == "dense" and e.noun_count == 8]


def test_splits_are_stratified_and_disjoint():
    progress = []
    splits = generate_splits({"train": 905, "val": 180, "test": 180}, seed=4, progress=progress.append)
    assert sum(progress) == 905 + 180 + 180 and len(progress) >= 27
    cells = {(c, n) for c in CATEGORIES for n in DEFAULT_NOUN_COUNTS}
    for name, records in splits.items():
        rows = cell_stats(records)
        assert {(r["category"], r["noun_count"]) for r in rows} == cells
        counts = [r["count"] for r in rows]
        assert sum(counts) == {"train": 905, "val": 180, "test": 180}[name] and max(counts) - min(counts) <= 1
        assert all(abs(r["yes"] - r["no"]) <= 1 for r in rows)
        order = [(CATEGORIES.index(e.category), e.noun_count) for e in records]
        assert order == sorted(order), "records are ordered by cell"
        assert all(re.fullmatch(rf"{name}-[a-z]+-n\d+-\d{{5}}", e.id) for e in records)
        assert len({e.id for e in records}) == len(records)
    stories = [set(e.story for e in records) for records in splits.values()]
    assert not (stories[0] & stories[1]) and not (stories[0] & stories[2]) and not (stories[1] & stories[2])


def test_per_cell_sizes():
    splits = generate_splits({"train": 6, "test": 2}, categories=["simple", "superdense"], noun_counts=[8, 30], per_cell=True)
    assert [r["count"] for r in cell_stats(splits["train"])] == [6, 6, 6, 6]
    assert [r["count"] for r in cell_stats(splits["test"])] == [2, 2, 2, 2]


def test_a_story_seen_in_an_earlier_split_is_replaced():
    records = generate_cell("simple", 8, 6, seed=0, split="val")
    original = list(records)
    generator._replace_seen(records, {original[0].story, original[3].story}, seed=0, split="val")
    for index, (old, new) in enumerate(zip(original, records)):
        if index in (0, 3):
            assert new.story != old.story
            assert (new.id, new.answer, new.category, new.noun_count) == (old.id, old.answer, old.category, old.noun_count)
            assert check(new.story, new.question).answer == new.answer and count_nouns(new.story) == 8
        else:
            assert new == old


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: generate_cell("hard", 8, 10), "unknown story category 'hard'"),
        (lambda: generate_cell("superdense", 4, 10), "too small for superdense"),
        (lambda: generate_cell("dense", 3, 10), "too small for dense"),
        (lambda: generate_cell("dense", 5, 10), "need at least 6 to be shortcut-free"),
        (lambda: generate_cell("superdense", 7, 10), "need at least 8 to be shortcut-free"),
        (lambda: generate_cell("simple", 8, 10, sentences=0), "sentences must be a positive integer"),
        (lambda: generate_cell("dense", 30, 10, sentences=5), "do not fit in 5 sentences"),
        (lambda: generate_cell("simple", 10_000, 10), "too large"),
        (lambda: generate_cell("simple", 8.5, 10), "must be an integer"),
        (lambda: generate_cell("simple", 8, -1), ">= 0"),
        (lambda: generate_splits({"train": 8}), "too small"),
        (lambda: generate_splits({"train": 90, "test": 0}), "'test' is too small"),
        (lambda: generate_splits({"train": 0}, per_cell=True), "per cell"),
        (lambda: generate_splits({"train": -5}), "non-negative"),
        (lambda: generate_splits({"train": 90}, categories=["simple", "nope"]), "unknown story category"),
        (lambda: generate_splits({"train": 90}, noun_counts=[]), "at least one"),
    ],
)
def test_bad_arguments_raise_config_error(call, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        call()


def test_noun_count_limits_are_usable():
    for category in CATEGORIES:
        assert min_noun_count(category) <= 8 and max_noun_count(category) >= 50
        for noun_count in (min_noun_count(category), max_noun_count(category)):
            for example in generate_cell(category, noun_count, 20, seed=9):
                assert count_nouns(example.story) == noun_count
                assert check(example.story, example.question).answer == example.answer
    assert generate_cell("dense", np.int64(8), 2) == generate_cell("dense", 8, 2)


# -- vocabulary and small API pieces -----------------------------------------------------------


def test_lexicon_is_big_disjoint_and_one_word_each():
    assert len(NAMES) >= 60 and len(OBJECTS) >= 60 and len(PLACES) >= 40 and len(CONTAINERS) >= 20
    lowered = [w.lower() for words in (NAMES, OBJECTS, CONTAINERS, PLACES) for w in words]
    assert len(set(lowered)) == len(lowered), "no word in two lists, or twice in one"
    assert all(re.fullmatch(r"[A-Z][a-z]+", name) for name in NAMES)
    assert all(re.fullmatch(r"[a-z]+", w) for words in (OBJECTS, CONTAINERS, PLACES) for w in words)
    assert not set(lowered) & FUNCTION_WORDS


def test_noun_counter_rule():
    assert noun_set("Mary went to the kitchen. Then she took an apple.") == {"mary", "kitchen", "apple"}
    assert noun_set("Following that Mary's dog saw a Cat. The cat is in the hallway?") == {"mary", "cat", "hallway"}
    assert count_nouns("Is it here? Yes.") == 0


def test_cell_stats_order_and_counts():
    examples = generate_cell("superdense", 8, 4) + generate_cell("simple", 15, 2) + generate_cell("simple", 8, 3)
    assert [(r["category"], r["noun_count"], r["count"]) for r in cell_stats(examples)] == [
        ("simple", 8, 3),
        ("simple", 15, 2),
        ("superdense", 8, 4),
    ]


def test_public_constants():
    assert CATEGORIES == ("simple", "dense", "superdense")
    assert DEFAULT_NOUN_COUNTS == (8, 15, 30)
    assert set(CATEGORY_DESCRIPTIONS) == set(CATEGORIES) and all("hop" in d for d in CATEGORY_DESCRIPTIONS.values())


def test_checker_rejects_what_breaks_the_world():
    """The checker is only worth its agreement if it refuses impossible stories."""
    with pytest.raises(StoryError, match="does not hold"):
        check("Mary went to the kitchen. Mary dropped the apple.", "Is Mary in the kitchen?")
    with pytest.raises(StoryError, match="not in the"):
        check("Mary went to the kitchen. John went to the garden. Mary took the apple. Mary gave the apple to John.", "Is the apple in the garden?")
    with pytest.raises(StoryError, match="cannot take"):
        check("Mary went to the kitchen and took the apple. John went to the kitchen and took the apple.", "Is Mary in the kitchen?")
    with pytest.raises(StoryError, match="cannot put"):
        check("Mary went to the kitchen and took the apple. Mary put the apple in the box.", "Is Mary in the kitchen?")
    with pytest.raises(StoryError, match="unknown predicate"):
        check("Mary flew to the kitchen.", "Is Mary in the kitchen?")
    verdict = check(
        "Mary went to the kitchen and took the box. Mary took the apple, put it in the box and went to the garden.",
        "Is the apple in the kitchen?",
    )
    assert (verdict.answer, verdict.hops, verdict.history, verdict.pronouns) == (False, 3, ["kitchen", "garden"], 1)
