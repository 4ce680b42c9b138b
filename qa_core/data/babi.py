"""Reader for the original bAbI task files (Weston et al., 2015), yes/no tasks only.

A bAbI file is a sequence of stories. Every line is numbered; the numbering restarts at 1 for a
new story. Statement lines are ``N text``; question lines carry two TAB-separated fields more,
the answer and the numbers of the supporting statements::

    1 Mary moved to the bathroom.
    2 Sandra journeyed to the bedroom.
    3 Is Sandra in the hallway? <TAB>no<TAB>2
    4 Mary went back to the bedroom.
    5 Is Mary in the bedroom? <TAB>yes<TAB>4

Each question becomes one :class:`~qa_core.data.records.Example`: its story is the story's
statements *before* that question, without their numbers, joined with spaces (earlier questions
are not part of the story). Only tasks whose answers are all yes/no load: 6 (yes-no-questions),
9 (simple-negation), 17 (positional-reasoning) and 18 (size-reasoning). The category is the task
name taken from the file name (``qa6_yes-no-questions_train.txt`` -> ``yes-no-questions``,
``qa6_train.txt`` -> ``yes-no-questions`` via the task number) unless one is given; a file
named otherwise gets its stem.

Problems are reported like :func:`~qa_core.data.records.read_jsonl` reports them: every bad line
as ``file:line: field: problem``, all at once, in one :class:`~qa_core.errors.DataError`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import DataError
from .nouns import count_nouns
from .records import Example, read_text

#: The twenty bAbI tasks, by number: the names the original file names use.
TASK_NAMES = {
    1: "single-supporting-fact",
    2: "two-supporting-facts",
    3: "three-supporting-facts",
    4: "two-arg-relations",
    5: "three-arg-relations",
    6: "yes-no-questions",
    7: "counting",
    8: "lists-sets",
    9: "simple-negation",
    10: "indefinite-knowledge",
    11: "basic-coreference",
    12: "conjunction",
    13: "compound-coreference",
    14: "time-reasoning",
    15: "basic-deduction",
    16: "basic-induction",
    17: "positional-reasoning",
    18: "size-reasoning",
    19: "path-finding",
    20: "agents-motivations",
}

#: Tasks whose every answer is yes or no (task 10 also answers "maybe", so it is not one).
YES_NO_TASKS = (6, 9, 17, 18)

YES_NO = {"yes": True, "no": False}

#: ``qa6_yes-no-questions_train`` or ``qa6_train`` (the en-valid layout); the split is any word.
_FILE_STEM = re.compile(r"qa(?P<task>\d+)(?:_(?P<name>.+?))?_(?P<split>[a-z]+)", re.IGNORECASE)
_LINE_NUMBER = re.compile(r"\s*(\d+)(?:\s+|$)")


def task_category(path: str | os.PathLike[str]) -> str:
    """The category a bAbI file's records get: its task name, else the file stem."""
    stem = Path(path).stem
    match = _FILE_STEM.fullmatch(stem)
    if match is None:
        return stem
    if match["name"]:
        return match["name"]
    return TASK_NAMES.get(int(match["task"]), stem)


def looks_like_babi(first_lines: str) -> bool:
    """Content sniffing: the first non-empty line is ``<number> <text>`` and not JSON."""
    for line in first_lines.lstrip("\ufeff").splitlines():
        if not line.strip():
            continue
        if re.match(r"\s*\d+[ \t]+\S", line) is None:
            return False
        try:
            json.loads(line)
        except ValueError:
            return True
        return False  # e.g. "1 " alone is a JSON number
    return False


def read_babi(path: str | os.PathLike[str], category: str | None = None) -> list[Example]:
    """Read a bAbI yes/no task file. Raises DataError listing every bad line."""
    path = Path(path)
    text = read_text(path)
    return parse_babi(text, path, task_category(path) if category is None else category)


def parse_babi(text: str, path: Path, category: str) -> list[Example]:
    """Parse bAbI text; ``path`` names the source in ids and error lines."""
    reader = _BabiReader(path, category)
    # split("\n"), not splitlines(): line numbers must match what an editor shows, and
    # splitlines() also breaks on form feeds and Unicode separators. CR alone ends a line too
    # (old Mac files), as every editor shows it.
    for line_number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        if line.strip():
            reader.line(line_number, line)
    return reader.finish()


