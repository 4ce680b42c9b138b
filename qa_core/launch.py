"""``qa run ... --nproc-per-node N``: re-run the same command as N ranks through torch's own
launcher (``python -m torch.distributed.run --standalone``), which the user could also type.

qa_core never imports torch: the launcher runs in a child interpreter. Its only addition to plain
torchrun is the last word when a rank fails: one line (which rank, its exit code) instead of
torchrun's traceback of the ChildFailedError; the failing rank's own error line comes first.

Signals: torchrun runs in a session of its own, and every SIGINT/SIGTERM this process gets is
passed on to it once (torchrun passes it on to each rank, which saves at its next safe point). A
terminal's Ctrl-C reaches only this process that way: were torchrun in the terminal's process
group, every rank would get the signal twice (the terminal's and torchrun's), and a second signal
forces a rank out without waiting for its safe point. The ranks vote at every safe point
(``distributed.agreed_stop``), so they stop at the same one however late each runs its handler;
a signal that reaches one rank only (a ``kill -INT`` of its process) stops them all as well. The
first rank out then exits with the interrupt's code (130 or 143) and torchrun, taking that for a
failure, sends the others SIGTERM as they leave: the job ends with that code and no error line.
Should this process be killed outright, torchrun gets SIGTERM (Linux' parent-death signal) and
stops the ranks the same way, instead of training on, orphaned.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any

from . import distributed
from .errors import ConfigError

#: Run in the child interpreter: torchrun, with a rank's failure said in one line.
LAUNCHER = """
import logging
import re
import signal
import sys
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main
# torchrun logs a rank that exits with an interrupt's code (130, 143) as "failed": it was not.
interrupted = re.compile(r"failed \\(exitcode: (130|143)\\)")
logging.getLogger("torch.distributed.elastic.multiprocessing.api").addFilter(lambda record: not interrupted.match(record.getMessage()))
try:
    main(sys.argv[1:])
except SignalException as exc:  # Ctrl-C / SIGTERM: torchrun passed it on; the ranks said what is saved
    sys.exit(128 + int(exc.sigval))
except ChildFailedError as exc:
    rank, failure = exc.get_first_failure()
    if failure.exitcode in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        # A signal that reached a rank, not torchrun: the ranks agreed to stop and said so; what
        # torchrun's SIGTERM did to the others as they were leaving is no failure either.
        sys.exit(failure.exitcode)
    code = failure.exitcode if isinstance(failure.exitcode, int) and failure.exitcode > 0 else 1
    how = f"was killed by {signal.Signals(-failure.exitcode).name}" if failure.exitcode < 0 else f"stopped with exit code {failure.exitcode}"
    print(f"error: rank {rank} {how}; torchrun stopped the other ranks "
          "(a run that finished an epoch continues with: qa run --resume RUN_DIR --nproc-per-node N)", file=sys.stderr)
    sys.exit(code)
except KeyboardInterrupt:
    sys.exit(130)
except Exception as exc:  # a rendezvous that failed, a bad torchrun option: one line too
    print(f"error: torch.distributed.run: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(1)
"""


def launch_ranks(config: Any, nproc: int, argv: list[str]) -> int:
    """Check what can be checked here, then start the ranks; returns the job's exit code."""
    from .plugins import load_plugins

    if nproc < 1:
        raise ConfigError(f"--nproc-per-node {nproc}: expected a positive integer")
    if distributed.from_env().distributed:
        raise ConfigError("--nproc-per-node: already running under a launcher (RANK/WORLD_SIZE are set); drop the option")
    plugin = load_plugins().model(config.plugin)
    if not plugin.info.distributed:
        raise ConfigError(f"--nproc-per-node: plugin '{plugin.name}' does not support data-parallel training (the transformer plugin does)")
    if importlib.util.find_spec("torch") is None:
        raise ConfigError("--nproc-per-node: needs PyTorch (pip install torch), whose torch.distributed.run starts the ranks")
    distributed.per_rank_batch(config.batch_size, distributed.Rank(0, nproc))
    # OMP_NUM_THREADS=1 is what torchrun sets when unset anyway; set here, its banner about it goes.
    env = {**os.environ}
    env.setdefault("OMP_NUM_THREADS", "1")
    # torchrun's log folder (empty unless ranks redirect their output, which these do not) is a
    # new temporary one per launch that torchrun never deletes; this one goes with the job.
    with tempfile.TemporaryDirectory(prefix="qa-torchrun-") as logs:
        command = [sys.executable, "-c", LAUNCHER, "--standalone", f"--nproc-per-node={nproc}", f"--log-dir={logs}",
                   "-m", "qa_core.cli", *without_nproc(argv)]
        return run_forwarding_signals(command, env)


def run_forwarding_signals(command: list[str], env: dict[str, str]) -> int:
    """``command`` in its own session, this process' SIGINT/SIGTERM passed on; its exit code."""
    process = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_die_with_parent)

    def forward(signum: int, frame: Any) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return process.wait()  # PEP 475: a forwarded signal does not cut the wait short
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _die_with_parent() -> None:
    """In torchrun's process: SIGTERM when the launcher dies (PR_SET_PDEATHSIG; Linux only)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:  # elsewhere: a launcher killed outright leaves torchrun to the user
        pass


def without_nproc(argv: list[str]) -> list[str]:
    """The command line minus ``--nproc-per-node N`` / ``--nproc-per-node=N`` (the ranks must not relaunch)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc-per-node":
            skip = True
        elif not arg.startswith("--nproc-per-node="):
            kept.append(arg)
    return kept
