"""Phase three of a run: ``finish(run, model)`` and ``close(run, status)``.

    reload the best checkpoint from disk -> score the test split -> eval/ files -> test values
    and artifacts to the trackers -> the results block          (finish: a run that trained)
    summary (status, epochs run, why it stopped) -> trackers closed -> lock released  (close: always)
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Any

from . import console, metrics
from .checkpoints import committed_units, meta_path, read_meta
from .errors import QAError, RunInterrupted
from .evaluation import write_eval
from .run import discard_scratch

if TYPE_CHECKING:
    from .run import Run


def finish(run: "Run", model: Any) -> None:
    """Score the best model, reloaded from disk exactly as a user would, on the test split."""
    run.stop_flag.check()
    policy, plugin, config = run.policy, run.model_plugin, run.config
    test_model, tested = model, f"epoch {run.epochs_run} (in memory)"
    if policy.best and policy.best_path.is_file():
        test_model = plugin.load(policy.best_path, run.spec, read_meta(policy.best_path, policy.suffix))
        tested = f"best epoch {policy.best.epoch} ({policy.best_path.name})"
    test = run.encoded["test"]
    probs = plugin.predict(test_model, test, config.batch_size)
    report = metrics.compute_for_split(test, probs, config.threshold)
    eval_files = write_eval(run.run_dir / "eval", report, run.splits["test"], probs, plots=not config.fast_dev_run, lost=run.lost)
    test_values = metrics.metric_names(report, "test")
    run.hub.summary(test_values)
    if policy.best and policy.best_path.is_file():
        run.hub.artifact(policy.best_path, "model/best")
        run.hub.artifact(meta_path(policy.best_path, policy.suffix), "model/best.meta")
    run.hub.artifact(run.vocab_path, "model/vocab")
    for path in eval_files:
        run.hub.artifact(path, f"eval/{path.name}")
    console.say(console.THIN_RULE)
    console.say(f"test split scored with the {tested}")
    console.say(console.results_block(report))
    run.summary.update(
        {
            "epochs_run": run.epochs_run,
            "best": policy.best.to_json() if policy.best else None,
            "top_epochs": [e.to_json() for e in policy.top],
            "monitor": {"name": run.monitor.name, "mode": run.monitor.mode},
            "test": {"accuracy": report.accuracy, "loss": report.loss, "count": report.overall.count, "scored_with": tested},
            "test_metrics": test_values,
        }
    )


def close(run: "Run", status: str) -> None:
    """Whatever happened: the summary, the trackers closed, the lock released."""
    run.summary["status"] = status
    run.summary["epochs_run"] = run.epochs_run
    if run.stopped is not None:
        run.summary["stopped"] = run.stopped
    run.summary["seconds"] = round(time.monotonic() - run.started, 3)
    if run.policy.fallback is not None:
        run.lost["checkpoints"] = f"could not all be written to the run directory; see {run.policy.fallback} (fallback)"
    if run.lost:
        run.summary["lost"] = run.lost
    try:
        run.hub.close(status, run.summary)
    finally:
        if run.lock is not None:
            run.lock.release()
        discard_scratch(run)


def interruption(run: "Run", exc: BaseException) -> RunInterrupted:
    """The message names what is on disk, not the loop counter: the newest consistent unit."""
    signum = getattr(exc, "signum", signal.SIGINT)
    where = f"during epoch {run.in_epoch}" if run.in_epoch is not None else f"after epoch {run.epochs_run}"
    if not run.rank.is_main:  # rank 0 says it for the job (the ranks stopped together): no line here
        return RunInterrupted("", int(signum))
    return RunInterrupted(f"interrupted ({signal.Signals(signum).name}) {where}; {_saved(run)}", int(signum))


def _saved(run: "Run") -> str:
    units = committed_units(run.policy.directory, run.policy.suffix)
    if units and run.scratch is None:
        ranks = f" --nproc-per-node {run.rank.world_size}" if run.rank.distributed else ""
        return f"epoch {units[0][0]} is saved. Resume with: qa run --resume {run.run_dir}{ranks}"
    return "no epoch had finished, nothing to resume"


#: What a framework's collective says when another rank's process is gone (gloo, nccl).
_PEER_GONE = ("closed by peer", "remote worker", "NCCL communicator was aborted", "Connection reset by peer")


def peer_gone(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed because another rank's process is gone."""
    return any(s in str(exc) for s in _PEER_GONE)


def rank_failure(run: "Run", exc: QAError) -> QAError:
    """A data-parallel rank's error in one line: which rank, why (a broken collective means
    another rank stopped), and on rank 0 what is saved and how to resume."""
    why = "another rank stopped (the collective lost its peer)" if peer_gone(exc) else str(exc)
    where = f" in epoch {run.in_epoch}" if run.in_epoch is not None else ""
    saved = f"; {_saved(run)}" if run.rank.is_main else ""
    error = QAError(f"rank {run.rank.rank}{where}: {why}{saved}")
    error.exit_code = exc.exit_code
    return error
