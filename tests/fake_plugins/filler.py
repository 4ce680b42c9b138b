"""A tracker that fills the disk the run directory is on once epoch $QA_TEST_FILL's line has been
written (the local tracker comes first), and frees it again in epoch $QA_TEST_FREE (0: never)."""

import os

from qa_core import PluginInfo, hookimpl

FILL, FREE = int(os.environ.get("QA_TEST_FILL", "0")), int(os.environ.get("QA_TEST_FREE", "0"))


@hookimpl
def qa_describe():
    return PluginInfo(kind="tracker", description="fills the disk", threaded=False)


@hookimpl
def qa_log_metrics(run, metrics, step):
    ballast = run.run_dir.parent / "ballast"
    if step == FILL:
        with open(ballast, "wb", buffering=0) as handle:
            chunk = 1 << 16
            while chunk:
                try:
                    handle.write(b"x" * chunk)
                except OSError:
                    chunk //= 2
    if step == FREE:
        ballast.unlink()
