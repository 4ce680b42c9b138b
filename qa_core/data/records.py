"""Records: the one shape every reader produces and every consumer reads.

An :class:`Example` is one story, one yes/no question about it and the answer, tagged with the two
difficulty axes: its category and its noun count. JSONL is the native file format, one record per
line::

    {"id": "s1", "story": "Mary went to the kitchen.", "question": "Is Mary in the kitchen?",
     "answer": "yes", "category": "simple", "noun_count": 2}

Reading validates every line and reports *all* bad records at once, each as
``file:line: field: problem``, through :class:`~qa_core.errors.DataError`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import DataError
from ..fsutil import NotAFile, atomic_write, read_bytes_bounded
from .nouns import count_nouns

ANSWER_WORDS = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
DEFAULT_CATEGORY = "unknown"
#: A record longer than this is refused: it is a broken file, not a story.
MAX_LINE_BYTES = 1 << 20
FIELDS = ("id", "story", "question", "answer", "category", "noun_count", "support")
#: Where one sentence of a story ends: ``.``, ``!`` or ``?`` followed by space or the end.
_SENTENCE_END = re.compile(r"[.!?](?:\s+|$)")
#: A data file larger than this is refused before it is read (the whole text is held in memory).
MAX_FILE_BYTES = 2 << 30
#: noun_count is encoded as int32.
MAX_NOUN_COUNT = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    story: str
    question: str
    answer: bool
    category: str = DEFAULT_CATEGORY
    noun_count: int = 0
    #: Indices (0-based, increasing) of the story sentences the answer needs; None when unknown.
    support: tuple[int, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["answer"] = "yes" if self.answer else "no"
        if self.support is None:
            del record["support"]
        else:
            record["support"] = list(self.support)
        return record


def sentence_count(story: str) -> int:
    """How many sentences a story has (each ends with '.', '!' or '?'; a last one without a mark counts)."""
    ends = len(_SENTENCE_END.findall(story.strip()))
    return ends + (1 if story.strip() and story.strip()[-1] not in ".!?" else 0)


def check_support(value: Any, story: str) -> tuple[int, ...]:
    """The support field as a tuple, or ValueError saying what is wrong with it."""
    if not isinstance(value, list):
        raise ValueError(f"expected a list of sentence indices, got {type(value).__name__}")
    if any(isinstance(i, bool) or not isinstance(i, int) for i in value):
        raise ValueError(f"expected integer sentence indices, got {value!r}")
    if any(i < 0 for i in value) or any(a >= b for a, b in zip(value, value[1:])):
        raise ValueError(f"expected increasing indices >= 0 (story order, no repeats), got {value!r}")
    count = sentence_count(story)
    if value and value[-1] >= count:
        raise ValueError(f"index {value[-1]} is past the story's {count} sentence(s) (indices start at 0)")
    return tuple(value)


def parse_answer(value: Any) -> bool:
    """yes/no/true/false/1/0 in any case, JSON booleans and the integers 0 and 1."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ANSWER_WORDS:
        return ANSWER_WORDS[value.strip().lower()]
    raise ValueError(f"expected yes/no/true/false/1/0, got {value!r}")


def example_from_dict(obj: Any, where: str, problems: list[str]) -> Example | None:
    """Validate one decoded JSON value; append ``where: field: problem`` lines on failure."""
    if not isinstance(obj, dict):
        problems.append(f"{where}: record: expected a JSON object, got {type(obj).__name__}")
        return None
    bad = len(problems)
    for name in ("story", "question"):
        value = obj.get(name)
        if value is None:
            problems.append(f"{where}: {name}: missing")
        elif not isinstance(value, str):
            problems.append(f"{where}: {name}: expected a string, got {type(value).__name__}")
        elif not value.strip():
            problems.append(f"{where}: {name}: empty")
    answer = None
    if "answer" not in obj:
        problems.append(f"{where}: answer: missing")
    else:
        try:
            answer = parse_answer(obj["answer"])
        except ValueError as exc:
            problems.append(f"{where}: answer: {exc}")
    record_id = obj.get("id")
    if record_id is not None and not isinstance(record_id, (str, int)) or isinstance(record_id, bool):
        problems.append(f"{where}: id: expected a string or an integer, got {type(record_id).__name__}")
    category = obj.get("category", DEFAULT_CATEGORY)
    if category is None:
        category = DEFAULT_CATEGORY
    if not isinstance(category, str) or not category.strip():
        problems.append(f"{where}: category: expected a non-empty string, got {category!r}")
    noun_count = obj.get("noun_count")
    if noun_count is not None and (
        isinstance(noun_count, bool) or not isinstance(noun_count, int) or not 0 <= noun_count <= MAX_NOUN_COUNT
    ):
        too_big = isinstance(noun_count, int) and not isinstance(noun_count, bool) and noun_count > MAX_NOUN_COUNT
        limit = f" up to {MAX_NOUN_COUNT}" if too_big else ""
        problems.append(f"{where}: noun_count: expected a non-negative integer{limit}, got {noun_count!r}")
    support = obj.get("support")
    if support is not None and isinstance(obj.get("story"), str):
        try:
            support = check_support(support, obj["story"])
        except ValueError as exc:
            problems.append(f"{where}: support: {exc}")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        problems.append(f"{where}: {unknown[0]}: unknown field (expected {', '.join(FIELDS)})")
    if len(problems) > bad:
        return None
    story = obj["story"]
    return Example(
        id=str(record_id) if record_id is not None else "",
        story=story,
        question=obj["question"],
        answer=answer,  # type: ignore[arg-type]
        category=category.strip(),
        noun_count=count_nouns(story) if noun_count is None else noun_count,
        support=support,
    )


