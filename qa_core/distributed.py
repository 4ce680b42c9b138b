"""Data-parallel runs, framework-free: who am I (rank), how many are we (world size), which rows
of the epoch are mine.

A launcher (``torchrun``, ``python -m torch.distributed.run``, ``qa run --nproc-per-node N``)
starts one process per rank and tells each its place through the environment: ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT`` for the framework's own
rendezvous). The core reads them here and nothing else: the process group, DistributedDataParallel
and the collectives are the model plugin's business (its framework), so the core never imports one.

What the core does with it:

* every rank draws the *same* epoch permutation (same seed) and trains on its shard of it
  (:func:`shard`): global batch k of a single-process run with batch size B is split into
  ``world_size`` consecutive slices, one per rank, each ``B / world_size`` rows, so N ranks with
  batch B/N see exactly the rows one process with batch B sees, step for step;
* every rank evaluates and scores the whole validation split (the same numbers everywhere), so
  every rank takes the same checkpoint and early-stopping decisions without a message;
* only rank 0 (:attr:`Rank.is_main`) writes the run directory, checkpoints included, prints and
  calls trackers. A rank > 0 keeps the little bookkeeping a run needs (its config and metrics
  lines, no checkpoints) in a private temporary folder (:func:`rank_scratch`), deleted when it
  ends; one a killed rank could not delete is deleted by the next rank started on the machine;
* a stop asked for by a signal is agreed on (:func:`agreed_stop`): at every safe point each rank
  votes, so all ranks stop at the *same* point even when the signal reached them at different
  moments (or reached only one), and none leaves a collective its peers are still waiting in.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .errors import ConfigError

VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


SINGLE = Rank()


def from_env(environ: Mapping[str, str] | None = None) -> Rank:
    """The launcher's RANK / WORLD_SIZE / LOCAL_RANK; a single process when none is set."""
    env = os.environ if environ is None else environ
    present = [name for name in VARIABLES if env.get(name, "") != ""]
    if not present:
        return SINGLE
    if "RANK" not in present or "WORLD_SIZE" not in present:
        missing = " and ".join(name for name in ("RANK", "WORLD_SIZE") if name not in present)
        raise ConfigError(f"{missing}: not set, but {', '.join(present)} is; start ranks through torchrun (or qa run --nproc-per-node N)")
    values = {}
    for name in present:
        text = env[name]
        try:
            values[name] = int(text)
        except ValueError:
            raise ConfigError(f"{name}={text!r}: expected a non-negative integer") from None
        if values[name] < 0:
            raise ConfigError(f"{name}={text!r}: expected a non-negative integer")
    rank, world = values["RANK"], values["WORLD_SIZE"]
    if world < 1:
        raise ConfigError(f"WORLD_SIZE={world}: expected a positive integer")
    if rank >= world:
        raise ConfigError(f"RANK={rank}: must be below WORLD_SIZE={world}")
    return Rank(rank, world, values.get("LOCAL_RANK", rank))


def per_rank_batch(batch_size: int, rank: Rank) -> int:
    """The rows each rank trains on per step: ``--batch-size`` is the *global* batch."""
    if batch_size % rank.world_size:
        raise ConfigError(f"--batch-size {batch_size}: must be a multiple of the world size {rank.world_size} (each rank trains on batch_size / world_size rows per step)")
    return batch_size // rank.world_size


def shard(permutation: np.ndarray, batch_size: int, rank: Rank) -> np.ndarray:
    """This rank's rows of the epoch, in training order: of every global batch of ``batch_size``
    rows, the ``rank``-th of ``world_size`` equal slices. The last, shorter global batch is split
    as evenly as it goes (``np.array_split``: sizes differ by at most one); when it has fewer rows
    than there are ranks it is left out (at most world_size - 1 rows of the epoch, different ones
    each epoch), because every rank must take the same number of steps (each step's gradients are
    averaged across all ranks). Nothing is repeated. One vectorised gather, no loop per row."""
    permutation = np.asarray(permutation)
    if not rank.distributed:
        return permutation
    per_rank = per_rank_batch(batch_size, rank)
    full = len(permutation) // batch_size * batch_size
    body = permutation[:full].reshape(-1, rank.world_size, per_rank)[:, rank.rank, :].reshape(-1)
    rest = permutation[full:] if len(permutation) - full >= rank.world_size else permutation[:0]
    return np.concatenate([body, np.array_split(rest, rank.world_size)[rank.rank]])


def shard_sizes(n: int, batch_size: int, rank: Rank) -> list[int]:
    """Rows per step of this rank (for weighting losses and the progress bar)."""
    if not rank.distributed:
        return [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    per_rank = per_rank_batch(batch_size, rank)
    steps = [per_rank] * (n // batch_size)
    tail = n % batch_size
    if tail >= rank.world_size:
        steps.append(len(np.array_split(np.empty(tail), rank.world_size)[rank.rank]))
    return steps


#: The signals a rank stops for, the first winning when ranks got different ones (SIGTERM is a
#: scheduler's "going away", which outranks a Ctrl-C).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def agreed_stop(signum: int | None, all_reduce: Callable[[np.ndarray], np.ndarray]) -> int | None:
    """The signal to stop for, the same on every rank: ``signum`` is this rank's own (None: none
    came), ``all_reduce`` sums a vector over the ranks (the plugin's ``qa_all_reduce``).

    Why a vote: torchrun passes a Ctrl-C to the ranks one after the other, and a rank blocked in a
    long native call (a backward pass waiting on its peers' gradients) runs its handler late. A
    rank that stopped on its own flag would leave while a peer, one step further, waits in that
    step's collective for it; the peer then fails with a broken collective instead of stopping.
    Voting at each safe point makes a signal to any rank a stop for all, at the same step. Every
    rank must call this at the same safe points (the loop's are the same on every rank)."""
    votes = np.zeros(len(STOP_SIGNALS), dtype=np.float64)
    if signum is not None:  # a signal not listed votes as the strongest, so it is never lost
        votes[STOP_SIGNALS.index(signum) if signum in STOP_SIGNALS else 0] = 1.0
    totals = np.asarray(all_reduce(votes), dtype=np.float64)
    return next((int(sig) for sig, total in zip(STOP_SIGNALS, totals) if total > 0), None)


#: ``qa-rank<N>-pid<PID>-<random>``: a rank's scratch folder names the process that owns it.
_SCRATCH = re.compile(r"^qa-rank\d+-pid(\d+)-")


def rank_scratch(rank: Rank) -> Path:
    """A new private folder for a rank > 0's bookkeeping, in the temporary directory; the caller
    deletes it when the run ends. Folders of ranks whose process is gone (killed outright, so no
    clean-up ran) are deleted first, so nothing piles up."""
    tmp = Path(tempfile.gettempdir())
    for stale in tmp.glob("qa-rank*-pid*-*"):
        match = _SCRATCH.match(stale.name)
        if match and stale.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"qa-rank{rank.rank}-pid{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to judge
        return True
    return True
