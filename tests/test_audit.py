"""`qa data audit`: the cue battery fails the old generator's output and passes the new one's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from qa_core.data.audit import CUES, audit, wilson
from qa_core.data.generator import generate_splits
from qa_core.data.records import Example, read_jsonl, write_jsonl

OLD_SAMPLE = Path(__file__).parent / "data" / "generator_v1_sample.jsonl"  # written by GENERATOR_VERSION 1


def test_the_old_generator_fails_at_4_and_8_nouns():
    report = audit(read_jsonl(OLD_SAMPLE))
    flagged = {(r.category, r.noun_count): r.cue for r in report.shortcuts}
    assert {("simple", 4), ("dense", 4), ("superdense", 5)} <= set(flagged)
    assert {("simple", 8), ("dense", 8)} <= set(flagged)
    last = {(r.category, r.noun_count): r.accuracy for r in report.results if r.cue == "last_place"}
    assert last["simple", 4] > 0.9 and last["dense", 4] > 0.9  # "yes iff the asked place is named last"


def test_fresh_data_passes_and_the_cli_says_so(tmp_path):
    splits = generate_splits({"train": 500, "test": 500}, noun_counts=(6, 8, 15), categories=("simple", "dense"), per_cell=True, seed=3)
    report = audit(splits["test"], fit_on=splits["train"])
    assert {r.cue for r in report.results} == set(CUES) and len(report.results) == 6 * len(CUES)
    assert not report.shortcuts, [(r.category, r.noun_count, r.cue, r.accuracy) for r in report.shortcuts]
    for name, records in splits.items():
        write_jsonl(tmp_path / f"{name}.jsonl", records)
    passed = subprocess.run([sys.executable, "-m", "qa_core.cli", "data", "audit", str(tmp_path), "--strict"], capture_output=True, text=True)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "verdict: no cue beats chance" in passed.stdout and "fitted on train (3000 records)" in passed.stdout
    failed = subprocess.run([sys.executable, "-m", "qa_core.cli", "data", "audit", str(OLD_SAMPLE), "--strict"], capture_output=True, text=True)
    assert failed.returncode == 1 and "SHORTCUT" in failed.stdout and "simple-4" in failed.stdout


def test_a_planted_cue_is_found_and_a_coin_is_not():
    """A story that names the answer's place last is caught; labels that are coin flips are not."""
    rng = np.random.default_rng(0)
    places = ["kitchen", "garden", "hall", "attic"]
    records = []
    for i in range(600):
        first, second = rng.choice(places, 2, replace=False)
        answer = bool(rng.random() < 0.5)
        asked = second if answer else first
        story = f"Mary went to the {first}. John went to the {second}."
        records.append(Example(f"r{i}", story, f"Is Mary in the {asked}?", answer, "planted", 4))
    report = audit(records)
    assert {r.cue for r in report.shortcuts} >= {"last_place", "first_place", "learned"}
    coin = [Example(e.id, e.story, e.question, bool(rng.random() < 0.5), e.category, e.noun_count) for e in records]
    assert not audit(coin).shortcuts


def test_wilson_matches_the_textbook_value():
    low, high = wilson(81, 263)  # Wilson's interval for 81/263 at 95% (statsmodels: 0.2553, 0.3662)
    assert abs(low - 0.2553) < 5e-4 and abs(high - 0.3662) < 5e-4
