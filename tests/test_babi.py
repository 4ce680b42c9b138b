"""The bAbI reader, format detection and data directories, on hand-written sample files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from qa_core.data.babi import looks_like_babi, read_babi, task_category
from qa_core.data.loading import detect_format, find_split_files, read_dir, read_examples
from qa_core.data.records import Example, write_jsonl
from qa_core.errors import ConfigError, DataError

BABI = Path(__file__).parent / "data" / "babi"
QA6_TRAIN = BABI / "qa6_yes-no-questions_train.txt"
QA17_TRAIN = BABI / "qa17_positional-reasoning_train.txt"
QA18_TRAIN = BABI / "qa18_size-reasoning_train.txt"
INVALID = BABI / "invalid"


def story(*sentences: str) -> str:
    return " ".join(sentences)


def problems_of(path: Path, **kwargs) -> list[str]:
    with pytest.raises(DataError) as info:
        read_babi(path, **kwargs)
    return info.value.problems


# --- reading the sample task files ---------------------------------------------------------


def test_task6_file_loads_as_exactly_these_records():
    s1 = ("Mary moved to the bathroom.", "Sandra journeyed to the bedroom.")
    s1b = s1 + ("Mary went back to the bedroom.", "Daniel went back to the hallway.")
    s2 = ("John went to the kitchen.", "Daniel journeyed to the office.")
    cat, stem = "yes-no-questions", "qa6_yes-no-questions_train"
    # Noun counts by hand: names and the word after "the", distinct, e.g. mary bathroom sandra bedroom.
    expected = [
        # support: the supporting-fact line numbers as positions among the story's statements
        # (line 4 is the third statement of story 1 because line 3 is a question).
        Example(f"{stem}-1-3", story(*s1), "Is Sandra in the hallway?", False, cat, 4, (1,)),
        Example(f"{stem}-1-6", story(*s1b), "Is Daniel in the hallway?", True, cat, 6, (3,)),
        Example(f"{stem}-1-8", story(*s1b, "John travelled to the garden."), "Is Mary in the bedroom?", True, cat, 8, (2,)),
        Example(f"{stem}-2-3", story(*s2), "Is John in the kitchen?", True, cat, 4, (0,)),
        # Two questions in a row: the first is not part of the second's story.
        Example(f"{stem}-2-4", story(*s2), "Is Daniel in the garden?", False, cat, 4, (1,)),
        Example(f"{stem}-2-6", story(*s2, "John moved to the hallway."), "Is John in the kitchen?", False, cat, 5, (2,)),
        Example(
            f"{stem}-3-3",
            story("Sandra grabbed the apple there.", "Sandra travelled to the office."),
            "Is Sandra in the office?",
            True,
            cat,
            3,
            (1,),
        ),
    ]
    assert read_babi(QA6_TRAIN) == expected


@pytest.mark.parametrize("path", [QA6_TRAIN, QA17_TRAIN, QA18_TRAIN])
def test_support_is_the_files_supporting_facts(path):
    """Each record's support names exactly the statements its question line lists, and those
    sentences of the story are the statements' text (read here without the reader)."""
    expected = []
    statements: dict[int, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        number, _, rest = line.partition(" ")
        if int(number) == 1:
            statements = {}
        text, *fields = rest.split("\t")
        if not fields:
            statements[int(number)] = text
            continue
        expected.append([statements[int(n)] for n in sorted(fields[1].split(), key=int)] if fields[1].split() else None)
        assert all(int(n) in statements for n in fields[1].split())
    records = read_babi(path)
    assert len(records) == len(expected) and any(expected)
    for record, facts in zip(records, expected):
        sentences = [s.strip() for s in re.findall(r"[^.?!]+[.?!]", record.story)]
        assert (None if record.support is None else [sentences[i] for i in record.support]) == facts, record.id


def test_a_supporting_fact_that_is_a_question_is_refused(tmp_path):
    path = tmp_path / "qa6_x_train.txt"
    path.write_text("1 Mary went to the garden.\n2 Is Mary in the garden?\tyes\t1\n3 Is Mary in the hall?\tno\t2\n")
    assert problems_of(path) == [f"{path}:3: supporting facts: line 2 is a question, not a statement"]


def test_task17_questions_share_their_story_and_keep_the_answers():
    records = read_babi(QA17_TRAIN)
    assert [r.id.rsplit("-", 2)[1:] for r in records] == [["1", "3"], ["1", "4"], ["1", "5"], ["2", "3"], ["2", "4"]]
    assert [r.answer for r in records] == [True, False, False, True, False]
    first = story("The triangle is above the pink rectangle.", "The blue square is to the left of the triangle.")
    assert {r.story for r in records[:3]} == {first}
    assert records[3].story.startswith("The red sphere is below the yellow square.")
    assert records[0].question == "Is the pink rectangle to the right of the blue square?"
    assert {r.category for r in records} == {"positional-reasoning"}


def test_task18_two_digit_line_numbers_and_statements_after_questions():
    records = read_babi(QA18_TRAIN)
    by_line = {r.id.removeprefix("qa18_size-reasoning_train-"): r for r in records}
    assert sorted(by_line) == ["1-10", "1-6", "1-7", "1-9", "2-3"]
    # Line 8 is a statement that comes after two questions: it joins the story from line 9 on.
    assert "The chocolate fits inside the box of chocolates." not in by_line["1-7"].story
    assert by_line["1-9"].story.endswith("The container is bigger than the box of chocolates. "
                                         "The chocolate fits inside the box of chocolates.")
    assert by_line["1-10"].story == by_line["1-9"].story
    assert by_line["1-10"].question == "Does the chest fit in the box?" and by_line["1-10"].answer is True
    # box, chest, suitcase, container; then the chocolate joins.
    assert (by_line["1-7"].noun_count, by_line["1-9"].noun_count, by_line["2-3"].noun_count) == (4, 5, 3)
    assert {r.category for r in records} == {"size-reasoning"}


def test_no_story_text_keeps_a_line_number_or_a_tab():
    for path in sorted(BABI.glob("*.txt")):
        for record in read_babi(path):
            assert "\t" not in record.story + record.question
            assert not any(word.isdigit() for word in record.story.split()), record
            assert record.question.endswith("?")


def test_category_from_file_name_task_number_or_stem(tmp_path: Path):
    assert task_category("data/qa6_yes-no-questions_test.txt") == "yes-no-questions"
    assert task_category("en-valid/qa17_valid.txt") == "positional-reasoning"  # the en-valid layout
    assert task_category("stories.txt") == "stories"
    renamed = tmp_path / "my stories.txt"
    shutil.copy(QA6_TRAIN, renamed)
    records = read_babi(renamed)
    assert {r.category for r in records} == {"my stories"}
    assert records[0].id == "my stories-1-3"
    assert {r.category for r in read_babi(renamed, category="locations")} == {"locations"}


def test_crlf_line_endings_and_a_byte_order_mark_read_the_same(tmp_path: Path):
    windows = tmp_path / QA6_TRAIN.name
    windows.write_bytes(b"\xef\xbb\xbf" + QA6_TRAIN.read_bytes().replace(b"\n", b"\r\n"))
    assert read_babi(windows) == read_babi(QA6_TRAIN)


def test_answers_are_case_insensitive(tmp_path: Path):
    path = tmp_path / "upper.txt"
    path.write_text("1 Mary went to the garden.\n2 Is Mary in the garden?\tYes\t1\n3 Is Mary in the bath?\tNO\t1\n")
    assert [r.answer for r in read_babi(path)] == [True, False]


# --- refusing bad files --------------------------------------------------------------------


def test_a_non_binary_task_is_refused_with_one_clear_line():
    path = INVALID / "qa1_single-supporting-fact_train.txt"
    assert problems_of(path) == [
        f"{path}:3: answer: 'bathroom' is not yes/no; only bAbI yes/no tasks (6, 9, 17, 18) can be loaded"
    ]


def test_broken_numbering_is_reported_line_by_line():
    path = INVALID / "broken_numbering.txt"
    assert problems_of(path) == [
        f"{path}:3: number: expected 3 (or 1 to start a story), got 4",
        f"{path}:5: number: missing (expected '6 <text>')",
        f"{path}:9: number: expected 3 (or 1 to start a story), got 2",
    ]


def test_missing_answers_are_reported_with_file_and_line():
    path = INVALID / "missing_answer.txt"
    problems = problems_of(path)
    # An empty answer field (line 3) and a question with no TAB at all (line 6).
    assert [p.split(": ", 2)[:2] for p in problems] == [[f"{path}:3", "answer"], [f"{path}:6", "answer"]]
    assert all("missing" in p for p in problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 Mary went to the garden.\n4 Is Mary in the garden?\tyes\t3\n", ":1: number: expected 1"),
        ("1 Is Mary in the garden?\tyes\t\n", ":1: story: no statements before this question"),
        ("1 Mary went to the garden.\n2 Is Mary in the garden?\tyes\tx\n", ":2: supporting facts: 'x' is not"),
        ("1 Mary went to the garden.\n2 Is Mary in the garden?\tyes\t2\n", ":2: supporting facts: line 2 is not"),
        ("1 Mary went to the garden.\n2\n", ":2: text: empty"),
        ("1 Mary went to the garden.\n", ":1: file: no questions"),
    ],
)
def test_other_structural_problems(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    problems = problems_of(path)
    assert len(problems) == 1 and problems[0].startswith(str(path) + expected), problems


def test_unreadable_inputs_read_like_jsonl_errors(tmp_path: Path):
    assert problems_of(tmp_path / "absent.txt") == [f"{tmp_path / 'absent.txt'}: file: not found"]
    assert problems_of(tmp_path) == [f"{tmp_path}: file: is a directory, expected a file"]
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"1 Mary went to the garden.\n2 Is Zo\xe9 here?\tno\t1\n")
    assert problems_of(latin1) == [f"{latin1}:2: file: not UTF-8 text (byte 0xe9)"]