def read_text(path: str | os.PathLike[str]) -> str:
    """A data file's text: UTF-8 (a BOM allowed). Missing, directory, unreadable or undecodable
    files raise DataError naming the file (and the line of the first bad byte)."""
    path = Path(path)
    raw = _read_bytes(path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError([f"{path}:{line}: file: not UTF-8 text (byte 0x{raw[exc.start]:02x})"]) from None


def read_jsonl(path: str | os.PathLike[str]) -> list[Example]:
    """Read and validate a JSONL file. Raises DataError listing every bad line."""
    return parse_jsonl(read_text(path), Path(path))


def parse_jsonl(text: str, path: Path) -> list[Example]:
    """Validate JSONL text read from ``path`` (named in every problem line)."""
    problems: list[str] = []
    examples: list[Example] = []
    # split("\n"), not splitlines(): U+2028, U+2029 and U+0085 are valid raw inside a JSON string.
    # A raw CR cannot be inside a JSON string, so CRLF and CR-only endings are line ends.
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        if len(line) > MAX_LINE_BYTES:
            problems.append(f"{where}: record: line of {len(line):,} characters, over the {MAX_LINE_BYTES:,} limit")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            # some of json's messages end in "at" already ("Unterminated string starting at")
            problems.append(f"{where}: json: {exc.msg}{'' if exc.msg.endswith(' at') else ' at'} column {exc.colno}")
            continue
        example = example_from_dict(obj, where, problems)
        if example is not None:
            if not example.id:
                example = _with_id(example, f"{path.stem}-{number}")
            examples.append(example)
    if not examples and not problems:
        problems.append(f"{path}:1: file: no records")
    check_unique_ids(examples, path, problems)
    if problems:
        raise DataError(problems)
    return examples


def _with_id(example: Example, record_id: str) -> Example:
    return dataclasses.replace(example, id=record_id)


def check_unique_ids(examples: Iterable[Example], path: Path, problems: list[str]) -> None:
    seen: dict[str, int] = {}
    for index, example in enumerate(examples):
        if example.id in seen:
            problems.append(f"{path}: id: duplicate id {example.id!r} (records {seen[example.id] + 1} and {index + 1})")
        else:
            seen[example.id] = index


def _read_bytes(path: Path) -> bytes:
    try:
        return read_bytes_bounded(path, MAX_FILE_BYTES)
    except NotAFile as exc:
        raise DataError([f"{path}: file: {exc.reason}"]) from None
    except OSError as exc:
        raise DataError([f"{path}: file: cannot read ({exc.strerror})"]) from None


#: Line separators other than \n that JSON allows raw inside strings: written escaped, so that
#: readers which split on them (str.splitlines, JavaScript) still see one record per line.
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def json_line(record: Any) -> str:
    """One JSON Lines record: UTF-8 text as is, but no character any reader takes for a line end."""
    return json.dumps(record, ensure_ascii=False).translate(_LINE_BREAKS)


def write_jsonl(path: str | os.PathLike[str], examples: Iterable[Example]) -> int:
    """Write records as JSONL atomically (temporary file, then rename). Returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json_line(example.to_json()) for example in examples]
    atomic_write(path, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)
