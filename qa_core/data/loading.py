"""Finding and reading data: one file in any supported format, or a data directory's splits.

Two formats are supported, told apart by their content (not their extension):

* JSONL, the native format (:mod:`qa_core.data.records`): one JSON object per line;
* bAbI task files (:mod:`qa_core.data.babi`): numbered lines, yes/no tasks only.

A data directory holds its splits under fixed names::

    train.jsonl   val.jsonl | valid.jsonl | dev.jsonl   test.jsonl
    *_train.txt   *_valid.txt | *_val.txt | *_dev.txt   *_test.txt     (bAbI, one file per task)

Several bAbI task files of one split (qa6_..._train.txt, qa17_..._train.txt) are concatenated
in task order. Train and test are required; validation is optional (the trainer then carves a
stratified slice out of train, see :mod:`qa_core.data.splits`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from ..errors import ConfigError, DataError
from .babi import looks_like_babi, parse_babi, task_category
from .records import Example, parse_jsonl, read_text

Format = Literal["auto", "jsonl", "babi"]
FORMATS = ("auto", "jsonl", "babi")

#: Split name -> the words a file name may use for it, the canonical one first.
SPLIT_NAMES = {"train": ("train",), "val": ("val", "valid", "dev"), "test": ("test",)}
REQUIRED_SPLITS = ("train", "test")

def sniff_format(text: str, path: Path) -> Literal["jsonl", "babi"]:
    """Which reader ``text`` needs, from its first non-empty line. Raises DataError if neither."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            return "jsonl"
        if looks_like_babi(line):
            return "babi"
        raise DataError(
            [
                f"{path}:{number}: file: unknown format: expected JSON object lines (JSONL) "
                f"or numbered bAbI lines, got {line.strip()[:40]!r}"
            ]
        )
    return "jsonl"  # empty: let the JSONL reader say "no records"


def detect_format(path: str | os.PathLike[str]) -> Literal["jsonl", "babi"]:
    """Which reader the file at ``path`` needs. Raises DataError if neither."""
    return sniff_format(read_text(path), Path(path))


def read_examples(path: str | os.PathLike[str], format: Format = "auto") -> list[Example]:
    """Read one data file as JSONL or bAbI; ``auto`` decides from the content. The file is read
    once: sniffing and parsing share the text."""
    if format not in FORMATS:
        raise ConfigError(f"unknown data format {format!r}; expected one of: {', '.join(FORMATS)}")
    path = Path(path)
    text = read_text(path)
    if format == "auto":
        format = sniff_format(text, path)
    return parse_babi(text, path, task_category(path)) if format == "babi" else parse_jsonl(text, path)


def find_split_files(directory: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """The files of each split present in ``directory`` (train, val, test order; empty ones left out).

    Raises ConfigError when the directory is missing or its files are ambiguous: JSONL and bAbI
    files mixed, or two JSONL files for one split (val.jsonl and dev.jsonl).
    """
    directory = Path(directory)
    if not directory.is_dir():
        what = "not a directory" if directory.exists() else "not found"
        raise ConfigError(f"data directory {directory}: {what}")
    names = sorted(entry.name for entry in directory.iterdir() if entry.is_file())
    found: dict[str, list[Path]] = {}
    jsonl_used: list[str] = []
    babi_used: list[str] = []
    for split, words in SPLIT_NAMES.items():
        jsonl = [f"{word}.jsonl" for word in words if f"{word}.jsonl" in names]
        if len(jsonl) > 1:
            raise ConfigError(f"data directory {directory}: {' and '.join(jsonl)} are both {split} files; keep one")
        babi = sorted(
            (name for name in names for word in words if name.endswith(f"_{word}.txt")),
            key=_natural_key,
        )
        jsonl_used += jsonl
        babi_used += babi
        if jsonl or babi:
            found[split] = [directory / name for name in jsonl + babi]
    if jsonl_used and babi_used:
        raise ConfigError(
            f"data directory {directory}: mixes JSONL ({', '.join(jsonl_used)}) and bAbI files "
            f"({', '.join(babi_used)}); put them in separate directories"
        )
    return found


def read_dir(directory: str | os.PathLike[str]) -> dict[str, list[Example]]:
    """Read a data directory's splits: {"train": [...], "val": [...], "test": [...]}.

    ``val`` is absent when the directory has no validation file. A missing train or test split
    is a ConfigError naming the directory and the file names expected.
    """
    files = find_split_files(directory)
    missing = [split for split in REQUIRED_SPLITS if split not in files]
    if missing:
        expected = "; ".join(f"{split}: {_expected_names(split)}" for split in missing)
        raise ConfigError(f"data directory {directory}: no {' or '.join(missing)} split found (expected {expected})")
    splits: dict[str, list[Example]] = {}
    problems: list[str] = []
    for split, paths in files.items():
        examples: list[Example] = []
        first_file: dict[str, Path] = {}  # id -> the file it came from
        for path in paths:
            try:
                records = read_examples(path)
            except DataError as exc:  # report every bad file, not just the first
                problems += exc.problems
                continue
            # The readers make ids unique within a file; the files of a split must not collide.
            for record in records:
                if first_file.setdefault(record.id, path) != path:
                    problems.append(f"{path}: id: duplicate id {record.id!r} (also in {first_file[record.id]})")
            examples += records
        splits[split] = examples
    if problems:
        raise DataError(problems)
    return splits


def _expected_names(split: str) -> str:
    words = SPLIT_NAMES[split]
    return " or ".join([f"{word}.jsonl" for word in words] + [f"*_{word}.txt" for word in words])


def _natural_key(name: str) -> list[int | str]:
    """qa6 before qa17: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
