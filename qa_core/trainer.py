"""The public entry of a training run: ``train(config, pm=None, resume=None) -> RunResult``.

A run is three phases, each in its own module and each readable top to bottom:

    run.prepare(config) -> Run    data, vocabulary, encoding, run directory, spec, trackers
                                  (a resume is only another way to prepare)
    loop.fit(run, model)          the epoch loop; epoch ends go to the observers (observers.py)
    finish.finish(run, model)     best reload, test, eval files, artifacts
    finish.close(run, status)     summary, trackers closed, lock released: always

This module keeps the names other code imports from it (benchmarks, plugins' tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import console
from .errors import QAError, RunInterrupted
from .finish import close, finish, interruption, peer_gone, rank_failure
from .inputs import Data, category_order, default_dataset, load_data, resolve_max_len, resolve_model_params  # noqa: F401
from .loop import BAR_REFRESH_SECONDS, check_probabilities, fit, train_one_epoch  # noqa: F401
from .plugins import PluginManager, load_plugins
from .resume import ResumePoint, config_from_run, read_resume_point  # noqa: F401
from .run import NothingToDo, Run, new_run_id, prepare, seed_everything, start_model  # noqa: F401
from .signals import Interrupt, StopFlag, await_signal, deferred_signals
from .types import RunContext


#: How long a rank whose collective lost its peer waits for its own signal before calling it a
#: failure: torchrun's SIGINT to each rank, or its SIGTERM after a rank died, comes within this.
PEER_SIGNAL_GRACE_SECONDS = 3.0


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    context: RunContext
    summary: dict[str, Any]


def train(config: Any, pm: PluginManager | None = None, resume: Path | None = None, allow_changed_data: bool = False) -> RunResult:
    """Run one training job end to end (or continue one: ``resume`` = its run directory).
    Raises QAError subclasses for the user's mistakes; RunInterrupted on SIGINT/SIGTERM."""
    flag = StopFlag()
    # Signals are deferred from the start: preparing a resume rewrites files too, and a signal
    # must never cut that in half. The flag is looked at from the first epoch on.
    with deferred_signals(flag):
        try:
            run = prepare(config, pm or load_plugins(), Path(resume) if resume is not None else None, allow_changed_data, flag)
        except NothingToDo as done:
            console.say(done.line)
            return RunResult(done.context.run_id, done.context.run_dir, done.context, done.summary)
        status, interrupted = "failed", None
        try:
            model = start_model(run)
            fit(run, model)
            if run.rank.is_main:  # rank 0 alone scores the test split and writes eval/
                finish(run, model)
            status = "finished"
        except (Interrupt, KeyboardInterrupt) as exc:
            status, interrupted = "interrupted", interruption(run, exc)
        except QAError as exc:
            if not run.rank.distributed or isinstance(exc, RunInterrupted):
                raise
            # A peer that left: for an interrupt (torchrun signals the ranks one after the other;
            # this one's signal may be on its way) or because torchrun stops the job (SIGTERM).
            if not peer_gone(exc) or await_signal(flag, PEER_SIGNAL_GRACE_SECONDS) is None:
                raise rank_failure(run, exc) from None
            status, interrupted = "interrupted", interruption(run, Interrupt(flag.signum))
        finally:
            close(run, status)
    if interrupted is not None:
        raise interrupted
    if run.scratch is not None:
        console.say(f"fast dev run passed: every hook ran; nothing kept ({run.scratch} deleted)")
    else:
        console.say(f"run directory: {run.run_dir}")
    return RunResult(run.identity.run_id, run.run_dir, run.context, run.summary)
