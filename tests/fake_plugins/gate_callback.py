"""A callback plugin that holds a run at the end of epoch $GATE_EPOCH and every later one (that
epoch's metrics line and checkpoints written) until the file $GATE_DIR/open exists or the process
gets SIGINT/SIGTERM; while it holds, $GATE_DIR/waiting-<pid> says so.

A test then acts on runs in a state it knows (held at a given epoch) instead of racing their clock.
The signal still reaches the core's own handler, which sets the stop flag; the loop stops at its
next safe point, right after this hook, with the held epoch saved."""

import os
import signal
import time
from pathlib import Path

from qa_core import PluginInfo, hookimpl


@hookimpl
def qa_describe():
    return PluginInfo(kind="callback", description="holds a run at an epoch until a file opens the gate or a signal comes")


@hookimpl
def qa_epoch_end(run, epoch, logs):
    gate = Path(os.environ["GATE_DIR"])
    if epoch < int(os.environ.get("GATE_EPOCH", "1")) or (gate / "open").exists():
        return None
    signalled = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        signalled.append(signum)
        if callable(previous[signum]):
            previous[signum](signum, frame)  # the core's: it sets the flag the loop checks next

    for sig in previous:
        signal.signal(sig, handler)
    try:
        (gate / f"waiting-{os.getpid()}").write_text(str(epoch))
        while not signalled and not (gate / "open").exists():
            time.sleep(0.05)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return None
