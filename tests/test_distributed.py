"""qa_core.distributed: the launcher's environment, each rank's shard of the epoch, and how the
ranks agree to stop on a signal."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from qa_core.distributed import SINGLE, Rank, agreed_stop, from_env, per_rank_batch, rank_scratch, shard, shard_sizes
from qa_core.errors import ConfigError
from qa_core.signals import Interrupt, StopFlag, deferred_signals


def test_rank_from_the_launchers_environment():
    assert from_env({}) == SINGLE and not SINGLE.distributed and SINGLE.is_main
    rank = from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1"})
    assert rank == Rank(1, 2, 1) and rank.distributed and not rank.is_main
    assert from_env({"RANK": "3", "WORLD_SIZE": "4"}).local_rank == 3  # one node: local = global


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RANK": "0"}, "WORLD_SIZE: not set, but RANK is"),
        ({"LOCAL_RANK": "0"}, "RANK and WORLD_SIZE: not set"),
        ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x': expected a non-negative integer"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2: must be below WORLD_SIZE=2"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE=0: expected a positive integer"),
        ({"RANK": "-1", "WORLD_SIZE": "2"}, "RANK='-1': expected a non-negative integer"),
    ],
)
def test_a_broken_launcher_environment_is_one_line(env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_env(env)


@pytest.mark.parametrize("n, batch, world", [(96, 32, 2), (100, 32, 2), (97, 32, 4), (130, 24, 3), (33, 32, 2)])
def test_ranks_together_see_each_global_batch_of_one_process(n, batch, world):
    permutation = np.random.default_rng(n).permutation(n)
    shards = [shard(permutation, batch, Rank(r, world)) for r in range(world)]
    per_rank = per_rank_batch(batch, Rank(0, world))
    single_batches = [permutation[i : i + batch] for i in range(0, n, batch)]
    for step, expected in enumerate(single_batches):
        start = step * per_rank
        together = np.concatenate([s[start : start + per_rank] if step < n // batch else s[start:] for s in shards])
        if step == n // batch and n % batch < world:
            assert together.size == 0  # a tail shorter than the world is left out, on every rank
            continue
        np.testing.assert_array_equal(together, expected)
    used = np.concatenate(shards)
    assert len(set(used.tolist())) == len(used)  # nothing repeated
    assert n - len(used) == (n % batch if n % batch < world else 0)
    for r in range(world):
        assert sum(shard_sizes(n, batch, Rank(r, world))) == len(shards[r])
    assert len({len(shard_sizes(n, batch, Rank(r, world))) for r in range(world)}) == 1  # equal step counts


def test_single_process_shard_is_the_permutation_and_batch_must_divide():
    permutation = np.arange(10)
    assert shard(permutation, 4, SINGLE) is not None and (shard(permutation, 4, SINGLE) == permutation).all()
    assert shard_sizes(10, 4, SINGLE) == [4, 4, 2]
    with pytest.raises(ConfigError, match="--batch-size 30: must be a multiple of the world size 4"):
        per_rank_batch(30, Rank(0, 4))


def test_a_rank_scratch_folder_sweeps_those_of_dead_ranks_only(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    dead = tmp_path / f"qa-rank1-pid{gone}-abc"
    (dead / "run").mkdir(parents=True)
    alive = tmp_path / f"qa-rank2-pid{os.getppid()}-def"  # a running process (this test's parent)
    alive.mkdir()
    other = tmp_path / "qa-rank1-unrelated"
    other.mkdir()
    mine = rank_scratch(Rank(1, 2))
    assert mine.parent == tmp_path and mine.name.startswith(f"qa-rank1-pid{os.getpid()}-") and mine.is_dir()
    assert not dead.exists() and alive.is_dir() and other.is_dir()


def _vote(own: list[int | None]) -> list[int | None]:
    """Every rank's :func:`agreed_stop` for the ranks' own signals ``own``: the sum over the ranks
    of each one's votes, as ``all_reduce`` gives it (two passes: collect the votes, then decide)."""
    votes: list[np.ndarray] = []
    for signum in own:
        agreed_stop(signum, lambda v: votes.append(v.copy()) or v)
    total = np.sum(votes, axis=0)
    return [agreed_stop(signum, lambda v: total) for signum in own]


def test_a_signal_to_any_rank_stops_every_rank_and_sigterm_outranks_sigint():
    assert _vote([None, None, None]) == [None, None, None]
    assert _vote([None, signal.SIGINT, None]) == [signal.SIGINT] * 3  # rank 1 alone got it
    assert _vote([signal.SIGINT, None, signal.SIGTERM]) == [signal.SIGTERM] * 3


def test_sigterm_after_the_first_signal_is_the_same_request_and_a_second_sigint_forces():
    """torchrun sends SIGTERM to the ranks still running when one has left: a rank already
    stopping for a Ctrl-C must not be forced out of its clean-up by it; a second Ctrl-C does."""
    flag = StopFlag()
    with deferred_signals(flag):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)  # handled at the next bytecode: nothing raised
        assert flag.signum == signal.SIGINT
        with pytest.raises(Interrupt) as forced:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
    assert forced.value.forced and forced.value.signum == signal.SIGINT
