"""Debug-mode runs read back: every field Neptune got matches what the run wrote locally.

Debug mode keeps the run in memory; the session leaves it open after the qa run ends because
neptune refuses to read a stopped run back. Its fake backend keeps series values but numbers the
points 0, 1, 2, ... whatever step was sent, so steps are checked on offline runs
(test_offline_runs.py), which record them on disk exactly as a server would receive them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

MODELS = ("bow", "transformer", "lstm")


def field_paths(run: Any) -> set[str]:
    def walk(tree: dict, prefix: str) -> Iterator[str]:
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from walk(value, f"{prefix}{key}/")
            else:
                yield f"{prefix}{key}"

    return set(walk(run.get_structure(), ""))


def series_paths(run: Any) -> set[str]:
    from neptune.attributes.series.float_series import FloatSeries

    return {path for path in field_paths(run) if isinstance(run.get_attribute(path), FloatSeries)}


@pytest.fixture(scope="module")
def debug_runs(run_qa, model_names, tmp_path_factory):
    """One tiny debug-mode run per installed model plugin, made on first use."""
    made: dict[str, Any] = {}

    def get(plugin: str) -> Any:
        if plugin not in model_names:
            pytest.skip(f"model plugin {plugin!r} is not installed")
        if plugin not in made:
            made[plugin] = run_qa(plugin, tmp_path_factory.mktemp(f"runs-{plugin}"), {"mode": "debug", "tags": "nightly"}, tags=["tiny"])
        return made[plugin]

    yield get
    for run in made.values():
        run.session.close()


@pytest.mark.parametrize("plugin", MODELS)
def test_every_epoch_metric_is_a_series_matching_metrics_jsonl(debug_runs, helpers, plugin: str) -> None:
    run = debug_runs(plugin)
    helpers.assert_run_dir_complete(run)
    neptune_run = run.session.run
    names = {name for line in run.lines for name in line if name != "epoch"}
    assert {"metrics/train/loss", "metrics/train/accuracy", "metrics/val/loss", "metrics/val/accuracy"} <= names
    assert any("/by_group/" in name and name.endswith("/count") for name in names)
    assert series_paths(neptune_run) == names
    for name in sorted(names):
        values = neptune_run[name].fetch_values()["value"].tolist()
        assert values == pytest.approx([line[name] for line in run.lines], rel=1e-12), name


@pytest.mark.parametrize("plugin", MODELS)
def test_summary_parameters_and_run_fields_match_the_run_directory(debug_runs, helpers, plugin: str) -> None:
    run = debug_runs(plugin)
    neptune_run = run.session.run
    values = run.summary["values"]  # everything qa_log_summary sent, last value wins
    assert {"best/epoch", "best/checkpoint", "top_epochs/1/accuracy", "test/confusion/tp"} <= set(values)
    for name, value in values.items():
        assert neptune_run[name].fetch() == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), name
    assert len({p.split("/")[1] for p in field_paths(neptune_run) if p.startswith("top_epochs/")}) == len(run.summary["top_epochs"])

    for name, value in run.config["resolved_params"].items():
        assert neptune_run[f"parameters/{name}"].fetch() == value, name
    config = run.result.context.config
    assert neptune_run["config/top_k"].fetch() == config["top_k"] == run.config["top_k"]
    assert neptune_run["config/data_sources/data_dir"].fetch() == config["data_sources"]["data_dir"]
    assert neptune_run["config/logger_params/neptune/tags"].fetch() == "nightly"
    assert neptune_run["config/loggers"].fetch() == '["neptune"]'
    assert not neptune_run.exists("config/lr")  # unset

    context = run.result.context
    assert neptune_run["run/id"].fetch() == context.run_id
    assert neptune_run["sys/name"].fetch() == context.run_id
    assert neptune_run["run/plugin"].fetch() == plugin
    assert neptune_run["run/plugin_version"].fetch() == context.plugin_version
    assert neptune_run["run/dataset"].fetch() == context.dataset
    assert neptune_run["run/status"].fetch() == "finished"
    assert neptune_run["run/epochs_run"].fetch() == helpers.EPOCHS
    assert neptune_run["sys/tags"].fetch() == {"tiny", "nightly"}


@pytest.mark.parametrize("plugin", MODELS)
def test_best_model_vocabulary_and_eval_files_are_uploaded(debug_runs, plugin: str, tmp_path: Path) -> None:
    run = debug_runs(plugin)
    neptune_run = run.session.run
    run_dir = Path(run.result.run_dir)
    best = next(p for p in (run_dir / "checkpoints").glob("best*") if not p.name.endswith(".meta.json"))
    meta = next(p for p in (run_dir / "checkpoints").glob("best*.meta.json"))
    expected = {"model/best": best, "model/best.meta": meta, "model/vocab": run_dir / "vocab.json"}
    expected.update({f"eval/{path.name}": path for path in (run_dir / "eval").iterdir()})
    uploaded = {path for path in field_paths(neptune_run) if path.startswith(("model/", "eval/"))}
    assert uploaded == set(expected)
    for name, source in expected.items():
        copy = tmp_path / name.replace("/", "_")
        neptune_run[name].download(str(copy))
        assert copy.read_bytes() == source.read_bytes(), name


def test_lstm_and_transformer_runs_have_the_same_field_paths(debug_runs, model_names) -> None:
    if not {"lstm", "transformer"} <= set(model_names):
        pytest.skip("needs both the lstm and the transformer plugins")
    # Hyperparameters are the plugin's own (parameters/model/<name>, and the --param values
    # under config/params/), and so are its framework's versions (provenance); every other path
    # is shared.
    own = ("parameters/model/", "config/params/", "parameters/versions/", "config/provenance/versions/")
    # (bow is not compared: it has no training values of its own and encodes whole records, so
    # its truncation fields differ by design.)
    shared = {plugin: {p for p in field_paths(debug_runs(plugin).session.run) if not p.startswith(own)} for plugin in ("lstm", "transformer")}
    assert shared["lstm"] == shared["transformer"]
    assert any(p.startswith("val/by_group/") for p in shared["lstm"])
