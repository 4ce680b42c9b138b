"""The benchmark harness works end to end at a toy size (no timing is asserted: benchmarks are
not tests; ``python -m benchmarks`` measures)."""

from __future__ import annotations

import json

import pytest

from benchmarks import grouped_metrics
from benchmarks.__main__ import table
from benchmarks.common import side_by_side


def test_side_by_side_alternates_and_reports_a_ratio():
    calls: list[str] = []
    comparison = side_by_side({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]  # the order flips every round
    assert len(comparison.seconds_a) == len(comparison.seconds_b) == 3
    assert comparison.ratio == comparison.median_a / comparison.median_b


def test_grouped_metrics_at_a_toy_size_writes_the_keyed_figures():
    pytest.importorskip("pandas")
    pytest.importorskip("sklearn")
    result = grouped_metrics.run(quick=True, sizes=((20_000, "1m"),))
    data = json.loads(json.dumps(result.to_json()))
    assert set(data["figures"]) == {"metrics_1m_qa_ms", "metrics_1m_ratio_vs_pandas_groupby", "metrics_1m_ratio_vs_sklearn_confusion_matrix"}
    assert data["targets"]["metrics_1m_ratio_vs_pandas_groupby"]["op"] == "<="
    assert all(value > 0 for value in data["figures"].values())
    assert "metrics_1m_ratio_vs_pandas_groupby" in table([result])


def test_pandas_baseline_computes_the_same_numbers_as_qa():
    pd = pytest.importorskip("pandas")
    data = grouped_metrics.predictions(5_000, seed=3)
    grouped_metrics.check_same(grouped_metrics.qa_scores(data), grouped_metrics.pandas_scores(pd, data))
