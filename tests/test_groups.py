"""`qa run --seeds`: one run per seed in a group directory, its aggregate, and the commands that
take a group wherever they take a run; through the real CLI with the numpy example plugin."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest


def group_dir(runs: Path) -> Path:
    (directory,) = [p for p in runs.iterdir() if (p / "group.json").is_file()]
    return directory


@pytest.fixture(scope="module")
def group(qa, tiny_data, tmp_path_factory):
    runs = tmp_path_factory.mktemp("group-runs")
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "2", "--seeds", "0,1,2", "--runs-dir", str(runs), "--no-progress")
    assert result.code == 0, result.err
    return result, group_dir(runs)


def test_a_group_holds_one_run_per_seed_and_their_aggregate(group):
    result, directory = group
    info = json.loads((directory / "group.json").read_text())
    assert info["kind"] == "seed-group" and info["seeds"] == [0, 1, 2]
    members = [directory / m["path"] for m in info["members"]]
    configs = [json.loads((m / "config.json").read_text()) for m in members]
    assert [c["seed"] for c in configs] == [0, 1, 2]  # each member trained with its own seed
    values = [json.loads((m / "summary.json").read_text())["values"] for m in members]
    aggregate = json.loads((directory / "aggregate.json").read_text())["metrics"]
    for name in ("metrics/test/accuracy", "test/by_group/dense/noun_15/accuracy", "metrics/test/loss", "test/by_category/simple/accuracy"):
        seeds = [v[name] for v in values]
        assert aggregate[name]["values"] == seeds
        assert aggregate[name]["mean"] == pytest.approx(statistics.mean(seeds))
        assert aggregate[name]["std"] == pytest.approx(statistics.stdev(seeds))
        half = 4.303 * statistics.stdev(seeds) / 3 ** 0.5  # t(0.975, 2)
        assert (aggregate[name]["low"], aggregate[name]["high"]) == pytest.approx((statistics.mean(seeds) - half, statistics.mean(seeds) + half))
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["values"]["metrics/test/accuracy"] == pytest.approx(statistics.mean(v["metrics/test/accuracy"] for v in values))
    line = re.search(r"^  - dense/noun_15: Accuracy=(\S+) sd (\S+) \[", result.out, re.M)
    assert float(line[1]) == pytest.approx(aggregate["test/by_group/dense/noun_15/accuracy"]["mean"], abs=5e-5)
    assert result.out.count("EVALUATION RESULTS BY CATEGORY") == 3


def test_report_plot_and_compare_take_a_group(qa, group, tmp_path):
    _, directory = group
    report = qa("report", str(directory), "--out", str(tmp_path / "group.html"))
    assert report.code == 0, report.err
    page = (tmp_path / "group.html").read_text()
    assert "seeds" in page and "0, 1, 2" in page
    members = json.loads((directory / "group.json").read_text())["members"]
    seeds_table = page[page.index('<table id="seeds">'):].split("</table>")[0]
    assert all(m["run_id"] in seeds_table for m in members) and "A group of seeds" in page
    assert qa("plot", str(directory), "--out", str(tmp_path / "plots")).code == 0
    assert (tmp_path / "plots" / "cell_heatmap.png").is_file()

    # the group against its own first member: seed 0 pairs with seed 0, on the same records
    member = directory / json.loads((directory / "group.json").read_text())["members"][0]["path"]
    compared = qa("compare", str(directory), str(member), "--json")
    assert compared.code == 0, compared.err
    data = json.loads(compared.out)
    assert data["pairing"] == [{"runs": [0, 1], "test": "paired"}]
    cell = next(r for r in data["rows"] if r["name"] == "dense/noun_15")
    assert cell["tests"][0]["method"] == "mcnemar" and cell["tests"][0]["discordant"] == [0, 0]  # itself
    assert cell["better"] == []
    text = qa("compare", str(directory), str(member)).out
    assert re.search(r"#1 bow x3 seeds", text) and re.search(r"^seeds\s+0,1,2\s+0$", text, re.M)


def test_bad_seed_options_are_one_line(qa, tiny_data, tmp_path):
    for args, message in (
        (["--seeds", "0,x"], "--seeds: expected distinct comma-separated integers"),
        (["--seeds", "1,1"], "--seeds: expected distinct comma-separated integers"),
        (["--repeats", "0"], "--repeats: expected a positive integer"),
        (["--seeds", "0", "--repeats", "2"], "--seeds and --repeats: give one of them"),
    ):
        result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1", "--runs-dir", str(tmp_path), "--no-progress", *args)
        assert result.code == 2 and message in result.err and "Traceback" not in result.err, (args, result.err)
