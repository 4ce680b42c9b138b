"""The neptune tracker keeps the contract every tracker keeps (qa_core.testing).

Debug mode (in memory, nothing leaves the machine); its fake backend renumbers series points, so
the steps Neptune receives are checked on offline runs (test_offline_runs.py), not here. A resume
starts a new Neptune run (the client cannot continue an offline or debug run)."""

from __future__ import annotations

from qa_core.testing import TrackerPluginContract


class TestNeptuneContract(TrackerPluginContract):
    tracker = "neptune"
    options = {"mode": "debug"}
    failing_options = {"mode": "async", "project": "ws/proj"}  # async needs NEPTUNE_API_TOKEN
    continues_on_resume = False
