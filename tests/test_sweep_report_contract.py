"""qa-core's own entry-point tracker, sweep-report, keeps the contract every tracker keeps (without
QA_SWEEP_REPORT_FD set it records nothing, so there is nothing to read back)."""

from qa_core.testing import TrackerPluginContract


class TestSweepReportContract(TrackerPluginContract):
    tracker = "sweep-report"
