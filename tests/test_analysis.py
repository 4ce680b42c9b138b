"""Evaluation files, plots, the HTML report, the difficulty probe and run comparison, through the
real `qa` CLI on tiny runs.

Exact numbers come from ``cutoff``, a test-only model plugin (installed through a ``*.dist-info``
folder on PYTHONPATH) whose answers are a known function of category and noun count: right below
its category's limit, always "yes" from the limit up to twice it (so exactly half right on the
generator's balanced cells), always wrong beyond. The test computes the expected accuracy of
every record from that rule, independently of qa_core.metrics.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import struct
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from qa_core.data.records import Example, read_jsonl

LIMITS = {"simple": 15, "dense": 8, "superdense": 50}

# -------------------------------------------------------------------------------------------------
# independent expectations
# -------------------------------------------------------------------------------------------------


def cutoff_says_yes(example: Example) -> bool:
    limit = LIMITS[example.category]
    if example.noun_count < limit:
        return example.answer
    if example.noun_count < 2 * limit:
        return True
    return not example.answer


def expected_cells(examples: list[Example], says_yes=cutoff_says_yes) -> dict[tuple[str, int], tuple[float, int]]:
    """(category, nouns) -> (accuracy, count), from the rule, one record at a time."""
    right: Counter = Counter()
    total: Counter = Counter()
    for example in examples:
        key = (example.category, example.noun_count)
        total[key] += 1
        right[key] += says_yes(example) == example.answer
    return {key: (right[key] / total[key], total[key]) for key in total}


def assert_same_cells(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, (accuracy, count) in expected.items():
        assert got[key][0] == pytest.approx(accuracy) and got[key][1] == count, key


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def check_png(path_or_data, size: tuple[int, int]) -> None:
    import matplotlib.image

    data = path_or_data if isinstance(path_or_data, bytes) else Path(path_or_data).read_bytes()
    assert png_size(data) == size
    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (size[1], size[0])
    assert float(pixels[..., :3].std()) > 0.01  # something is drawn


def only_run(runs: Path) -> Path:
    (run_dir,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    return run_dir


# -------------------------------------------------------------------------------------------------
# fixtures: one bow run, one cutoff run (probed once)
# -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cutoff_env(make_plugin_site) -> dict[str, str]:
    site = make_plugin_site()
    site.add("qa-cutoff-test", "0.0.1", "cutoff", entry_point="cutoff", module="qa_cutoff_test")
    return site.env


@pytest.fixture(scope="module")
def bow_run(qa, tiny_data, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("bow-runs")
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "2", "--runs-dir", str(runs), "--no-progress")
    assert result.code == 0, result.err
    return only_run(runs)


@pytest.fixture(scope="module")
def cutoff_run(qa, tiny_data, tmp_path_factory, cutoff_env) -> Path:
    runs = tmp_path_factory.mktemp("cutoff-runs")
    result = qa("run", "--plugin", "cutoff", "--data", str(tiny_data), "--epochs", "2", "--runs-dir", str(runs), "--no-progress", env=cutoff_env)
    assert result.code == 0, result.err
    return only_run(runs)


@pytest.fixture(scope="module")
def probed(qa, cutoff_run, cutoff_env):
    result = qa("probe", str(cutoff_run), "--noun-counts", "50,4,8,15,30", "--per-cell", "4", env=cutoff_env)
    assert result.code == 0, result.err
    return result, cutoff_run


# -------------------------------------------------------------------------------------------------
# qa evaluate: eval files and plots
# -------------------------------------------------------------------------------------------------


def test_evaluate_writes_exact_eval_files_and_plots(qa, cutoff_run, cutoff_env, tiny_data):
    result = qa("evaluate", str(cutoff_run), "--data", str(tiny_data / "test.jsonl"), env=cutoff_env)
    assert result.code == 0, result.err
    out = Path(result.out.split("eval files: ")[1].strip())
    assert out.parent == cutoff_run / "eval" and out.name.startswith("test-")
    test = read_jsonl(tiny_data / "test.jsonl")
    expected = expected_cells(test)

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["by_group"]) == {f"{c}/noun_{n}" for c, n in expected}
    for (category, nouns), (accuracy, count) in expected.items():
        group = metrics["by_group"][f"{category}/noun_{nouns}"]
        assert group["accuracy"] == pytest.approx(accuracy) and group["count"] == count
    rows = list(csv.DictReader(io.StringIO((out / "groups.csv").read_text())))
    cell_rows = {(r["category"], int(r["noun_count"])): r for r in rows if r["level"] == "cell"}
    assert_same_cells({k: (float(r["accuracy"]), int(r["count"])) for k, r in cell_rows.items()}, expected)

    said = {e.id: cutoff_says_yes(e) for e in test}
    truth = {e.id: e.answer for e in test}
    tn = sum(not said[i] and not truth[i] for i in said)
    fp = sum(said[i] and not truth[i] for i in said)
    fn = sum(not said[i] and truth[i] for i in said)
    tp = sum(said[i] and truth[i] for i in said)
    assert json.loads((out / "confusion_matrix.json").read_text())["matrix"] == [[tn, fp], [fn, tp]]

    wrong = [json.loads(line) for line in (out / "misclassified.jsonl").read_text().splitlines()]
    assert sorted(w["id"] for w in wrong) == sorted(i for i in said if said[i] != truth[i])
    by_id = {e.id: e for e in test}
    for row in wrong:
        example = by_id[row["id"]]
        assert (row["story"], row["question"], row["category"], row["noun_count"]) == (example.story, example.question, example.category, example.noun_count)
        assert row["answer"] == ("yes" if example.answer else "no")
        assert row["probability"] == pytest.approx(0.9 if said[row["id"]] else 0.1)

    errors = json.loads((out / "errors.json").read_text())
    assert (errors["total_errors"], errors["false_positives"], errors["false_negatives"]) == (fp + fn, fp, fn)
    per_cell = defaultdict(lambda: [0, 0])
    for row in wrong:
        per_cell[(row["category"], row["noun_count"])][0 if row["answer"] == "no" else 1] += 1
    worst = [(c["category"], c["noun_count"], c["false_positives"], c["false_negatives"]) for c in errors["worst_cells"]]
    assert sorted(worst) == sorted((c, n, fps, fns) for (c, n), (fps, fns) in per_cell.items())
    assert [c["errors"] for c in errors["worst_cells"]] == sorted((c["errors"] for c in errors["worst_cells"]), reverse=True)

    check_png(out / "accuracy_by_noun_count.png", (800, 500))
    check_png(out / "cell_heatmap.png", (800, 500))
    check_png(out / "confusion_matrix.png", (600, 500))


def test_plot_writes_training_curves_and_test_plots(qa, bow_run, tmp_path):
    result = qa("plot", str(bow_run), "--out", str(tmp_path / "plots"))
    assert result.code == 0, result.err
    sizes = {"training_curves.png": (1000, 400), "accuracy_by_noun_count.png": (800, 500), "cell_heatmap.png": (800, 500), "confusion_matrix.png": (600, 500)}
    assert {p.name for p in (tmp_path / "plots").iterdir()} == set(sizes)
    for name, size in sizes.items():
        check_png(tmp_path / "plots" / name, size)


# -------------------------------------------------------------------------------------------------
# qa report
# -------------------------------------------------------------------------------------------------


class PageReader(HTMLParser):
    """Tables (id -> rows of cell texts), images (id -> src) and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: dict[str, str] = {}
        self.tags: set[str] = set()
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "table":
            self._table = attrs["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images[attrs["id"]] = attrs["src"]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def read_page(path: Path) -> PageReader:
    reader = PageReader()
    reader.feed(path.read_text(encoding="utf-8"))
    return reader


def test_report_holds_every_table_and_embedded_plot(qa, probed, tiny_data, tmp_path):
    _, run_dir = probed
    out = tmp_path / "report.html"
    result = qa("report", str(run_dir), "--out", str(out))
    assert result.code == 0, result.err
    assert "5 plots embedded" in result.out
    page = read_page(out)
    assert set(page.tables) == {"summary", "test-overall", "confusion", "cells", "by-category", "by-noun-count", "by-length", "errors", "top-epochs", "epochs", "probe", "probe-boundary", "config", "hyperparameters", "misclassified"}
    lengths = page.tables["by-length"][1:]  # the story-length axis: every test record once, buckets in order
    assert sum(int(row[2]) for row in lengths) == len(read_jsonl(tiny_data / "test.jsonl"))
    starts = [int(row[0].split("-")[0]) for row in lengths]
    assert starts == sorted(starts) and len(starts) >= 2
    # self-contained: no scripts, no stylesheets or images from elsewhere
    assert not page.tags & {"script", "link", "iframe"}
    assert all(src.startswith("data:image/png;base64,") for src in page.images.values())

    import base64

    sizes = {
        "plot-training_curves": (1000, 400),
        "plot-accuracy_by_noun_count": (800, 500),
        "plot-cell_heatmap": (800, 500),
        "plot-confusion_matrix": (600, 500),
        "plot-probe_accuracy_by_noun_count": (800, 500),
    }
    assert set(page.images) == set(sizes)
    for image_id, size in sizes.items():
        check_png(base64.b64decode(page.images[image_id].split(",", 1)[1]), size)

    expected = expected_cells(read_jsonl(tiny_data / "test.jsonl"))
    header, *rows = page.tables["cells"]
    nouns = [int(h.split()[0]) for h in header[1:]]
    assert nouns == [8, 15, 30]
    from qa_core.metrics import wilson

    for row in rows:
        for n, text in zip(nouns, row[1:]):
            accuracy, count = expected[(row[0], n)]
            low, high = wilson(round(accuracy * count), count)
            assert text == f"{accuracy:.3f} [{float(low):.2f}, {float(high):.2f}] ({count})"
    assert [row[0] for row in rows] == ["simple", "dense", "superdense"]

    summary = json.loads((run_dir / "summary.json").read_text())
    overall = dict(zip(*page.tables["test-overall"]))
    total = sum(count for _, count in expected.values())
    assert float(overall["accuracy"]) == pytest.approx(sum(a * c for a, c in expected.values()) / total, abs=5e-5)
    assert int(overall["count"]) == total
    low, high = wilson(round(float(overall["accuracy"]) * total), total)
    assert overall["accuracy 95% interval"] == f"[{float(low):.2f}, {float(high):.2f}]"
    confusion = page.tables["confusion"]
    assert [int(v) for v in confusion[1][1:] + confusion[2][1:]] == [summary["values"][f"test/confusion/{k}"] for k in ("tn", "fp", "fn", "tp")]
    facts = dict(page.tables["summary"][1:])
    assert facts["plugin"] == "cutoff 0.0.1" and facts["framework"] == "rules" and facts["best epoch"] == str(summary["best"]["epoch"])
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [row[0] for row in page.tables["epochs"][1:]] == [str(json.loads(line)["epoch"]) for line in lines]
    assert [row[1] for row in page.tables["top-epochs"][1:]] == [str(e["epoch"]) for e in summary["top_epochs"]]
    assert {row[0]: row[1] for row in page.tables["probe-boundary"][1:]} == {"simple": "15", "dense": "8", "superdense": "50"}
    assert {row[0]: row[2] for row in page.tables["probe-boundary"][1:]} == {"simple": "30", "dense": "30", "superdense": "none"}
    config = dict(page.tables["config"][1:])
    assert config["plugin"] == "cutoff" and json.loads(config["resolved_params"])["model/limits"] == "simple:15,dense:8,superdense:50"


# -------------------------------------------------------------------------------------------------
# qa probe
# -------------------------------------------------------------------------------------------------


def cut_support(run_dir: Path):
    """By hand from the tokens: did the run's max_len cut reach a record's earliest supporting sentence?"""
    from qa_core.data.tokenizer import tokenize

    max_len = json.loads((run_dir / "config.json").read_text())["max_len"]

    def lost(e: Example) -> bool:
        story = tokenize(e.story)
        cut = len(story) + 1 + len(tokenize(e.question)) - max_len
        starts = [0] + [i + 1 for i, t in enumerate(story) if t == "."]
        return cut > 0 and starts[e.support[0]] < cut

    return lost


def test_probe_names_the_boundary_of_a_model_whose_accuracy_falls(probed, tiny_data):
    result, run_dir = probed
    directory = run_dir / "probe"
    stories = read_jsonl(directory / "probe.jsonl")
    counts = Counter((e.category, e.noun_count) for e in stories)
    cells = {(c, n) for c in LIMITS for n in (4, 8, 15, 30, 50)} - {("dense", 4), ("superdense", 4)}  # too few nouns for a twin
    assert counts == {cell: 4 for cell in cells}  # exactly --per-cell stories in every cell
    assert all(Counter(e.answer for e in stories if (e.category, e.noun_count) == cell) == {True: 2, False: 2} for cell in cells)
    train_stories = {e.story for e in read_jsonl(tiny_data / "train.jsonl")}
    assert not train_stories & {e.story for e in stories} and all(e.id.startswith("probe-") for e in stories)

    probe = json.loads((directory / "probe.json").read_text())
    lost = cut_support(run_dir)
    expected = expected_cells([e for e in stories if not lost(e)])  # the curve is on answerable records
    got = {(c, p["noun_count"]): (p["accuracy"], p["count"]) for c, points in probe["curve"].items() for p in points}
    assert_same_cells(got, expected)
    # the rule's accuracies: 1 below the limit, 0.5 up to twice it, 0 beyond
    assert [p["accuracy"] for p in probe["curve"]["simple"]] == [1.0, 1.0, 0.5, 0.0, 0.0]
    assert probe["boundary"] == {"simple": 15, "dense": 8, "superdense": 50}
    assert [(s["category"], s["noun_count"]) for s in probe["skipped"]] == [("dense", 4), ("superdense", 4)]
    assert re.fullmatch(r"superdense stories need 8\.\.\d+ nouns", probe["skipped"][1]["reason"])
    cut = Counter((e.category, e.noun_count) for e in stories if lost(e))
    assert {(x["category"], x["noun_count"]): x["lost"] for x in probe["lost_to_max_len"]} == dict(cut) and probe["axis"] == "noun_count"
    assert probe["seen_in_training"] == 0 and probe["threshold"] == 0.75 and probe["per_cell"] == 4
    config = json.loads((run_dir / "config.json").read_text())
    assert probe["seed"] != config["seed"]

    rows = list(csv.DictReader(io.StringIO((directory / "curve.csv").read_text())))
    assert_same_cells({(r["category"], int(r["noun_count"])): (float(r["accuracy"]), int(r["count"])) for r in rows if int(r["count"])}, expected)
    check_png(directory / "accuracy_by_noun_count.png", (800, 500))
    check_png(directory / "cell_heatmap.png", (900, 500))  # five noun-count columns: 1.2 in each + 3 in
    assert json.loads((directory / "eval" / "metrics.json").read_text())["overall"]["count"] == len(stories)

    out = result.out
    # 4 of 4: [0.51, 1.00]; 2 of 4: [0.15, 0.85]; 0 of 4: [0.00, 0.49] (Wilson)
    assert re.search(r"^simple\s+1\.000 \[0\.51, 1\.00\]\s+1\.000 \[0\.51, 1\.00\]\s+0\.500 \[0\.15, 0\.85\]\s+0\.000 \[0\.00, 0\.49\]\s+0\.000 \[0\.00, 0\.49\]$", out, re.M)
    # 50-noun superdense stories are longer than this run's window: that cell is scored on its answerable ones
    assert re.search(r"^superdense\s+-\s+1\.000 \S+ \S+\s+1\.000 \S+ \S+\s+1\.000 \S+ \S+\s+(\d\.\d{3} \S+ \S+|-)$", out, re.M)
    # the point estimate falls below 0.75 at the limit; the upper bound only where the rule is wrong
    assert re.search(r"^  dense\s+8 nouns \(already below at the smallest noun count probed\); surely below from 30 nouns$", out, re.M)
    assert re.search(r"^  superdense\s+50 nouns; ", out, re.M)
    assert {k: v for k, v in probe["boundary_upper_bound"].items() if k != "superdense"} == {"simple": 30, "dense": 30}
    assert [p["accuracy_high"] for p in probe["curve"]["simple"]][2:] == pytest.approx([0.8500, 0.4899, 0.4899], abs=1e-4)


def test_probe_on_the_length_axis_scores_answerable_records_and_names_capped_cells(qa, cutoff_run, cutoff_env):
    from qa_core.data.records import sentence_count

    result = qa("probe", str(cutoff_run), "--axis", "length", "--lengths", "16,64", "--length-nouns", "8", "--per-cell", "6", "--json", env=cutoff_env)
    assert result.code == 0, result.err
    probe = json.loads(result.out)
    stories = read_jsonl(cutoff_run / "probe" / "probe.jsonl")
    assert {e.noun_count for e in stories} == {8} and Counter(sentence_count(e.story) for e in stories) == {16: 18, 64: 18}
    assert probe["axis"] == "length" and probe["length_noun_count"] == 8 and probe["noun_counts"] == [16, 64]
    # The run's max_len covers its own data, not 64-sentence stories: count, per cell, the records
    # whose earliest supporting sentence the cut reached, by hand from the tokens.
    lost = cut_support(cutoff_run)
    expected = Counter((e.category, 16 if sentence_count(e.story) == 16 else 64) for e in stories if lost(e))
    assert expected and {(x["category"], x["length"]): x["lost"] for x in probe["lost_to_max_len"]} == dict(expected)
    got = {(c, p["noun_count"]): p["count"] for c, points in probe["curve"].items() for p in points}
    for (category, length), cut in expected.items():
        assert got.get((category, length), 0) == 6 - cut  # accuracy is on the answerable records only
    capped = {(x["category"], x["length"]) for x in probe["capped_by_truncation"]}
    assert capped == {cell for cell, cut in expected.items() if (6 - cut + 0.5 * cut) / 6 < 0.75}
    text = qa("probe", str(cutoff_run), "--axis", "length", "--lengths", "16,64", "--per-cell", "6", env=cutoff_env).out
    assert "s<=16" in text and "lost to max_len" in text and "on answerable records" in text


def test_probe_threshold_moves_the_boundary(qa, cutoff_run, cutoff_env, tmp_path):
    result = qa("probe", str(cutoff_run), "--noun-counts", "8,30,50", "--per-cell", "2", "--threshold", "0.5", "--seed", "9", "--json", env=cutoff_env)
    assert result.code == 0, result.err
    probe = json.loads(result.out)
    # exactly 0.5 is not below 0.5: the half-right cells pass, and the boundary is where the rule
    # turns wrong (twice the limit)
    assert probe["boundary"] == {"simple": 30, "dense": 30, "superdense": None}
    assert probe["seed"] == 9 and probe["skipped"] == []


def test_probe_refuses_bad_options(qa, cutoff_run, cutoff_env):
    for args, message in (
        (["--categories", "weird"], "the generator has no category 'weird'"),
        (["--noun-counts", "1,2"], "none of them can be generated"),
        (["--per-cell", "0"], "--per-cell: expected a positive integer"),
        (["--noun-counts", "8,x"], "--noun-counts: expected comma-separated integers"),
        (["--axis", "size"], "--axis: expected one of noun_count, length"),
        (["--axis", "length", "--lengths", "10,12"], "share a length bucket"),
    ):
        result = qa("probe", str(cutoff_run), *args, env=cutoff_env)
        assert result.code == 2 and message in result.err and "Traceback" not in result.err, (args, result.err)


# -------------------------------------------------------------------------------------------------
# qa compare
# -------------------------------------------------------------------------------------------------


def bow_cells(run_dir: Path, test: list[Example]) -> dict[tuple[str, int], tuple[float, int]]:
    """The bow run's per-cell test accuracy from its misclassified list and the test file."""
    wrong = {json.loads(line)["id"] for line in (run_dir / "eval" / "misclassified.jsonl").read_text().splitlines()}
    return expected_cells(test, says_yes=lambda e: e.answer != (e.id in wrong))


def test_compare_puts_runs_of_two_frameworks_side_by_side(qa, bow_run, cutoff_run, cutoff_env, tiny_data, tmp_path):
    result = qa("compare", str(bow_run), str(cutoff_run), "--plot", "--out", str(tmp_path / "cmp"), env=cutoff_env)
    assert result.code == 0, result.err
    test = read_jsonl(tiny_data / "test.jsonl")
    runs = [bow_cells(bow_run, test), expected_cells(test)]
    lines = result.out.splitlines()
    rows = {parts[0]: parts[1:] for parts in (re.split(r"\s{2,}", line.strip()) for line in lines) if len(parts) >= 3}
    assert rows["framework"] == ["numpy", "rules"]
    assert rows["plugin"] == ["bow 0.1.0", "cutoff 0.0.1"]
    # "better" means significant: exact McNemar on the paired records (scipy), Holm over the cells
    from scipy.stats import binomtest

    from qa_core.analysis.significance import holm
    from qa_core.metrics import wilson

    wrong = {json.loads(line)["id"] for line in (bow_run / "eval" / "misclassified.jsonl").read_text().splitlines()}
    cells = list(runs[1])
    discordant = {cell: [0, 0] for cell in cells}
    for e in test:
        bow_right, cutoff_right = e.id not in wrong, cutoff_says_yes(e) == e.answer
        if bow_right != cutoff_right:
            discordant[(e.category, e.noun_count)][0 if bow_right else 1] += 1
    p_values = [binomtest(b, b + c, 0.5).pvalue if b + c else 1.0 for b, c in (discordant[cell] for cell in cells)]
    for (category, nouns), p_holm in zip(cells, holm(p_values)):
        texts = rows[f"{category}/noun_{nouns}"]
        accuracy = [runs[r][(category, nouns)][0] for r in range(2)]
        for r in range(2):
            count = runs[r][(category, nouns)][1]
            low, high = wilson(round(accuracy[r] * count), count)
            assert texts[r].startswith(f"{accuracy[r]:.3f} [{float(low):.2f}, {float(high):.2f}] ({count})")
        marked = [text.endswith(" *") for text in texts[:2]]
        assert marked == ([a == max(accuracy) for a in accuracy] if p_holm < 0.05 else [False, False])
        assert texts[2].startswith("no significant difference") == (p_holm >= 0.05)
    summaries = [json.loads((d / "summary.json").read_text()) for d in (bow_run, cutoff_run)]
    assert rows["best epoch"] == [f"{s['best']['epoch']} (val {s['best']['accuracy']:.4f})" for s in summaries]
    assert rows["training time (s)"] == [f"{s['seconds']:.1f}" for s in summaries]

    out = tmp_path / "cmp"
    check_png(out / "compare.png", (1200, 500))  # 10 groups (overall + 9 cells) x 2 runs
    data = json.loads((out / "compare.json").read_text())
    assert [r["run_id"] for r in data["runs"]] == [bow_run.name, cutoff_run.name]
    by_name = {row["name"]: row for row in data["rows"]}
    accuracy = [s["test"]["accuracy"] for s in summaries]
    assert by_name["test accuracy"]["values"] == pytest.approx(accuracy)
    overall_test = by_name["test accuracy"]["tests"][0]
    assert overall_test["method"] == "mcnemar"
    assert by_name["test accuracy"]["better"] == ([int(np.argmax(accuracy))] if overall_test["p"] < 0.05 else [])
    table = list(csv.reader(io.StringIO((out / "compare.csv").read_text())))
    assert table[0] == ["row", bow_run.name, cutoff_run.name, "better", "significance"]
    assert float(dict((r[0], r[2]) for r in table[1:])["simple/noun_30"]) == 0.0


def test_compare_notes_runs_scored_on_different_test_sets(qa, bow_run, tiny_data, tmp_path):
    from qa_core.data.records import write_jsonl

    data = tmp_path / "data"
    for split in ("train", "val"):
        write_jsonl(data / f"{split}.jsonl", read_jsonl(tiny_data / f"{split}.jsonl"))
    write_jsonl(data / "test.jsonl", read_jsonl(tiny_data / "test.jsonl")[:45])
    assert qa("run", "--plugin", "bow", "--data", str(data), "--epochs", "1", "--runs-dir", str(tmp_path / "runs"), "--no-progress").code == 0
    result = qa("compare", str(bow_run), str(only_run(tmp_path / "runs")))
    assert result.code == 0, result.err
    assert "note: the runs' test sets differ" in result.out
    assert re.search(r"^  superdense/noun_30\s+\S+ \[\S+ \S+\] \(10\)\s+-$", result.out, re.M)  # a cell one run lacks
    assert "unpaired two-proportion tests" in result.out


# -------------------------------------------------------------------------------------------------
# errors and the optional matplotlib
# -------------------------------------------------------------------------------------------------


def test_commands_refuse_a_directory_that_is_not_a_run(qa, bow_run, tmp_path):
    (tmp_path / "empty").mkdir()
    for args in (
        ["report", str(tmp_path / "empty")],
        ["plot", str(tmp_path / "empty")],
        ["probe", str(tmp_path / "empty")],
        ["compare", str(bow_run), str(tmp_path / "empty")],
        ["report", str(tmp_path / "missing")],
    ):
        result = qa(*args)
        assert result.code == 2, (args, result.err)
        assert result.err.startswith("error: ") and "not a run directory" in result.err and len(result.err.strip().splitlines()) == 1
    result = qa("compare", str(bow_run))
    assert result.code == 2 and "at least two run directories" in result.err


def test_without_matplotlib_commands_say_how_to_install_it_and_write_the_numbers(qa, bow_run, tiny_data, tmp_path):
    # A matplotlib that fails to import, ahead of the real one on the path.
    blocker = tmp_path / "no-matplotlib" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib is blocked for this test')\n")
    env = {"PYTHONPATH": str(blocker.parent)}
    hint = "pip install 'qa-core[plots]'"

    result = qa("evaluate", str(bow_run), "--data", str(tiny_data / "test.jsonl"), "--out", str(tmp_path / "eval"), env=env)
    assert result.code == 0, result.err
    assert hint in result.err
    assert {p.name for p in (tmp_path / "eval").iterdir()} == {"metrics.json", "groups.csv", "confusion_matrix.json", "misclassified.jsonl", "errors.json", "predictions.jsonl", "predictions.json"}

    result = qa("report", str(bow_run), "--out", str(tmp_path / "report.html"), env=env)
    assert result.code == 0 and hint in result.out and "0 plots embedded" in result.out
    page = read_page(tmp_path / "report.html")
    assert not page.images and "cells" in page.tables and hint in html.unescape((tmp_path / "report.html").read_text())

    result = qa("compare", str(bow_run), str(bow_run), "--plot", "--out", str(tmp_path / "cmp"), env=env)
    assert result.code == 0 and hint in result.out
    assert {p.name for p in (tmp_path / "cmp").iterdir()} == {"compare.json", "compare.csv"}

    result = qa("plot", str(bow_run), env=env)
    assert result.code == 2 and hint in result.err and "Traceback" not in result.err


def test_the_cli_imports_no_analysis_module_until_a_command_needs_it():
    import subprocess
    import sys

    code = "import sys, qa_core.cli; print(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'qa_core.analysis.'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['qa_core.analysis.commands']"
