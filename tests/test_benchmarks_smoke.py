"""The benchmark harness works end to end at a toy size (no timing is asserted: benchmarks are
not tests; ``python -m benchmarks`` measures)."""

from __future__ import annotations

import json

import pytest

from benchmarks import grouped_metrics
from benchmarks.__main__ import table
from benchmarks.common import Comparison, side_by_side


def test_side_by_side_alternates_and_reports_a_ratio():
    calls: list[str] = []
    comparison = side_by_side({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]  # the order flips every round
    assert len(comparison.seconds_a) == len(comparison.seconds_b) == 3
    fixed = Comparison("a", "b", seconds_a=[3.0, 1.0, 2.0, 10.0], seconds_b=[2.0, 2.0, 1.0, 4.0])
    assert fixed.ratio == pytest.approx(2.5 / 2.0)  # medians, so the 10 s outlier does not count
    assert (fixed.to_json()["round_ratio_min"], fixed.to_json()["round_ratio_max"]) == (0.5, 2.5)


def test_grouped_metrics_at_a_toy_size_writes_the_keyed_figures():
    pytest.importorskip("pandas")
    pytest.importorskip("sklearn")
    result = grouped_metrics.run(quick=True, sizes=((20_000, "1m"),))
    data = json.loads(json.dumps(result.to_json()))
    assert set(data["figures"]) == {
        "metrics_1m_qa_ms", "metrics_1m_ratio_vs_pandas_groupby", "metrics_1m_ratio_vs_sklearn_confusion_matrix",
        "metrics_1m_ratio_vs_memory_floor", "metrics_1m_memory_floor_ms",
        "metrics_1m_ratio_vs_numpy_kernels", "metrics_1m_numpy_kernels_ms", "metrics_1m_ratio_vs_memory_floor_cpu",
        "metrics_1m_qa_cpu_ms",
    }
    assert data["targets"]["metrics_1m_ratio_vs_memory_floor"]["op"] == "<=" and data["targets"]["metrics_1m_qa_ms"]["value"] == 6.0
    assert data["targets"]["metrics_1m_ratio_vs_pandas_groupby"]["op"] == "<="
    assert all(value > 0 for value in data["figures"].values())
    assert "metrics_1m_ratio_vs_pandas_groupby" in table([result])


def test_pandas_baseline_computes_the_same_numbers_as_qa():
    pd = pytest.importorskip("pandas")
    data = grouped_metrics.predictions(5_000, seed=3)
    grouped_metrics.check_same(grouped_metrics.qa_scores(data), grouped_metrics.pandas_scores(pd, data))


# The model benchmarks at a toy size: they must keep running as the plugins change (a changed
# network signature once broke two of them unnoticed), and their parity checks must hold.


def test_transformer_benchmark_runs_with_loss_parity_to_5_decimals():
    pytest.importorskip("torch")
    from benchmarks import transformer_epoch

    result = transformer_epoch.run(quick=True, train_rows=96, repeats=1)
    assert result.skipped is None, result.skipped
    assert result.details["parity"]["equal_to_5_decimals"], result.details["parity"]
    assert result.figures["transformer_epoch_ratio_vs_raw_loop"] > 0


def test_lightning_benchmark_runs_with_loss_parity_on_both_models():
    pytest.importorskip("torch")
    pytest.importorskip("pytorch_lightning")
    from benchmarks import lightning_epoch

    result = lightning_epoch.run(quick=True, rows=(64, 64), repeats=1)
    assert result.skipped is None, result.skipped
    for label in ("default", "small"):
        measured = result.details[f"{label}_model"]
        assert measured["parity"]["equal_to_5_decimals"], measured["parity"]
        assert len(measured["epoch"]["seconds"]["lightning_epoch"]) == 1  # the hook clock saw the timed epoch only
    assert result.details["small_model"]["setup"]["params"]["d_model"] == 16
    assert result.figures["transformer_epoch_ratio_vs_lightning"] > 0 and result.figures["transformer_small_epoch_ratio_vs_lightning"] > 0


def test_scaling_benchmark_fits_an_exponent_per_stage_with_memory_beside_each_size():
    pytest.importorskip("torch")
    from benchmarks import scaling

    caps = {stage: 400 for stage in scaling.STAGES}
    caps["transformer_epoch"] = 100  # one size only: no exponent, and none claimed
    result = scaling.run(quick=True, sizes=(100, 400), caps=caps)
    assert not result.notes, result.notes
    assert set(result.figures) == {f"scaling_k_{stage}" for stage in scaling.STAGES if stage != "transformer_epoch"}
    assert all(result.targets[key] == ("<=", 1.1) for key in result.figures)
    table = result.details["table"]
    assert set(table["encode"]) == {"100", "400"} and set(table["transformer_epoch"]) == {"100"}
    assert all(cell["seconds"] > 0 and "peak_mib" in cell for by_size in table.values() for cell in by_size.values())


def test_scaling_exponent_is_the_log_log_slope():
    from benchmarks.scaling import exponent

    assert exponent([1_000, 10_000, 100_000], [0.01, 0.1, 1.0]) == pytest.approx(1.0)
    assert exponent([1_000, 10_000, 100_000], [0.01, 1.0, 100.0]) == pytest.approx(2.0)


def test_full_length_benchmark_compares_an_uncut_epoch_with_the_96_token_one():
    pytest.importorskip("torch")
    from benchmarks import full_length

    result = full_length.run(quick=True, train_rows=256, repeats=1)
    assert result.skipped is None, result.skipped
    setup = result.details["setup"]
    assert setup["full_max_len"] > full_length.OLD_MAX_LEN and setup["rows_longer_than_96"] > 0  # the cut side really cut
    padding = setup["padding_fraction"]
    assert padding["grouped"] < padding["ungrouped"]  # the grouped side really trains on grouped batches
    for arch in full_length.ARCHITECTURES:
        assert result.figures[f"transformer_{arch}_full_length_epoch_ratio_vs_96_tokens"] > 0
        assert result.figures[f"transformer_{arch}_full_length_epoch_ratio_vs_96_tokens_cpu"] > 0
        assert len(result.details[f"transformer_{arch}_full_length_grouped_vs_ungrouped"]["seconds"][f"{arch}/grouped"]) == 1
    assert result.figures["transformer_full_length_epoch_ratio_vs_96_tokens"] > 0


def test_prepared_specs_carry_the_vocabulary_the_memory_networks_cut_sentences_with():
    # Without spec.vocab both plugins' memory networks find no sentence end and read each story
    # as one sentence: the benchmarks then time a different (quadratic) network than qa run trains.
    pytest.importorskip("torch")
    from benchmarks.common import model_plugin, prepare
    from qa_transformer_torch.network import sentence_end_ids

    prepared = prepare(model_plugin("transformer", needs="torch"), {"threads": "1"}, 40, 10)
    assert prepared.spec.vocab == prepared.vocab.tokens
    assert sentence_end_ids(prepared.spec)  # "." at least


def test_rotated_rounds_start_each_round_one_side_later():
    from benchmarks.full_length import rotated_rounds

    calls: list[str] = []
    wall, cpu = rotated_rounds({name: (lambda name=name: calls.append(name)) for name in "abc"}, repeats=2, before=lambda r: calls.append(f"r{r}"))
    assert calls == ["r0", "a", "b", "c", "r1", "b", "c", "a", "r2", "c", "a", "b"]
    assert {name: len(seconds) for name, seconds in wall.items()} == {name: len(seconds) for name, seconds in cpu.items()} == {"a": 2, "b": 2, "c": 2}


def test_evaluation_benchmark_runs():
    pytest.importorskip("torch")
    from benchmarks import evaluation

    result = evaluation.run(quick=True, val_rows=64, repeats=1)
    assert result.skipped is None, result.skipped
    assert result.figures["evaluate_ratio_vs_raw_predict_loop"] > 0


def test_lstm_benchmark_runs_with_loss_parity_against_both_baselines():
    pytest.importorskip("tensorflow")
    from benchmarks import lstm_epoch

    result = lstm_epoch.run(quick=True, train_rows=64, repeats=1)
    assert result.skipped is None, result.skipped
    assert result.details["parity"]["equal_to_5_decimals"], result.details["parity"]
    assert {"lstm_epoch_ratio_vs_raw_fit", "lstm_epoch_ratio_vs_raw_fit_same_pipeline"} <= set(result.figures)


def test_tracking_benchmark_sees_no_per_step_io_on_the_training_thread():
    from benchmarks import tracking

    result = tracking.run(quick=True, train_rows=64, repeats=1)
    assert result.skipped is None, result.skipped
    assert result.figures["training_thread_io_events_per_step"] <= 0.1
    # the metrics hand-off: the local tracker's run files, and nothing else, on this thread
    assert result.figures["tracker_io_events_per_epoch_on_training_thread"] == 0, result.details["other_handoff_io_events"]
    assert result.details["local_files_io_events_per_epoch"] >= 1
    assert not result.details["abandoned_trackers"]


def test_time_to_accuracy_stops_at_the_epoch_cap_and_reports_unreached_levels_as_null():
    from benchmarks import time_to_accuracy

    result = time_to_accuracy.run(quick=True, plugins=("bow",), train_rows=64, val_rows=48, max_epochs=3)
    assert result.skipped is None, result.skipped
    curve = result.details["bow"]["curve"]
    assert 1 <= len(curve) <= 3 and [p["epoch"] for p in curve] == list(range(1, len(curve) + 1))
    assert result.figures["bow_best_val_acc"] == max(p["val_accuracy"] for p in curve)
    levels = {f"bow_seconds_to_val_acc_{level:.2f}": ("val_accuracy", level) for level in time_to_accuracy.OVERALL_LEVELS}
    levels.update({f"bow_seconds_to_simple_val_acc_{level:.2f}": ("simple_val_accuracy", level) for level in time_to_accuracy.SIMPLE_LEVELS})
    for key, (field, level) in levels.items():
        first = next((point for point in curve if point[field] >= level), None)
        if first is None:  # never reached: null, and the run went on to the epoch cap
            assert result.figures[key] is None and len(curve) == 3
        else:
            assert result.figures[key] == pytest.approx(first["seconds"], abs=0.01)


def test_hops_to_accuracy_reports_the_first_epoch_each_cell_reached_the_level():
    from benchmarks import hops_to_accuracy

    assert hops_to_accuracy.run(quick=True).skipped  # full mode only
    result = hops_to_accuracy.run(quick=False, plugins=("bow",), train_per_cell=40, cap_seconds=60, max_epochs=3, level=0.5)
    curve = result.details["bow"]["curve"]
    assert 1 <= len(curve) <= 3 and result.details["bow"]["max_len"] == result.details["bow"]["params"].get("max_len", result.details["bow"]["max_len"])
    for cell in ("dense-8", "superdense-8"):
        first = next((point for point in curve if point[f"val_{cell}"] >= 0.5), None)
        assert result.figures[f"bow_seconds_to_val_0.50_{cell}"] == (None if first is None else first["seconds"])
        assert 0.0 <= result.figures[f"bow_test_accuracy_{cell}"] <= 1.0
    if all(result.figures[f"bow_seconds_to_val_0.50_{c}"] is None for c in ("dense-8", "superdense-8")):
        assert len(curve) == 3  # not reached: trained on to the cap


def test_data_audit_benchmark_reports_fresh_and_old_shortcuts():
    from benchmarks import data_audit

    result = data_audit.run(quick=True, per_cell=60)
    assert set(result.figures) == {"fresh_shortcuts", "fresh_max_abs_deviation", "old_generator_shortcuts"}
    assert result.figures["old_generator_shortcuts"] >= 1 and result.target_met("old_generator_shortcuts")
    assert result.details["per_cell"] == 60 and len(result.details["fresh"]) == 9 * 7


def test_sweep_benchmark_at_a_toy_size_writes_its_ratio():
    from benchmarks import sweep

    result = sweep.run(quick=True, with_ray=False, sizes={"train": 120, "val": 40, "test": 40}, epochs=1)
    assert result.details["trials"] == 4
    assert result.figures["sweep_2_workers_ratio_vs_sequential"] > 0
    assert "sweep_2_workers_ratio_vs_sequential" in table([result])
