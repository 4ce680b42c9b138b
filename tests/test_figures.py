"""Figures for a paper: `qa plot --format png|pdf|svg --dpi`, read back with real parsers (pypdf,
an XML parser, the PNG header); colour-blind-safe colormaps with legible annotations; titles from
plugin, dataset and seed; labels that tell runs apart; the report's hyperparameters, flags and
misclassified stories."""

from __future__ import annotations

import json
import re
import struct
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from qa_core.analysis import plots  # noqa: E402
from qa_core.analysis.runs import RunRecord  # noqa: E402

STEMS = {"training_curves", "accuracy_by_noun_count", "cell_heatmap", "confusion_matrix"}


@pytest.fixture(scope="module")
def runs(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory, qa) -> list[Path]:
    """Two runs of one plugin that differ by seed; the first stops early, the second is resumed."""
    directory = tmp_path_factory.mktemp("figures") / "runs"
    made = []
    for extra in (("--seed", "0", "--epochs", "8", "--patience", "1", "--lr", "0.5"), ("--seed", "1", "--epochs", "1")):
        before = set(directory.iterdir()) if directory.exists() else set()
        result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--no-progress", "--runs-dir", str(directory), *extra)
        assert result.code == 0, result.err
        (path,) = [p for p in directory.iterdir() if p not in before and not p.name.startswith("_")]
        made.append(path)
    resumed = qa("run", "--resume", str(made[1]), "--epochs", "2", "--no-progress")
    assert resumed.code == 0, resumed.err
    return made


def dataset(run_dir: Path) -> str:
    return json.loads((run_dir / "config.json").read_text())["dataset"]


def plot(qa, run_dir: Path, out: Path, *args: str) -> list[Path]:
    result = qa("plot", str(run_dir), "--out", str(out), *args)
    assert result.code == 0, result.err
    return [Path(line[len("wrote ") :]) for line in result.out.splitlines() if line.startswith("wrote ")]


def test_pdf_files_open_in_a_pdf_parser(runs: list[Path], tmp_path: Path, qa) -> None:
    pypdf = pytest.importorskip("pypdf")
    files = plot(qa, runs[0], tmp_path, "--format", "pdf")
    assert {f.stem for f in files} == STEMS and all(f.suffix == ".pdf" for f in files)
    for path in files:
        reader = pypdf.PdfReader(str(path))
        (page,) = reader.pages
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        inches = plots.SIZES[f"{path.stem}.png"] if path.stem != "cell_heatmap" else None
        if inches:
            assert (width, height) == pytest.approx((inches[0] * 72, inches[1] * 72))
        text = page.extract_text()
        assert f"bow on {dataset(runs[0])}, seed 0" in text, (path.name, text)  # titled by plugin, dataset, seed
        assert runs[0].name not in text  # not by the raw run id


def test_svg_files_parse_as_xml_with_their_text(runs: list[Path], tmp_path: Path, qa) -> None:
    files = plot(qa, runs[0], tmp_path, "--format", "svg")
    assert {f.stem for f in files} == STEMS
    for path in files:
        root = ElementTree.parse(path).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        texts = " ".join("".join(node.itertext()) for node in root.iter("{http://www.w3.org/2000/svg}text"))
        assert "seed 0" in texts, path.name
        if path.stem in ("accuracy_by_noun_count", "training_curves"):
            assert "chance 0.5" in texts


def test_dpi_sets_the_png_size(runs: list[Path], tmp_path: Path, qa) -> None:
    (path,) = [f for f in plot(qa, runs[0], tmp_path, "--format", "png", "--dpi", "200") if f.stem == "confusion_matrix"]
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    inches = plots.SIZES["confusion_matrix.png"]
    assert (width, height) == (int(inches[0] * 200), int(inches[1] * 200))


def test_bad_format_and_dpi_are_one_line(runs: list[Path], tmp_path: Path, qa) -> None:
    for args, message in (
        (("plot", str(runs[0]), "--format", "jpg"), "error: --format: expected png, pdf or svg, got 'jpg'"),
        (("plot", str(runs[0]), "--dpi", "0"), "error: --dpi: expected an integer from 10 to 2400, got 0"),
        (("report", str(runs[0]), "--format", "pdf"), "error: --format: expected png or svg, got 'pdf'"),
    ):
        result = qa(*args)
        assert (result.code, result.err.strip()) == (2, message)


def _luminance(rgba) -> float:
    return 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]


def test_colour_blind_safe_maps_with_legible_annotations(runs: list[Path]) -> None:
    from matplotlib.colors import to_rgba

    run = RunRecord.load(runs[0])
    figures = plots.run_figures(run)
    for name, cmap in (("cell_heatmap.png", "viridis"), ("confusion_matrix.png", "cividis")):
        figure = figures[name]
        axes = figure.axes[0]
        (image,) = axes.images
        assert image.cmap.name == cmap
        assert len(figure.axes) == 2  # the image and its colour bar
        data = np.ma.filled(image.get_array(), np.nan)
        for text in axes.texts:
            x, y = (int(round(v)) for v in text.get_position())
            if not np.isfinite(data[y, x]):
                continue
            background = _luminance(image.cmap(image.norm(data[y, x])))
            assert abs(_luminance(to_rgba(text.get_color())) - background) > 0.4, (name, text.get_text())


def test_labels_tell_runs_of_one_plugin_apart(runs: list[Path]) -> None:
    records = [RunRecord.load(path) for path in runs]
    # they differ by seed first, then by the hyperparameter the first run set (--lr 0.5)
    assert plots.distinct_labels(records) == ["bow seed=0 lr=0.5", f"bow seed=1 lr={records[1].config['resolved_params']['model/lr']}"]
    assert plots.distinct_labels(records[:1]) == ["bow"]


def test_report_shows_effective_hyperparameters_flags_and_misclassified_stories(runs: list[Path], tmp_path: Path, qa) -> None:
    pages = []
    for index, run_dir in enumerate(runs):
        out = tmp_path / f"r{index}.html"
        assert qa("report", str(run_dir), "--out", str(out)).code == 0
        pages.append(out.read_text(encoding="utf-8"))
    early, resumed = pages
    hyper = re.search(r'<table id="hyperparameters">.*?</table>', early, re.S)[0]
    assert "<td class=\"text\">lr</td><td>0.5</td><td>given</td>" in hyper
    assert "<td class=\"text\">l2</td><td>0.0001</td><td>default</td>" in hyper
    assert "null" not in hyper
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["epochs_run"] < 8
    assert f"Truncated: {summary['epochs_run']} of 8 planned epochs were run (early stopping (patience 1))." in early
    assert "Resumed:" not in early
    assert "Resumed: this run was interrupted and continued after epoch 1" in resumed and "Truncated" not in resumed
    # misclassified stories: at most 3 per cell, each one of the run's real mistakes
    table = re.search(r'<table id="misclassified">.*?</table>', early, re.S)[0]
    rows = re.findall(r'<tr><td class="text">([^<]+)</td><td>(\d+)</td>', table)
    assert rows and max(rows.count(cell) for cell in set(rows)) <= 3
    wrong = [json.loads(line) for line in (runs[0] / "eval" / "misclassified.jsonl").read_text().splitlines()]
    cells = {(w["category"], str(w["noun_count"])) for w in wrong}
    assert set(rows) == cells
    assert "<h1>Run " in early and f"bow on {dataset(runs[0])}, seed 0" in early.split("</h1>")[0]