# --- format detection ----------------------------------------------------------------------


def test_looks_like_babi():
    assert looks_like_babi("\n\n1 Mary moved to the bathroom.\n2 Is Mary there?\tyes\t1\n")
    assert looks_like_babi("\ufeff1 Mary moved to the bathroom.")
    assert not looks_like_babi('{"story": "Mary moved.", "question": "Is Mary?", "answer": "yes"}\n')
    assert not looks_like_babi("Mary moved to the bathroom.\n")
    assert not looks_like_babi("1\n")  # a number alone is a JSON value, not a bAbI line
    assert not looks_like_babi("")


def test_auto_detection_picks_the_right_reader(tmp_path: Path):
    records = read_babi(QA6_TRAIN)
    jsonl = tmp_path / "stories.txt"  # the extension does not decide, the content does
    write_jsonl(jsonl, records)
    assert detect_format(jsonl) == "jsonl" and detect_format(QA6_TRAIN) == "babi"
    assert read_examples(jsonl) == records
    assert read_examples(QA6_TRAIN) == records
    assert read_examples(QA6_TRAIN, format="babi") == records
    with pytest.raises(DataError, match=r":1: json:"):
        read_examples(QA6_TRAIN, format="jsonl")  # an explicit format is obeyed
    with pytest.raises(ConfigError, match="unknown data format 'csv'"):
        read_examples(QA6_TRAIN, format="csv")  # type: ignore[arg-type]


