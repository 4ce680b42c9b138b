"""The second bad-input corpus (issue 16): values that used to end in an "unexpected" error, a hang
or a silent wrong result. Each is one line naming the option, file, line or key, exit 2, no
traceback, and nothing stray left on disk."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest


def assert_one_clean_line(result, pattern: str) -> None:
    assert result.code == 2, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ") and re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.err and "unexpected" not in result.err


def temp_files(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob("*") if ".tmp" in p.name]


@pytest.fixture(scope="module")
def run_dir(qa, tiny_data, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1", "--runs-dir", str(runs), "--no-progress")
    assert result.code == 0, result.err
    (found,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    return found


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir").mkdir()
    return {"FILE": str(tmp_path / "a_file"), "UNDER_FILE": str(tmp_path / "a_file" / "sub"), "DIR": str(tmp_path / "a_dir")}


# (args with RUN / DATA / TEST / FILE / UNDER_FILE / DIR placeholders, pattern of the one line)
OPTION_CASES = {
    "seed negative": (["run", "--plugin", "bow", "--data", "DATA", "--seed", "-5"], r"--seed: expected an integer from 0 to 4294967295, got -5"),
    "max-len the machine cannot hold": (
        ["run", "--plugin", "bow", "--data", "DATA", "--max-len", "1000000000"],
        r"--max-len 1000000000: the encoded data would need [\d.]+ TiB .* more than the .* of memory available",
    ),
    "runs-dir a file": (["run", "--plugin", "bow", "--data", "DATA", "--runs-dir", "FILE"], r"--runs-dir .*a_file: is a file, not a folder"),
    "runs-dir under a file": (["run", "--plugin", "bow", "--data", "DATA", "--runs-dir", "UNDER_FILE"], r"--runs-dir .*a_file/sub: .*a_file is a file, not a folder"),
    "generate --out a file": (["data", "generate", "--out", "FILE", "--train", "10", "--val", "0", "--test", "0"], r"--out .*a_file: is a file, not a folder"),
    "generate --seed negative": (["data", "generate", "--out", "DIR", "--seed", "-1"], r"--seed: expected an integer from 0"),
    "evaluate --out a file": (["evaluate", "RUN", "--data", "TEST", "--out", "FILE"], r"--out .*a_file: is a file, not a folder"),
    "evaluate --batch-size 0": (["evaluate", "RUN", "--data", "TEST", "--batch-size", "0"], r"--batch-size: expected a positive integer, got 0"),
    "evaluate --batch-size -5": (["evaluate", "RUN", "--data", "TEST", "--batch-size", "-5"], r"--batch-size: expected a positive integer, got -5"),
    "evaluate --threshold -1": (["evaluate", "RUN", "--data", "TEST", "--threshold", "-1"], r"--threshold: expected a number between 0 and 1, got -1"),
    "evaluate --threshold 2": (["evaluate", "RUN", "--data", "TEST", "--threshold", "2"], r"--threshold: expected a number between 0 and 1, got 2"),
    "probe --batch-size 0": (["probe", "RUN", "--batch-size", "0"], r"--batch-size: expected a positive integer, got 0"),
    "probe --batch-size -5": (["probe", "RUN", "--batch-size", "-5"], r"--batch-size: expected a positive integer, got -5"),
    "probe --threshold -1": (["probe", "RUN", "--threshold", "-1"], r"--threshold: expected a number between 0 and 1, got -1"),
    "probe --threshold 2": (["probe", "RUN", "--threshold", "2"], r"--threshold: expected a number between 0 and 1, got 2"),
    "import-babi --out a directory": (["data", "import-babi", "BABI", "--out", "DIR"], r"--out .*a_dir: is a directory, expected a file name"),
    "report --out a directory": (["report", "RUN", "--out", "DIR"], r"--out .*a_dir: is a directory, expected a file name"),
    "split --names a,a": (["data", "split", "TEST", "--out", "DIR", "--names", "a,a"], r"--names: the two parts need different names, got 'a,a'"),
    "split into the input's own folder": (["data", "split", "TRAIN", "--out", "DATA"], r"--out .*: writing train\.jsonl there would overwrite the input .*train\.jsonl"),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_a_bad_option_value_is_one_line(case, qa, tiny_data, run_dir, places, tmp_path):
    args, pattern = OPTION_CASES[case]
    babi = tmp_path / "qa6_train.txt"
    babi.write_text("1 Mary went to the kitchen.\n2 Is Mary in the kitchen?\tyes\t1\n")
    values = {**places, "RUN": str(run_dir), "DATA": str(tiny_data), "TEST": str(tiny_data / "test.jsonl"), "TRAIN": str(tiny_data / "train.jsonl"), "BABI": str(babi)}
    before = {p: p.stat().st_mtime_ns for p in tiny_data.iterdir()}
    result = qa(*[values.get(arg, arg) for arg in args], *(["--runs-dir", str(tmp_path / "runs")] if args[0] == "run" and "--runs-dir" not in args else []))
    assert_one_clean_line(result, pattern)
    assert {p: p.stat().st_mtime_ns for p in tiny_data.iterdir()} == before  # the input untouched
    assert temp_files(tmp_path) == [] and temp_files(run_dir) == []
    assert not (tmp_path / "runs").exists()
    assert list((tmp_path / "a_dir").iterdir()) == []


def test_runs_dir_on_a_read_only_mount_is_one_line(qa, tiny_data, tmp_path):
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--runs-dir", str(mount_point / "runs"))
        assert_one_clean_line(result, rf"--runs-dir {re.escape(str(mount_point / 'runs'))}: {re.escape(str(mount_point))} is on a read-only file system")
        result = qa("data", "generate", "--out", str(mount_point / "data"))
        assert_one_clean_line(result, r"--out .*: .* is on a read-only file system")
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


TOML_CASES = {
    "tags = 5": r"tags: expected a list of names, e\.g\. tags = \[\"baseline\"\], got 5",
    'tags = "abc"': r"tags: expected a list of names, .* got 'abc'",
    'loggers = "neptune"': r"loggers: expected a list of names, e\.g\. loggers = \[\"neptune\"\], got 'neptune'",
    'logger_params = "x"': r"logger_params: expected tables of tracker options",
    "data_dir = 5": r"data_dir: expected a string, got 5",
    "runs_dir = 5": r"runs_dir: expected a string, got 5",
    'progress = "yes"': r"progress: expected true or false, got 'yes'",
    "seed = -5": r"seed: expected an integer from 0 to 4294967295, got -5",
    "top-k = -1": r"top-k: expected a non-negative integer, got -1",
    'runs_dir = "FILE"': r"runs_dir .*a_file: is a file, not a folder",
}


@pytest.mark.parametrize("line", sorted(TOML_CASES))
def test_a_toml_value_of_the_wrong_kind_names_the_file_and_key(line, qa, places, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(f'plugin = "bow"\n{line.replace("FILE", places["FILE"])}\n')
    result = qa("run", "--config", str(config))
    assert_one_clean_line(result, rf"^error: {re.escape(str(config))}: {TOML_CASES[line]}")


def test_a_value_given_on_the_command_line_is_named_by_its_option_even_with_a_config(qa, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('plugin = "bow"\nepochs = 2\n')
    assert_one_clean_line(qa("run", "--config", str(config), "--epochs", "0"), r"^error: --epochs: expected a positive integer, got 0")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.jsonl"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("where", ["--train", "--config", "data stats", "/dev/zero as --train"])
def test_fifos_and_devices_are_refused_not_read(where, qa, fifo, tiny_data, tmp_path):
    """A FIFO used to hang forever (no writer); /dev/zero read until memory ran out."""
    test = str(tiny_data / "test.jsonl")
    runs = str(tmp_path / "runs")
    args = {
        "--train": ["run", "--plugin", "bow", "--train", str(fifo), "--test", test, "--runs-dir", runs],
        "--config": ["run", "--config", str(fifo), "--runs-dir", runs],
        "data stats": ["data", "stats", str(fifo)],
        "/dev/zero as --train": ["run", "--plugin", "bow", "--train", "/dev/zero", "--test", test, "--runs-dir", runs],
    }[where]
    result = qa(*args, timeout=60)
    kind = r"character device, not a regular file" if "zero" in where else r"FIFO \(named pipe\) that nothing writes to; not waited for"
    assert_one_clean_line(result, rf"(pipe\.jsonl|/dev/zero): (file:|config file) is a {kind}")


def test_a_data_file_over_the_size_limit_is_refused_before_reading(qa, tiny_data, tmp_path):
    from qa_core.data.records import MAX_FILE_BYTES

    huge = tmp_path / "huge.jsonl"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk and, refused by size, no memory
    result = qa("data", "stats", str(huge))
    assert_one_clean_line(result, rf"huge\.jsonl: file: {MAX_FILE_BYTES + 1:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit")


def test_a_noun_count_past_int32_is_refused_by_the_reader(qa, tiny_data, tmp_path):
    bad = tmp_path / "big.jsonl"
    bad.write_text(json.dumps({"story": "Mary went to the kitchen.", "question": "Is Mary in the kitchen?", "answer": "yes", "noun_count": 2147483648}) + "\n")
    pattern = r"big\.jsonl:1: noun_count: expected a non-negative integer up to 2147483647, got 2147483648"
    assert_one_clean_line(qa("data", "stats", str(bad)), pattern)
    assert_one_clean_line(qa("run", "--plugin", "bow", "--train", str(bad), "--test", str(tiny_data / "test.jsonl"), "--runs-dir", str(tmp_path / "runs")), pattern)


def test_json_messages_do_not_say_at_at(qa, tmp_path):
    bad = tmp_path / "cut.jsonl"
    bad.write_text('{"story": "Mary went\n')
    assert_one_clean_line(qa("data", "stats", str(bad)), r"cut\.jsonl:1: json: Unterminated string starting at column 11$")


def _forge_checkpoint(run_dir: Path, content: bytes) -> None:
    """Replace best.npz with ``content`` and make its meta agree (size and sha256), as an
    attacker or a broken copy would."""
    best = run_dir / "checkpoints" / "best.npz"
    best.unlink()  # a hard link to the epoch file: replace, do not write through it
    best.write_bytes(content)
    meta_file = run_dir / "checkpoints" / "best.meta.json"
    meta = json.loads(meta_file.read_text())
    meta.update(bytes=len(content), sha256=hashlib.sha256(content).hexdigest())
    meta.pop("digest", None)
    meta_file.unlink()
    meta_file.write_text(json.dumps(meta))


@pytest.mark.parametrize("kind", ["zero bytes", "no arrays", "empty arrays"])
def test_an_empty_checkpoint_whose_meta_matches_names_the_file(kind, qa, tiny_data, tmp_path):
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1", "--runs-dir", str(tmp_path), "--no-progress")
    assert result.code == 0, result.err
    (run_dir,) = list(tmp_path.iterdir())
    if kind == "zero bytes":
        content = b""
    else:
        import io

        buffer = io.BytesIO()
        meta = json.loads((run_dir / "checkpoints" / "best.meta.json").read_text())
        embedded = np.array(json.dumps({"plugin": "bow", "vocab_sha256": meta["vocab_sha256"]}))
        # "empty arrays": the weights fit, the bias and step arrays are empty (IndexError inside the plugin)
        arrays = {"w": np.zeros(2 * meta["vocab_size"]), "b": np.zeros(0), "step": np.zeros(0), "meta": embedded}
        arrays = {"meta": embedded} if kind == "no arrays" else arrays
        np.savez(buffer, **arrays)
        content = buffer.getvalue()
    _forge_checkpoint(run_dir, content)
    result = qa("evaluate", str(run_dir), "--data", str(tiny_data / "test.jsonl"))
    best = re.escape(str(run_dir / "checkpoints" / "best.npz"))
    expected = {"zero bytes": r"empty file \(0 bytes\), not a checkpoint", "no arrays": r"plugin 'bow' could not read this checkpoint \(KeyError", "empty arrays": r"plugin 'bow' could not read this checkpoint \(IndexError"}
    assert_one_clean_line(result, rf"{best}: {expected[kind]}")


def test_jsonl_with_unicode_line_separators_inside_strings_round_trips(qa, tmp_path):
    """U+2028, U+2029 and U+0085 are valid raw inside JSON strings: read as such, and written
    escaped so qa (and any splitlines() reader) reads its own output back."""
    source = tmp_path / "odd.jsonl"
    records = [
        {"id": f"r{i}", "story": f"Mary went{sep}to the kitchen.", "question": "Is Mary in the kitchen?", "answer": "yes" if i % 2 else "no", "category": "c", "noun_count": 2}
        for i, sep in enumerate(["\u2028", "\u2029", "\x85", "\u2028", "\u2029", "\x85"] * 2)
    ]
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    assert "\u2028" in source.read_text(encoding="utf-8")
    result = qa("data", "split", str(source), "--out", str(tmp_path / "out"), "--fraction", "0.5")
    assert result.code == 0, result.err
    for name in ("train.jsonl", "val.jsonl"):
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        assert "\u2028" not in text and "\u2029" not in text and "\x85" not in text
        assert len(text.splitlines()) == len(text.split("\n")) - 1  # one record per line, for any reader
    from qa_core.data.records import read_jsonl

    back = read_jsonl(tmp_path / "out" / "train.jsonl") + read_jsonl(tmp_path / "out" / "val.jsonl")
    assert sorted(e.story for e in back) == sorted(r["story"] for r in records)


def test_babi_tab_inside_a_statement_and_cr_only_line_endings(tmp_path):
    from qa_core.data.babi import read_babi

    tab = tmp_path / "qa6_tab_train.txt"
    tab.write_text("1 Mary went\tto the bathroom.\n2 Is Mary in the bathroom? \tyes\t1\n")
    (example,) = read_babi(tab)
    assert (example.story, example.answer) == ("Mary went to the bathroom.", True)
    cr = tmp_path / "qa6_cr_train.txt"
    cr.write_bytes(b"1 Mary went to the bathroom.\r2 Is Mary in the bathroom? \tyes\t1\r3 John went to the hallway.\r4 Is John in the kitchen? \tno\t3\r")
    examples = read_babi(cr)
    assert [(e.id, e.answer) for e in examples] == [("qa6_cr_train-1-2", True), ("qa6_cr_train-1-4", False)]
    broken = tmp_path / "qa6_broken_train.txt"
    broken.write_bytes(b"1 Mary went to the bathroom.\r5 Is Mary in the bathroom? \tyes\t1\r")
    from qa_core.errors import DataError

    with pytest.raises(DataError, match=r"qa6_broken_train\.txt:2: number: expected 2"):  # line 2, not 1
        read_babi(broken)


def test_top_k_0_keeps_only_the_best_and_last(qa, tiny_data, tmp_path):
    # validated on its own training split: every epoch is a new best, so former bests exist to drop
    train = str(tiny_data / "train.jsonl")
    result = qa("run", "--plugin", "bow", "--train", train, "--val", train, "--test", str(tiny_data / "test.jsonl"), "--epochs", "4", "--top-k", "0", "--runs-dir", str(tmp_path), "--no-progress")
    assert result.code == 0, result.err
    assert result.out.count("new best") >= 2, result.out  # a former best exists to be dropped
    (run_dir,) = list(tmp_path.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    best = summary["best"]["checkpoint"]
    epoch_files = sorted(p.name for p in (run_dir / "checkpoints").glob("*-e*.npz"))
    assert epoch_files == [best], epoch_files  # no former best left behind
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*-e*.meta.json")) == [best.replace(".npz", ".meta.json")]


def test_a_resume_sweeps_up_the_orphan_meta_of_an_interrupted_deletion(qa, tiny_data, tmp_path):
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "2", "--top-k", "1", "--runs-dir", str(tmp_path), "--no-progress")
    assert result.code == 0, result.err
    (run_dir,) = list(tmp_path.iterdir())
    checkpoints = run_dir / "checkpoints"
    (kept,) = checkpoints.glob("*-e*.meta.json")
    # kill -9 between the two unlinks of a top-k file that fell out: its meta alone is left
    orphan = kept.with_name(re.sub(r"-e\d{3}", "-e007", kept.name))
    orphan.write_text(kept.read_text())
    result = qa("run", "--resume", str(run_dir), "--epochs", "3", "--no-progress")
    assert result.code == 0, result.err
    assert not orphan.exists()
    for meta in checkpoints.glob("*.meta.json"):
        assert (checkpoints / meta.name.replace(".meta.json", ".npz")).is_file(), meta


def test_plugin_trace_never_prints_a_uri_password(qa, plugin_site, tiny_data, tmp_path):
    plugin_site.add("qa-uritracker", "0.1", "uri_tracker", module="uritracker")
    result = qa(
        "run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1", "--runs-dir", str(tmp_path / "runs"), "--no-progress",
        "--logger", "uritracker", "--logger-param", "uritracker.uri=https://me:hunter2@example.invalid/store",
        env={**plugin_site.env, "QA_TRACE_PLUGINS": "1"},
    )
    assert result.code == 0, result.err
    assert "qa_log_run_start" in result.err  # the trace is on
    assert "hunter2" not in result.err + result.out






@pytest.mark.parametrize("kind, message", [("logits", r"values outside \[0, 1\]"), ("short", r"returned 89 probabilities for 90 records"), ("nan", r"NaN or infinite")])
def test_qa_evaluate_output_is_checked_in_training_and_in_qa_evaluate_alike(kind, message, qa, plugin_site, tiny_data, run_dir, tmp_path):
    plugin_site.add("qa-badeval", "0.1", "bad_evaluate", module="badeval")
    env = {**plugin_site.env, "QA_TEST_BAD_EVALUATE": kind}
    result = qa("run", "--plugin", "badeval", "--data", str(tiny_data), "--epochs", "1", "--runs-dir", str(tmp_path / "runs"), "--no-progress", env=env)
    assert result.code == 1 and re.search(rf"plugin 'badeval' failed in qa_evaluate: ValueError: .*{message}", result.err), result.err
    # qa evaluate of a bow checkpoint through the broken plugin: the same check, not a silent score
    meta_file = run_dir / "checkpoints" / "best.meta.json"
    copy = tmp_path / "ckpt"
    copy.mkdir()
    meta = json.loads(meta_file.read_text())
    meta["plugin"] = "badeval"
    (copy / "best.npz").write_bytes((run_dir / "checkpoints" / "best.npz").read_bytes())
    (copy / "best.meta.json").write_text(json.dumps(meta))
    (copy / "vocab.json").write_bytes((run_dir / "vocab.json").read_bytes())
    result = qa("evaluate", str(copy / "best.npz"), "--data", str(tiny_data / "test.jsonl"), env=env)
    assert result.code == 1 and re.search(rf"plugin 'badeval' failed in qa_evaluate: ValueError: .*{message}", result.err), result.err


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _edit_metrics(run: Path, change) -> None:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    change(lines)
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


# A hand-edited or damaged run directory: `qa run --resume` says what is wrong, where.
RESUME_CASES = {
    "a metric that is a string": (lambda r: _edit_metrics(r, lambda L: L[0].update({"metrics/val/accuracy": "abc"})), r"metrics\.jsonl: epoch 1: metrics/val/accuracy: expected a number, got 'abc'"),
    "a metric missing": (lambda r: _edit_metrics(r, lambda L: L[0].pop("metrics/val/loss")), r"metrics\.jsonl: epoch 1: metrics/val/loss: expected a number"),
    "config.json not JSON": (lambda r: (r / "config.json").write_text("not json"), r"config\.json: unreadable config\.json"),
    "config.json not an object": (lambda r: (r / "config.json").write_text("[1, 2]"), r"config\.json: config\.json is not a JSON object"),
    "config.json logger_params a string": (lambda r: _edit_json(r / "config.json", lambda c: c.update(logger_params="x")), r"config\.json: logger_params: expected tables of tracker options"),
    "config.json tags a number": (lambda r: _edit_json(r / "config.json", lambda c: c.update(tags=5)), r"config\.json: tags: expected a list of names"),
    "config.json batch_size a string": (lambda r: _edit_json(r / "config.json", lambda c: c.update(batch_size="x")), r"config\.json: batch_size: expected a positive integer, got 'x'"),
    "every meta's epoch edited": (
        lambda r: [_edit_json(m, lambda d: d.update(epoch="abc")) for m in (r / "checkpoints").glob("*.meta.json")],
        r"no usable checkpoint \(last\.npz: .*last\.meta\.json: edited after it was written",
    ),
}


@pytest.fixture(scope="module")
def finished_run(qa, tiny_data, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("resume-base")
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "2", "--runs-dir", str(runs), "--no-progress")
    assert result.code == 0, result.err
    (found,) = list(runs.iterdir())
    return found


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_a_damaged_run_directory_is_one_line_on_resume(case, qa, finished_run, tmp_path):
    import shutil

    run = tmp_path / finished_run.name
    shutil.copytree(finished_run, run)
    damage, pattern = RESUME_CASES[case]
    damage(run)
    assert_one_clean_line(qa("run", "--resume", str(run), "--epochs", "3", "--no-progress"), pattern)
