"""Tokenizer, vocabulary and the one-time numpy encoding."""

from __future__ import annotations

import numpy as np
import pytest

from qa_core.data.records import Example
from qa_core.data.tokenizer import PAD, SEP, UNK, Vocabulary, encode, tokenize


def ex(story, question, answer=True, category="simple", nouns=2, id="x"):
    return Example(id, story, question, answer, category, nouns)


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("Mary went to the Kitchen. Is Mary there?") == ["mary", "went", "to", "the", "kitchen", ".", "is", "mary", "there", "?"]


def test_vocabulary_comes_from_training_records_only_and_round_trips(tmp_path):
    train = [ex("Mary went to the kitchen.", "Is Mary in the kitchen?"), ex("John took the apple.", "Does John have the apple?")]
    vocab = Vocabulary.build(train)
    assert vocab.tokens[:3] == ("<pad>", "<unk>", "<sep>")
    assert "garden" not in vocab.index
    assert vocab.tokens[3] == "the"  # most frequent first
    path = vocab.save(tmp_path / "vocab.json")
    again = Vocabulary.load(path)
    assert again == vocab and again.sha256 == vocab.sha256


def test_encoding_pads_marks_the_question_and_maps_unknown_words():
    vocab = Vocabulary.build([ex("Mary went to the kitchen.", "Is Mary in the kitchen?")])
    split, stats = encode([ex("Mary went to the garden.", "Is Mary in the garden?", answer=False, category="dense", nouns=7)], vocab, 20, "val", ("simple", "dense"))
    row = split.tokens[0]
    length = split.lengths[0]
    assert length == 13 and stats.truncated == 0
    assert (row[length:] == PAD).all() and (row[:length] != PAD).all()
    assert row[6] == SEP
    garden = [i for i in range(length) if row[i] == UNK]
    assert garden == [4, 11]
    assert split.labels.tolist() == [0.0] and split.categories.tolist() == [1] and split.noun_counts.tolist() == [7]
    assert split.tokens.dtype == np.int32 and split.lengths.dtype == np.int32


def test_truncation_keeps_the_question_and_the_end_of_the_story():
    story = " ".join(f"Mary went to the room{i}." for i in range(10))
    train = [ex(story, "Is Mary in the room9?")]
    vocab = Vocabulary.build(train)
    split, stats = encode(train, vocab, 12, "train")
    assert stats.truncated == 1 and stats.longest > 12
    words = [vocab.tokens[i] for i in split.tokens[0][: split.lengths[0]]]
    assert words == ["went", "to", "the", "room9", ".", "<sep>", "is", "mary", "in", "the", "room9", "?"]


@pytest.mark.parametrize("chunk", [1000, 7, 1])
def test_encoding_many_records_matches_one_at_a_time(chunk, monkeypatch):
    from qa_core.data import tokenizer

    monkeypatch.setattr(tokenizer, "ENCODE_CHUNK", chunk)  # chunk edges must not shift any row
    rng = np.random.default_rng(0)
    words = ["Mary", "John", "kitchen", "garden", "went", "to", "the", "apple", "took"]
    records = [ex(" ".join(rng.choice(words, rng.integers(1, 30))) + ".", "Is Mary here?", id=str(i)) for i in range(200)]
    vocab = Vocabulary.build(records[:100])
    together, _ = encode(records, vocab, 16, "x", ("simple",))
    for i in (0, 6, 7, 57, 199):
        alone, _ = encode([records[i]], vocab, 16, "x", ("simple",))
        assert (alone.tokens[0] == together.tokens[i]).all() and alone.lengths[0] == together.lengths[i]


def test_max_len_too_small_is_refused():
    vocab = Vocabulary.build([ex("a b", "c?")])
    with pytest.raises(ValueError):
        encode([ex("a b", "c?")], vocab, 1)


@pytest.mark.parametrize("seed", range(4))
def test_the_fast_split_gives_the_regex_tokens_on_any_text(seed, monkeypatch):
    """_split_tokens takes a str.split path for plain text and the regex otherwise; on random text
    mixing every kind of character (odd whitespace, apostrophes, marks, non-ASCII) both must give
    ``_TOKEN.findall``'s tokens, and plain text must really take the fast path."""
    from qa_core.data import tokenizer

    alphabet = list("abcxyz019 .,?!;:") + ["'", "-", "\t", "\n", "\x1c", "\x0b", "\xa0", "\u2028", "\u3000", "é", "ß", "\x00", "\x01", "İ"]
    regex = tokenizer._TOKEN

    class CountingRegex:
        calls = 0

        def findall(self, text):
            self.calls += 1
            return regex.findall(text)

    counting = CountingRegex()
    monkeypatch.setattr(tokenizer, "_TOKEN", counting)
    rng = np.random.default_rng(seed)
    for size in (0, 1, 5, 40, 400):
        for plain in (True, False):
            pool = alphabet[:16] if plain else alphabet
            text = "".join(rng.choice(pool, size)).lower()
            counting.calls = 0
            assert tokenizer._split_tokens(text) == regex.findall(text), repr(text)
            if plain:
                assert counting.calls == 0, "plain text must take the str.split path"
    # whitespace the fast path must split on exactly as the regex does
    odd = "a\x1cb\x1dc\x1ed\x1fe\x85f\xa0g\u2028h\u3000i.j"
    counting.calls = 0
    assert tokenizer._split_tokens(odd) == regex.findall(odd)
    assert counting.calls == 0


def test_vocabulary_build_counts_in_chunks_same_vocabulary_and_bounded_memory(monkeypatch):
    """One token list of the whole corpus peaked at ~11 KiB per record (551 MiB for 50k)."""
    import pathlib

    from qa_core.data import tokenizer
    from qa_core.data.generator import generate_splits

    examples = generate_splits({"train": 20_000}, seed=5)["train"]
    status = pathlib.Path("/proc/self/status")
    if not status.exists():
        pytest.skip("needs Linux /proc for the peak-memory reading")

    def kib(field):
        return next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith(field + ":"))

    pathlib.Path("/proc/self/clear_refs").write_text("5")
    before = kib("VmRSS")
    chunked = tokenizer.Vocabulary.build(examples)
    grown_mib = (kib("VmHWM") - before) / 1024
    assert grown_mib < 80, f"Vocabulary.build of 20k records grew the peak RSS by {grown_mib:.0f} MiB"
    monkeypatch.setattr(tokenizer, "_VOCAB_CHUNK", len(examples))  # the whole corpus at once
    assert tokenizer.Vocabulary.build(examples).tokens == chunked.tokens
