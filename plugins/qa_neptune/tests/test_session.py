"""The session on its own, against a real debug-mode Neptune run: the cases a tiny training run
does not reach (non-finite values, a shrinking top-k, numpy scalars, a cleared value)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from qa_core import RunContext
from qa_core.tracking.sessions import one_line
from qa_neptune.session import NeptuneSession, plain


@pytest.fixture
def session(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    context = RunContext(
        run_id="r1", run_dir=tmp_path, plugin="bow", plugin_version="0.1.0", framework="numpy", dataset="d",
        config={}, logger_params={"neptune": {"mode": "debug"}}, tracker="neptune",
    )
    made = NeptuneSession(context)
    made.start()
    made.capsys = capsys
    yield made
    made.close()


def test_non_finite_points_are_skipped_and_the_rest_kept(session) -> None:
    session.log_metrics({"metrics/val/loss": math.nan, "metrics/val/accuracy": 0.5}, step=1)
    session.log_metrics({"metrics/val/loss": np.float32(0.25), "metrics/val/accuracy": math.inf}, step=2)
    run = session.run
    assert run["metrics/val/loss"].fetch_values()["value"].tolist() == [0.25]
    assert run["metrics/val/accuracy"].fetch_values()["value"].tolist() == [0.5]
    assert session.capsys.readouterr().err == ""


def test_a_shrinking_top_k_and_a_cleared_value_leave_no_stale_fields(session) -> None:
    top = {f"top_epochs/{rank}/{field}": value for rank in (1, 2, 3) for field, value in (("epoch", rank), ("accuracy", 0.5))}
    session.log_summary({**top, "best/checkpoint": "e1.pt"}, step=3)
    session.log_summary({"top_epochs/1/epoch": 4, "top_epochs/1/accuracy": 0.9, "best/checkpoint": None}, step=4)
    structure = session.run.get_structure()
    assert set(structure["top_epochs"]) == {"1"}
    assert session.run["top_epochs/1/epoch"].fetch() == 4
    assert not session.run.exists("best/checkpoint")


def test_numpy_and_odd_parameter_values_are_stored_plainly(session) -> None:
    session.log_params({"a": np.int64(3), "b": np.float32(0.5), "c": np.bool_(True), "d": None, "e": (1, 2)})
    run = session.run
    assert [run[f"parameters/{k}"].fetch() for k in "abcde"] == [3, 0.5, True, "None", "(1, 2)"]
    assert plain(np.array(2.0)) == 2.0 and plain([1]) == "[1]"


def test_client_errors_become_one_redacted_line() -> None:
    # neptune's exceptions are coloured multi-line banners; the core's one_line keeps the reason
    error = RuntimeError("\n\x1b[95m\n----Banner----\n\x1b[0m\nThe token s3cret-token is wrong.\nMore text.")
    assert one_line(error, ["s3cret-token"]) == "RuntimeError: The token <redacted> is wrong."


def test_a_debug_run_leaves_nothing_behind(session, tmp_path: Path) -> None:
    scratch = session.settings.sync_path
    assert scratch.is_dir() and tmp_path not in scratch.parents
    session.close()
    assert not scratch.exists()
    assert list(tmp_path.iterdir()) == []  # no .neptune/ in the working directory either
