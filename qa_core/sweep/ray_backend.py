"""The Ray backend: each trial a Ray Tune trial, on a Ray cluster or a local Ray instance.

A trial is the same `qa run` subprocess as on the local backend (trial.run_trial), started by a
Tune function trainable on whichever node Tune places it, so both backends give the same results.
Each trial asks Ray for ``threads`` CPUs, and Tune runs at most ``workers`` at once. The trial runs
with the ``sweep-report`` tracker, which writes each epoch's validation accuracy to a pipe; the
trainable reports it to Tune (``tune.report``), where ASHA may stop the trial at a rung. A stopped
trial's worker is torn down by Ray, which ends its subprocess; its run directory keeps every
finished epoch (resumable, though a rerun leaves ``stopped`` trials alone).

Shared storage: the sweep directory must be the same path on every node (NFS, a cluster file
system), since trials write their run directories there and the driver reads them back; the data
paths in the sweep file must be readable on every node too.

Ray is an optional extra (``pip install 'qa-core[ray]'``); it is imported only here.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from .manifest import Manifest, TrialRecord
from .spec import SweepSpec, Trial
from .trial import STOP_GRACE_SECONDS, find_run_dir, resumable, run_status, run_trial, usable_cpus

OUTCOME = "outcome.json"
PID_FILE = "trial.pid"


def _import_ray() -> Any:
    # Tune's console tables are noise here (the sweep prints its own), and so is its warning that
    # the TensorBoard logger is missing; its own logs stay under <sweep dir>/ray/.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    try:
        import ray
        from ray import tune  # noqa: F401 - Tune is part of the extra
    except ImportError:
        raise ConfigError("--backend ray: Ray is not installed here; pip install 'qa-core[ray]' (or 'ray[tune]')") from None
    return ray


def _die_with_parent() -> None:
    """In the trial's child: SIGTERM when the Ray worker that started it dies (ASHA, Ctrl-C), so
    the trial saves and exits instead of training on, orphaned."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: Ray's own clean-up of worker children still applies
        pass