def test_auto_detection_refuses_other_text_naming_the_line(tmp_path: Path):
    path = tmp_path / "notes.csv"
    path.write_text("\nstory,question,answer\n")
    with pytest.raises(DataError) as info:
        read_examples(path)
    assert info.value.problems == [
        f"{path}:2: file: unknown format: expected JSON object lines (JSONL) or numbered bAbI lines, "
        "got 'story,question,answer'"
    ]


# --- data directories ----------------------------------------------------------------------


def test_read_dir_concatenates_babi_tasks_in_task_order():
    splits = read_dir(BABI)  # the invalid/ subdirectory is not looked into
    assert list(splits) == ["train", "test"]  # no validation files: val is absent
    expected_train = read_babi(QA6_TRAIN) + read_babi(QA17_TRAIN) + read_babi(QA18_TRAIN)
    assert splits["train"] == expected_train
    assert [r.category for r in splits["test"]] == (
        ["yes-no-questions"] * 3 + ["positional-reasoning"] * 2 + ["size-reasoning"] * 2
    )


def test_read_dir_finds_jsonl_splits_and_val_aliases(tmp_path: Path):
    records = read_babi(QA6_TRAIN)
    write_jsonl(tmp_path / "train.jsonl", records[:4])
    write_jsonl(tmp_path / "dev.jsonl", records[4:5])
    write_jsonl(tmp_path / "test.jsonl", records[5:])
    (tmp_path / "README.md").write_text("not data\n")
    assert read_dir(tmp_path) == {"train": records[:4], "val": records[4:5], "test": records[5:]}
    write_jsonl(tmp_path / "val.jsonl", records[4:5])
    with pytest.raises(ConfigError, match=r"val\.jsonl and dev\.jsonl are both val files"):
        read_dir(tmp_path)