class _BabiReader:
    """The state of one pass over a bAbI file: the current story, and what went wrong."""

    def __init__(self, path: Path, category: str) -> None:
        self.path, self.category = path, category
        self.problems: list[str] = []
        self.examples: list[Example] = []
        self.statements: list[str] = []  # the current story's statements so far
        self.statement_index: dict[int, int] = {}  # line number -> position among the story's statements
        self.questions: set[int] = set()  # the story's question line numbers so far
        self.story_index = 0  # 1-based, so ids read like line numbers do
        self.previous = 0  # the number the previous line had (or should have had)
        self.first_not_yes_no = ""  # one line is enough: a non-binary task has hundreds
        self.noun_cache = ("", 0)  # consecutive questions often share a story

    def line(self, line_number: int, line: str) -> None:
        where = f"{self.path}:{line_number}"
        text_field, *fields = line.split("\t")
        match = _LINE_NUMBER.match(text_field)
        if match is None:
            self.problems.append(f"{where}: number: missing (expected '{self.previous + 1} <text>')")
            self.previous += 1  # assume it took its slot, so the next line is not reported too
            return
        number = int(match[1])
        self._check_number(number, where)
        content = text_field[match.end() :].strip()
        if not content:
            self.problems.append(f"{where}: text: empty")
            return
        # A question without a TAB would otherwise pass as a statement; bAbI statements never
        # end with '?', so that is a question whose answer field is missing. A TAB inside a
        # statement (no '?', no yes/no after it) is whitespace, not an answer field.
        if not content.endswith("?") and (not fields or fields[0].strip().lower() not in YES_NO):
            self.statement_index[number] = len(self.statements)
            self.statements.append(" ".join([content, *(f.strip() for f in fields if f.strip())]))
        else:
            self._question(number, content, fields, where)

    def _check_number(self, number: int, where: str) -> None:
        if number == 1:
            self.story_index += 1
            self.statements, self.statement_index, self.questions = [], {}, set()
        elif self.story_index == 0:
            self.problems.append(f"{where}: number: expected 1 (a file starts with a story's first line), got {number}")
            self.story_index = 1
        elif number != self.previous + 1:
            self.problems.append(f"{where}: number: expected {self.previous + 1} (or 1 to start a story), got {number}")
        self.previous = number  # resynchronise on the number given: one bad line, one report

    def _question(self, number: int, content: str, fields: list[str], where: str) -> None:
        answer = fields[0].strip() if fields else ""
        if not answer:
            self.problems.append(f"{where}: answer: missing (expected 'N question?<TAB>yes|no<TAB>fact numbers')")
            return
        if answer.lower() not in YES_NO:
            self.first_not_yes_no = self.first_not_yes_no or (
                f"{where}: answer: {answer!r} is not yes/no; only bAbI yes/no tasks "
                f"({', '.join(map(str, YES_NO_TASKS))}) can be loaded"
            )
            return
        bad = len(self.problems)
        support = _supporting_facts(fields[1] if len(fields) > 1 else "", number, self.statement_index, self.questions, where, self.problems)
        self.questions.add(number)
        if not self.statements:
            self.problems.append(f"{where}: story: no statements before this question")
        if len(self.problems) > bad:
            return
        story = " ".join(self.statements)
        if self.noun_cache[0] != story:
            self.noun_cache = (story, count_nouns(story))
        self.examples.append(
            Example(
                id=f"{self.path.stem}-{self.story_index}-{number}",
                story=story,
                question=content,
                answer=YES_NO[answer.lower()],
                category=self.category,
                noun_count=self.noun_cache[1],
                support=support,
            )
        )

    def finish(self) -> list[Example]:
        problems = list(self.problems)
        if self.first_not_yes_no:
            problems.insert(0, self.first_not_yes_no)  # the root cause goes first
        if not self.examples and not problems:
            problems.append(f"{self.path}:1: file: no questions (expected lines 'N question?<TAB>yes|no<TAB>fact numbers')")
        if problems:
            raise DataError(problems)
        return self.examples


def _supporting_facts(
    field: str, number: int, statement_index: dict[int, int], questions: set[int], where: str, problems: list[str]
) -> tuple[int, ...] | None:
    """The record's ``support``: the supporting-fact line numbers as positions among the story's
    statements (0-based, in story order). Optional; when given they name earlier statements."""
    if not field.strip():
        return None
    support = set()
    for token in field.split():
        if not token.isdigit():
            problems.append(f"{where}: supporting facts: {token!r} is not a line number")
        elif not 1 <= int(token) < number:
            problems.append(f"{where}: supporting facts: line {token} is not an earlier line of this story")
        elif int(token) in statement_index:
            support.add(statement_index[int(token)])
        elif int(token) in questions:
            problems.append(f"{where}: supporting facts: line {token} is a question, not a statement")
        # else: that line was bad and is reported already
    return tuple(sorted(support))