def trainable(config: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    """Tune function trainable: run one trial, forwarding its per-epoch metrics to Tune."""
    from ray import tune

    job = jobs[config["trial"]]
    trial_dir = Path(job["trial_dir"])
    read_end, write_end = os.pipe()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            result = run_trial(
                trial_dir, job["values"], job["threads"], job["header"], threading.Event(),
                extra_args=("--logger", "sweep-report"), extra_env={"QA_SWEEP_REPORT_FD": str(write_end)},
                pass_fds=(write_end,), preexec=_die_with_parent, on_start=lambda proc: _write_pid(trial_dir, proc.pid),
            )  # fmt: skip
            outcome.update(status=result.status, reason=result.reason, run_dir=str(result.run_dir) if result.run_dir else None, seconds=result.seconds)
        finally:
            os.close(write_end)  # the child has its own copy; EOF once both are closed

    # A daemon: when ASHA stops the trial, Ray ends this worker without waiting for the thread.
    runner = threading.Thread(target=run, name=f"qa-trial-{config['trial']}", daemon=True)
    runner.start()
    latest = _Latest()
    threading.Thread(target=latest.drain, args=(read_end,), name="qa-trial-reports", daemon=True).start()
    while (result := latest.next()) is not None:
        tune.report(result)
    runner.join()
    (trial_dir / OUTCOME).write_text(json.dumps(outcome), encoding="utf-8")


class _Latest:
    """The trial's epoch reports, drained from the pipe as they come (so a trial never waits on
    Tune), handed to ``tune.report`` newest first: when epochs are faster than Tune takes results,
    the ones in between are skipped (ASHA records a rung at the first result at or past it)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.value: dict[str, Any] | None = None
        self.ended = False

    def drain(self, fd: int) -> None:
        with os.fdopen(fd, "r", encoding="utf-8") as lines:
            for line in lines:
                with self.cond:
                    self.value = json.loads(line)
                    self.cond.notify()
        with self.cond:
            self.ended = True
            self.cond.notify()

    def next(self) -> dict[str, Any] | None:
        with self.cond:
            self.cond.wait_for(lambda: self.value is not None or self.ended)
            value, self.value = self.value, None
            return value


def _write_pid(trial_dir: Path, pid: int) -> None:
    (trial_dir / PID_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": pid}), encoding="utf-8")


def stop_trials(trial_dirs: list[Path], grace: float = STOP_GRACE_SECONDS) -> None:
    """Ctrl-C: one SIGINT to every trial process still running on this machine, then wait for
    them to save and exit, before Ray tears their workers down (which would kill them outright).
    Trials on other nodes get SIGTERM from the parent-death signal when their worker goes."""
    pids = []
    for trial_dir in trial_dirs:
        try:
            owner = json.loads((trial_dir / PID_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if owner.get("host") == socket.gethostname() and _alive(owner["pid"]):
            os.kill(owner["pid"], signal.SIGINT)
            pids.append(owner["pid"])
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def start_local_ray(ray: Any, num_cpus: int | None = None) -> None:
    """A private Ray instance on this machine, on the loopback interface. Its raylet leaves a
    worker's child processes alone when the worker exits (Ray kills them outright by default):
    a trial gets SIGTERM through its parent-death signal instead, and saves before it exits."""
    os.environ["RAY_kill_child_processes_on_worker_exit"] = "0"
    ray.init(num_cpus=num_cpus or usable_cpus(), _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False, configure_logging=False)


def run_ray(spec: SweepSpec, manifest: Manifest, todo: list[tuple[TrialRecord, Trial]], workers: int, threads: int, address: str | None, say: Callable[[str], None]) -> bool:
    ray = _import_ray()
    from ray import tune

    started_here = not ray.is_initialized()
    if started_here and address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    elif started_here:
        start_local_ray(ray)
    jobs = {}
    for record, trial in todo:
        trial_dir = manifest.trial_dir(record)
        (trial_dir / OUTCOME).unlink(missing_ok=True)
        (trial_dir / PID_FILE).unlink(missing_ok=True)
        jobs[record.id] = {"trial_dir": str(trial_dir.resolve()), "values": trial.values, "threads": threads, "header": f"sweep {manifest.name}, trial {record.id}"}
        record.status, record.attempts = "running", record.attempts + 1
    manifest.save()
    scheduler = None
    if spec.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        max_t = max(int(t.values.get("epochs", 5)) for _, t in todo) if todo else 1
        # stop_last_trials=False: a trial that reaches the last epoch ends by itself (test scored).
        scheduler = ASHAScheduler(time_attr="epoch", max_t=max_t, grace_period=spec.grace_period, reduction_factor=spec.reduction_factor, stop_last_trials=False)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, jobs=jobs), {"cpu": threads}),
        param_space={"trial": tune.grid_search([record.id for record, _ in todo])},
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", scheduler=scheduler, max_concurrent_trials=workers),
        run_config=tune.RunConfig(storage_path=str((manifest.directory / "ray").resolve()), name="tune", verbose=0),
    )
    interrupted = False
    trial_dirs = [manifest.trial_dir(record) for record, _ in todo]

    def on_signal(signum: int, frame: Any) -> None:
        # Before Tune unwinds (its clean-up kills the workers, and with them the trials, outright):
        # every trial saves its last finished epoch and exits 130 first.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_trials(trial_dirs)
        raise KeyboardInterrupt

    previous_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C reaches us, not Tune's handler
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if todo:
            tuner.fit()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if previous_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        if started_here:
            ray.shutdown()
    for record, _ in todo:
        _settle(manifest, record, interrupted, spec.scheduler == "asha")
        say(_line(record))
    manifest.save()
    return not interrupted


def _settle(manifest: Manifest, record: TrialRecord, interrupted: bool, asha: bool) -> None:
    """A trial's status from what it left: its outcome.json (the trainable finished), else its
    run directory (the worker was torn down: by ASHA, or by Ctrl-C)."""
    trial_dir = manifest.trial_dir(record)
    run_dir = find_run_dir(trial_dir)
    record.run_dir = str(run_dir) if run_dir else record.run_dir
    path = trial_dir / OUTCOME
    if path.is_file():
        outcome = json.loads(path.read_text(encoding="utf-8"))
        record.status, record.reason = outcome["status"], outcome["reason"]
        record.seconds = round((record.seconds or 0.0) + (outcome.get("seconds") or 0.0), 3)
        return
    if run_dir is not None and run_status(run_dir) == "finished":
        record.status, record.reason = "finished", None
    elif interrupted and run_dir is None and not (trial_dir / PID_FILE).is_file():
        record.status, record.reason = "pending", None  # never started
    elif interrupted:
        record.status = "interrupted"
        record.reason = None if run_dir and resumable(run_dir) else "no epoch had finished"
    elif asha and run_dir is not None and _closed(run_dir) and (last := _last_epoch(run_dir)):
        record.status = "stopped"
        record.reason = f"ASHA stopped it after epoch {last['epoch']} (val accuracy {last.get('metrics/val/accuracy', float('nan')):.4f}); test split not scored"
    else:
        record.status, record.reason = "failed", "the Ray worker running it died (see its log.txt and the Ray logs)"


def _closed(run_dir: Path) -> bool:
    """Wait (bounded) for a stopped trial's run to close itself: the SIGTERM is honoured at the
    loop's next safe point, which may come after one more epoch, and the reason must name the
    epoch actually on disk. True either way: a run that never closes is reported as it stands."""
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while run_status(run_dir) == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def _last_epoch(run_dir: Path) -> dict[str, Any] | None:
    lines = []
    try:
        for text in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:  # a line cut short when the worker was torn down
                pass
    except OSError:
        return None
    return lines[-1] if lines else None


def _line(record: TrialRecord) -> str:
    from .local import progress_line

    return progress_line(record)
