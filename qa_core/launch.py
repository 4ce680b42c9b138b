"""``qa run ... --nproc-per-node N``: re-run the same command as N ranks through torch's own
launcher (``python -m torch.distributed.run --standalone``), which the user could also type.

qa_core never imports torch: the launcher runs in a child interpreter. Its only addition to plain
torchrun is the last word when a rank fails: one line (which rank, its exit code) instead of
torchrun's traceback of the ChildFailedError; the failing rank's own error line comes first.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from typing import Any

from . import distributed
from .errors import ConfigError

#: Run in the child interpreter: torchrun, with a rank's failure said in one line.
LAUNCHER = """
import signal
import sys
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main
try:
    main(sys.argv[1:])
except ChildFailedError as exc:
    rank, failure = exc.get_first_failure()
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
    command = [sys.executable, "-c", LAUNCHER, "--standalone", f"--nproc-per-node={nproc}", "-m", "qa_core.cli", *without_nproc(argv)]
    # OMP_NUM_THREADS=1 is what torchrun sets when unset anyway; set here, its banner about it goes.
    env = {**os.environ}
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.call(command, env=env)


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
