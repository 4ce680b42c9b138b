"""The base of session-per-run trackers: one error contract, one reason line, one redaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qa_core import Param, PluginInfo, RunContext, hookimpl
from qa_core.plugins import PluginManager
from qa_core.tracking.hub import TrackerHub
from qa_core.tracking.sessions import SessionHooks, TrackerSession, TrackingError, one_line, redact


def context(tmp_path: Path, **extra: Any) -> RunContext:
    return RunContext("r1", tmp_path, "bow", "0.1", "numpy", "d", {}, **extra)


def test_one_line_keeps_the_reason_of_a_bannered_coloured_multi_line_error() -> None:
    error = RuntimeError("\n\x1b[95m\n----NeptuneException----\n\x1b[0m\nThe token s3cret is wrong.\nMore.")
    assert one_line(error, ["s3cret"]) == "RuntimeError: The token <redacted> is wrong."
    assert one_line(ValueError()) == "ValueError"
    assert one_line(TrackingError("mode async needs a token")) == "mode async needs a token"
    long = one_line(ValueError("x" * 1000))
    assert len(long) == 300 and long.endswith("...")


def test_redact_hides_given_secrets_and_url_credentials_with_the_cores_mask() -> None:
    text = "token abc123 at https://me:pw0rd@host/x and https://t0k@h"
    assert redact(text, ["abc123", "", "ab"]) == "token <redacted> at https://me:<redacted>@host/x and https://<redacted>@h"


class Recording(TrackerSession):
    """A session that fails where told, and remembers what the base made of it."""

    fail_in = "log_metrics"
    aborted: list[str] = []

    def secrets(self) -> list[str]:
        return ["hunter22"]

    def abort(self, reason: str) -> None:
        Recording.aborted.append(reason)

    def log_metrics(self, metrics: Any, step: int) -> None:
        if self.fail_in == "log_metrics":
            raise ConnectionError("server hunter22 went away\nretry 1\nretry 2")


def test_a_failing_session_call_becomes_one_redacted_tracking_error_after_abort(tmp_path: Path) -> None:
    Recording.aborted = []
    hooks = SessionHooks(Recording, name="rec")
    run = context(tmp_path)
    hooks.qa_log_run_start(run)
    assert isinstance(run.stash["rec"], Recording) and run.stash["rec"].name == "rec"
    with pytest.raises(TrackingError) as caught:
        hooks.qa_log_metrics(run, {"metrics/val/loss": 0.5}, step=3)
    assert str(caught.value) == "logging epoch 3: ConnectionError: server <redacted> went away"
    assert Recording.aborted == [str(caught.value)]


def test_a_session_that_cannot_be_opened_fails_like_any_other_call(tmp_path: Path) -> None:
    def open_session(run: RunContext) -> TrackerSession:
        raise ImportError("No module named 'myclient'")

    with pytest.raises(TrackingError, match=r"^starting the run: ImportError: No module named 'myclient'$"):
        SessionHooks(open_session, name="x").qa_log_run_start(context(tmp_path))


class Failing(Recording):
    def start(self) -> None:
        self.seen = []

    def log_params(self, params: Any) -> None:
        self.seen.append(("params", self.name, dict(self.options)))

    def log_summary(self, values: Any, step: int) -> None:
        self.seen.append(("summary", step))

    def end(self, status: str, summary: Any) -> None:
        self.seen.append(("end", status))


class FailingPlugin:
    hooks = SessionHooks(Failing)
    qa_log_run_start = hooks.qa_log_run_start
    qa_log_params = hooks.qa_log_params
    qa_log_metrics = hooks.qa_log_metrics
    qa_log_summary = hooks.qa_log_summary
    qa_log_run_end = hooks.qa_log_run_end

    @hookimpl
    def qa_describe(self) -> PluginInfo:
        return PluginInfo(kind="tracker", params=(Param("every", int, 1),), threaded=False)


def test_the_hub_names_each_tracker_prints_its_failure_once_and_stops_calling_it(tmp_path: Path) -> None:
    Recording.aborted = []
    manager = PluginManager()
    manager.load_builtins()
    assert manager.register(FailingPlugin(), "failing").error is None
    run = context(tmp_path, logger_params={"failing": {"every": 5}}, resumed_after_epoch=2)
    lines: list[str] = []
    hub = TrackerHub(manager, ["failing"], run, warn=lines.append)
    hub.run_start()
    hub.params({"model/lr": 0.1})
    hub.summary({"best/epoch": 2})  # resumed after epoch 2: the summaries so far belong there
    hub.metrics({"metrics/val/loss": 0.5}, step=3)
    hub.summary({"best/epoch": 3})
    hub.close("finished", {})
    session = run.stash["failing"]
    # its own name and typed options; the run it was handed is the shared one, named for it
    assert session.seen == [("params", "failing", {"every": 5}), ("summary", 2)]
    assert session.context.tracker == "failing" and run.tracker is None
    assert len(lines) == 1 and lines[0].startswith(
        "qa: tracker 'failing' failed in qa_log_metrics (logging epoch 3: ConnectionError: server <redacted> went away); switched off"
    )
    assert len(Recording.aborted) == 1


def test_run_dir_is_absolute_even_when_given_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert context(Path("runs/r1")).run_dir == tmp_path / "runs" / "r1"
