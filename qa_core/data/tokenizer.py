"""Word-level tokenizer, vocabulary and the one-time encoding of records into numpy arrays.

Tokens are lower-case words and single punctuation marks. Ids 0, 1 and 2 are PAD, UNK and SEP.
A record is encoded as ``story SEP question``; when that is longer than ``max_len`` the *start* of
the story is dropped, keeping the question and the most recent sentences, which decide most
answers. The vocabulary is built from the training split only and saved with the run and its
checkpoints (its sha256 is checked when a checkpoint is loaded).

Encoding is vectorised: all records are joined into one string, split by one regex pass, mapped to
ids by one ``map`` over a dict, and scattered into the padded matrix by numpy index arithmetic. There
is no Python loop per record beyond building the joined text.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..fsutil import atomic_write
from ..types import EncodedSplit, length_bucket
from .records import Example

PAD, UNK, SEP = 0, 1, 2
SPECIAL_TOKENS = ("<pad>", "<unk>", "<sep>")

# Control characters mark the question and record boundaries inside the joined corpus; the
# pattern's second branch (any single non-space, non-word character) matches them as tokens.
_QUESTION_MARK = "\x00"
_RECORD_MARK = "\x01"
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_CONTROL = re.compile(r"[\x00\x01]")
#: Records tokenised at once by :func:`encode` (bounds its memory; the result does not depend on
#: it). Encoding 200k generated records: 20,000 -> 4.1 s and 252 MiB above the output arrays;
#: 1,000 -> 3.1 s and 11 MiB (the chunk's text and token strings stay in the CPU cache).
ENCODE_CHUNK = 1_000


#: Punctuation the fast path splits off by itself; any other non-word character (an apostrophe,
#: a dash, a non-ASCII letter) sends the text through the regex.
_COMMON_MARKS = ".,?!;:" + _QUESTION_MARK + _RECORD_MARK
_UNCOMMON = re.compile(r"[^\sa-z0-9" + re.escape(_COMMON_MARKS) + "]")


def _split_tokens(lowered: str) -> list[str]:
    """``_TOKEN.findall(lowered)``, 1.5x faster on text of words, spaces and common punctuation.

    There, every token is a run of ``[a-z0-9]`` or one mark, so spacing out the marks and calling
    ``str.split`` gives the same list (both split on exactly ``str.isspace`` characters). One
    scan for anything else decides; such text takes the regex.
    """
    if _UNCOMMON.search(lowered) is not None:
        return _TOKEN.findall(lowered)
    for mark in _COMMON_MARKS:
        if mark in lowered:
            lowered = lowered.replace(mark, f" {mark} ")
    return lowered.split()


def _clean(text: str) -> str:
    """The text with our control marks blanked (they may not appear in a record's own text)."""
    return _CONTROL.sub(" ", text) if _QUESTION_MARK in text or _RECORD_MARK in text else text


def tokenize(text: str) -> list[str]:
    """Lower-case word and punctuation tokens: ``"Is Mary here?"`` -> ``['is', 'mary', 'here', '?']``."""
    return _split_tokens(_clean(text).lower())


_VOCAB_CHUNK = 1_000


def _corpus_tokens(examples: Sequence[Example]) -> list[str]:
    """Tokens of every record, story then question marker then question, records separated by a marker."""
    text = _RECORD_MARK.join(f"{_clean(e.story)} {_QUESTION_MARK} {_clean(e.question)}" for e in examples)
    return _split_tokens(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {token: i for i, token in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, examples: Sequence[Example], min_freq: int = 1) -> "Vocabulary":
        """From the training records: most frequent first, ties alphabetical (deterministic)."""
        # Counted a chunk of records at a time: one token list of the whole corpus held ~11 KiB
        # per record at its peak (551 MiB for 50k records; benchmarks/scaling.py). Same counts.
        counts: Counter[str] = Counter()
        for start in range(0, len(examples), _VOCAB_CHUNK):
            counts.update(_corpus_tokens(examples[start : start + _VOCAB_CHUNK]))
        counts.pop(_QUESTION_MARK, None)
        counts.pop(_RECORD_MARK, None)
        words = sorted((w for w, c in counts.items() if c >= min_freq and w not in SPECIAL_TOKENS), key=lambda w: (-counts[w], w))
        return cls(SPECIAL_TOKENS + tuple(words))

    @property
    def sha256(self) -> str:
        return hashlib.sha256("\n".join(self.tokens).encode("utf-8")).hexdigest()

    def to_json(self) -> dict:
        return {"format": 1, "specials": {"pad": PAD, "unk": UNK, "sep": SEP}, "sha256": self.sha256, "tokens": list(self.tokens)}

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        return atomic_write(path, json.dumps(self.to_json(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Vocabulary":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            vocab = cls(tuple(data["tokens"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError([f"{path}: vocabulary: cannot read ({exc})"]) from None
        if vocab.tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS or data.get("sha256", vocab.sha256) != vocab.sha256:
            raise DataError([f"{path}: vocabulary: corrupt (special tokens or checksum do not match)"])
        return vocab


@dataclass(frozen=True)
class EncodeStats:
    records: int
    truncated: int  # records longer than max_len (their story's start was dropped)
    longest: int
    lost: int = 0  # records that lost a supporting sentence (without ``support``: any story text)
    lost_by_cell: dict[str, int] = field(default_factory=dict)  # "category/noun_count" -> lost


def encode(
    examples: Sequence[Example],
    vocab: Vocabulary,
    max_len: int,
    name: str = "",
    category_names: Sequence[str] | None = None,
) -> tuple[EncodedSplit, EncodeStats]:
    """Encode records once into padded int32 arrays (see the module docstring)."""
    if max_len < 2:
        raise ValueError(f"max_len must be at least 2, got {max_len}")
    if category_names is None:
        category_names = sorted({e.category for e in examples})
    category_code = {cat: i for i, cat in enumerate(category_names)}
    n = len(examples)

    lookup = dict(vocab.index)
    lookup[_QUESTION_MARK] = SEP
    lookup[_RECORD_MARK] = -1
    matrix = np.zeros((n, max_len), dtype=np.int32)
    lengths = np.zeros(n, dtype=np.int64)
    touched = np.zeros(n, dtype=np.int64)
    sentences = np.zeros(n, dtype=np.int64)
    dropped = np.zeros(n, dtype=np.int64)
    end_ids = np.array([vocab.index[mark] for mark in ".!?" if mark in vocab.index], dtype=np.int32)
    # Records are tokenised a chunk at a time: the token list holds one Python string per token
    # (~5 KiB per record), so tokenising 1M records at once needs ~5 GiB; chunks bound that to
    # ~10 MiB and give the same arrays.
    for begin in range(0, n, ENCODE_CHUNK):
        end = min(begin + ENCODE_CHUNK, n)
        chunk = _encode_rows(examples[begin:end], lookup, max_len, matrix[begin:end], end_ids)
        lengths[begin:end], touched[begin:end], sentences[begin:end], dropped[begin:end] = chunk
    kept = np.minimum(lengths, max_len)
    # A record stays answerable when the cut spared its earliest supporting sentence; without
    # ``support`` (-1) any cut into the story counts as lost, and an empty support never is.
    first_support = np.fromiter((_first_support(e) for e in examples), dtype=np.int64, count=n)
    lost = np.where(first_support >= 0, first_support < touched, (first_support == -1) & (touched > 0))

    split = EncodedSplit(
        name=name,
        tokens=matrix,
        lengths=kept.astype(np.int32),
        labels=np.fromiter((e.answer for e in examples), dtype=np.float32, count=n),
        categories=np.fromiter((category_code[e.category] for e in examples), dtype=np.int32, count=n),
        noun_counts=np.fromiter((e.noun_count for e in examples), dtype=np.int32, count=n),
        category_names=tuple(category_names),
        answerable=~lost,
        length_buckets=length_bucket(sentences),
        support=_row_support(examples, dropped),
    )
    by_cell: dict[str, int] = {}
    for i in np.flatnonzero(lost).tolist():
        cell = f"{examples[i].category}/{examples[i].noun_count}"
        by_cell[cell] = by_cell.get(cell, 0) + 1
    stats = EncodeStats(n, int((lengths > max_len).sum()), int(lengths.max()) if n else 0, int(lost.sum()), by_cell)
    return split, stats


def _row_support(examples: Sequence[Example], dropped: np.ndarray) -> np.ndarray | None:
    """Each record's supporting sentences as indices into its encoded row (sentence 0 = the
    row's first, maybe partly cut), -1 padded to the largest support; sentences the cut dropped
    are -1 too. None when no record carries ``support``."""
    if all(e.support is None for e in examples):
        return None
    sizes = np.fromiter((len(e.support or ()) for e in examples), dtype=np.int64, count=len(examples))
    out = np.full((len(examples), max(1, int(sizes.max(initial=0)))), -1, dtype=np.int16)
    flat = np.fromiter((i for e in examples for i in (e.support or ())), dtype=np.int64, count=int(sizes.sum()))
    rows = np.repeat(np.arange(len(examples)), sizes)
    cols = np.arange(flat.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    relative = flat - dropped[rows]
    out[rows, cols] = np.where(relative >= 0, relative, -1)
    return out


def _first_support(example: Example) -> int:
    """The earliest supporting sentence; -1 without support, a large number for an empty one."""
    if example.support is None:
        return -1
    return example.support[0] if example.support else np.iinfo(np.int64).max


def _encode_rows(
    examples: Sequence[Example], lookup: dict[str, int], max_len: int, out: np.ndarray, end_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write the ids of ``examples`` into ``out`` (zeroed rows); returns their untruncated
    lengths, per record how many story sentences the cut touched (0 when nothing was cut),
    each story's sentence count (the sentence ends before SEP), and how many sentences it
    dropped whole (their end lies before the row's first token)."""
    tokens = _corpus_tokens(examples)
    ids = np.fromiter(map(lookup.get, tokens, repeat(UNK)), dtype=np.int32, count=len(tokens))
    bounds = np.flatnonzero(ids == -1)
    ends = np.append(bounds, ids.size)
    starts = np.insert(bounds + 1, 0, 0)
    lengths = ends - starts
    kept = np.minimum(lengths, max_len)
    first = ends - kept  # keep the last `kept` tokens: the question and the end of the story
    rows = np.repeat(np.arange(len(examples)), kept)
    cols = np.arange(int(kept.sum())) - np.repeat(np.cumsum(kept) - kept, kept)
    out[rows, cols] = ids[np.repeat(first, kept) + cols]
    # Sentence k starts after the k-th sentence end; the cut (tokens before `first`) touches
    # sentence k when it starts before `first`: one more than the ends strictly before first - 1.
    ends_at = np.flatnonzero(np.isin(ids, end_ids))
    cut = first - starts
    before = np.searchsorted(ends_at, first - 1, "left") - np.searchsorted(ends_at, starts, "left")
    touched = np.where(cut > 0, before + 1, 0)
    question_at = np.flatnonzero(ids == SEP)
    sentences = np.searchsorted(ends_at, question_at, "left") - np.searchsorted(ends_at, starts, "left")
    dropped = np.searchsorted(ends_at, first, "left") - np.searchsorted(ends_at, starts, "left")
    return lengths, touched, sentences, dropped


def sequence_lengths(examples: Sequence[Example]) -> np.ndarray:
    """Encoded length of each record before truncation (story + SEP + question)."""
    tokens = np.array([t == _RECORD_MARK for t in _corpus_tokens(examples)], dtype=bool)
    bounds = np.flatnonzero(tokens)
    ends = np.append(bounds, tokens.size)
    starts = np.insert(bounds + 1, 0, 0)
    return ends - starts