def test_read_dir_babi_validation_files(tmp_path: Path):
    shutil.copy(QA6_TRAIN, tmp_path / "qa6_train.txt")
    shutil.copy(BABI / "qa6_yes-no-questions_test.txt", tmp_path / "qa6_valid.txt")
    shutil.copy(BABI / "qa18_size-reasoning_test.txt", tmp_path / "qa18_test.txt")
    splits = read_dir(tmp_path)
    assert list(splits) == ["train", "val", "test"]
    assert [r.id for r in splits["val"]] == ["qa6_valid-1-3", "qa6_valid-1-5", "qa6_valid-2-2"]
    assert {r.category for r in splits["test"]} == {"size-reasoning"}


def test_read_dir_names_what_is_missing(tmp_path: Path):
    shutil.copy(QA6_TRAIN, tmp_path)
    with pytest.raises(ConfigError) as info:
        read_dir(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "no test split" in message and "test.jsonl" in message
    with pytest.raises(ConfigError, match="not found"):
        read_dir(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="not a directory"):
        read_dir(QA6_TRAIN)


def test_read_dir_refuses_mixed_formats_and_reports_every_bad_file(tmp_path: Path):
    shutil.copy(QA6_TRAIN, tmp_path)
    write_jsonl(tmp_path / "test.jsonl", read_babi(QA6_TRAIN)[:1])
    with pytest.raises(ConfigError, match="mixes JSONL"):
        find_split_files(tmp_path)
    (tmp_path / "test.jsonl").unlink()
    shutil.copy(INVALID / "qa1_single-supporting-fact_train.txt", tmp_path)
    shutil.copy(INVALID / "missing_answer.txt", tmp_path / "qa6_test.txt")
    with pytest.raises(DataError) as info:
        read_dir(tmp_path)
    lines = [p.split(": ", 1)[0] for p in info.value.problems]
    assert lines == [
        f"{tmp_path / 'qa1_single-supporting-fact_train.txt'}:3",
        f"{tmp_path / 'qa6_test.txt'}:3",
        f"{tmp_path / 'qa6_test.txt'}:6",
    ]


def test_read_dir_refuses_ids_that_collide_across_files(tmp_path: Path):
    records = read_babi(QA6_TRAIN)
    shutil.copy(QA6_TRAIN, tmp_path / "a_train.txt")
    shutil.copy(QA6_TRAIN, tmp_path / "b_train.txt")
    shutil.copy(QA17_TRAIN, tmp_path / "a_test.txt")
    assert len(read_dir(tmp_path)["train"]) == 2 * len(records)  # bAbI ids carry the file stem
    # Files of one split are read by content, so two JSONL files can end up with the same ids.
    write_jsonl(tmp_path / "b_train.txt", records)
    write_jsonl(tmp_path / "c_train.txt", records[:1])
    with pytest.raises(DataError) as info:
        read_dir(tmp_path)
    assert info.value.problems == [
        f"{tmp_path / 'c_train.txt'}: id: duplicate id {records[0].id!r} (also in {tmp_path / 'b_train.txt'})"
    ]
