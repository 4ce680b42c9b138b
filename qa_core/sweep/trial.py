"""One trial: an ordinary `qa run` in a subprocess of its own, and what it left on disk.

Why a subprocess and not an in-process call: a trial that crashes (a segfault in a framework, an
out-of-memory kill) takes only itself down; thread settings (OMP_NUM_THREADS, TF's pools) must be
in the environment before torch or TensorFlow is imported, which is once per process; each trial
gets the CLI's own signal handling, so one SIGINT makes it save, mark itself interrupted and exit
130, resumable; and a trial is exactly what a user gets from ``qa run --config trials/<id>/run.toml``.
The price is one interpreter start per trial (about a second), small next to any training run.

Both backends (local pool, Ray) run trials through :func:`run_trial`, so they give the same results.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..fsutil import atomic_write

#: Child processes get this long to save and exit after SIGINT before they are killed.
STOP_GRACE_SECONDS = 60.0
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


@dataclass
class Outcome:
    status: str  # finished | failed | interrupted
    reason: str | None
    run_dir: Path | None
    seconds: float
    returncode: int


def usable_cpus() -> int:
    """Cores this process may use: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, count)


def threads_per_trial(workers: int, cpus: int | None = None) -> int:
    """The rule: every trial gets floor(cores / workers) threads, at least one, so N concurrent
    trials never ask for more threads than there are cores."""
    return max(1, (cpus or usable_cpus()) // max(1, workers))


def thread_env(threads: int) -> dict[str, str]:
    """Intra-op threads for OpenMP/MKL/OpenBLAS (numpy, torch) and TensorFlow; TF's inter-op pool
    gets one thread, since a second pool of its own would multiply the count again."""
    env = {name: str(threads) for name in THREAD_VARIABLES}
    env["TF_NUM_INTEROP_THREADS"] = "1"
    return env


# -------------------------------------------------------------------------------------------------
# the trial's files
# -------------------------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def write_run_toml(path: Path, values: Mapping[str, Any], header: str) -> None:
    """A run.toml ``qa run --config`` reads back to the same options."""
    lines = [f"# {header}"]
    tables: list[str] = []
    for key, value in values.items():
        if value is None:
            continue
        if key == "params":
            tables += ["", "[params]", *(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())]
        elif key == "logger_params":
            for tracker, options in value.items():
                tables += ["", f"[logger_params.{json.dumps(tracker)}]", *(f"{json.dumps(k)} = {toml_value(v)}" for k, v in options.items())]
        else:
            lines.append(f"{key} = {toml_value(value)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, "\n".join(lines + tables) + "\n")


def find_run_dir(trial_dir: Path) -> Path | None:
    """The trial's run directory: the newest folder in the trial directory with a config.json."""
    runs = [p for p in trial_dir.iterdir() if p.is_dir() and (p / "config.json").is_file()] if trial_dir.is_dir() else []
    return max(runs, key=lambda p: p.name) if runs else None


def run_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "summary.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError):
        return None


def resumable(run_dir: Path) -> bool:
    """A finished epoch is on disk: checkpoints/last.<suffix> and its meta file."""
    checkpoints = run_dir / "checkpoints"
    return checkpoints.is_dir() and (checkpoints / "last.meta.json").is_file() and any(p.name.startswith("last.") and not p.name.endswith(".meta.json") for p in checkpoints.iterdir())


def prepare(trial_dir: Path, values: Mapping[str, Any], header: str) -> list[str] | None:
    """The `qa run` arguments for this trial's next attempt, or None when it already finished:
    resume a run with a finished epoch, else start afresh (a run that never finished an epoch is
    moved to _abandoned/, kept, never deleted)."""
    run_toml = trial_dir / "run.toml"
    write_run_toml(run_toml, {**values, "runs_dir": str(trial_dir.resolve())}, header)
    run_dir = find_run_dir(trial_dir)
    if run_dir is not None:
        if run_status(run_dir) == "finished":
            return None
        if resumable(run_dir):
            return ["run", "--resume", str(run_dir), "--no-progress"]
        (trial_dir / "_abandoned").mkdir(exist_ok=True)
        shutil.move(str(run_dir), str(trial_dir / "_abandoned" / run_dir.name))
    return ["run", "--config", str(run_toml), "--no-progress"]


def failure_reason(log: Path, returncode: int) -> str:
    """The trial's own one-line error (the CLI prints ``error: ...``), else its last line."""
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1][len("error:"):].strip()
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}" + (f": {lines[-1]}" if lines else "")


# -------------------------------------------------------------------------------------------------
# running it
# -------------------------------------------------------------------------------------------------


def run_trial(
    trial_dir: Path,
    values: Mapping[str, Any],
    threads: int,
    header: str,
    stop: threading.Event,
    extra_args: tuple[str, ...] = (),
    extra_env: Mapping[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
    preexec: Callable[[], None] | None = None,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> Outcome:
    """Run (or resume, or skip) one trial to its end, or until ``stop`` is set: then the trial
    gets one SIGINT, saves and exits resumable (killed after STOP_GRACE_SECONDS)."""
    started = time.monotonic()
    args = prepare(trial_dir, values, header)
    if args is None:
        return Outcome("finished", None, find_run_dir(trial_dir), 0.0, 0)
    if args[1] == "--config":
        args += list(extra_args)
    env = {**os.environ, **thread_env(threads), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    env.pop("QA_TRACEBACK", None)
    log = trial_dir / "log.txt"
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"--- qa {' '.join(args)} ({threads} thread(s)) at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        out.flush()
        # Its own session: a terminal's Ctrl-C reaches the sweep only, which then sends each
        # trial exactly one SIGINT (two would interrupt the trial's own clean-up).
        proc = subprocess.Popen([sys.executable, "-m", "qa_core.cli", *args], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, pass_fds=pass_fds, preexec_fn=lambda: _child_setup(preexec))
    if on_start is not None:
        on_start(proc)
    returncode = _wait(proc, stop)
    run_dir = find_run_dir(trial_dir)
    seconds = time.monotonic() - started
    if returncode == 0 and run_dir is not None and run_status(run_dir) == "finished":
        return Outcome("finished", None, run_dir, seconds, 0)
    if returncode in (130, 143) or (stop.is_set() and returncode != 0):
        return Outcome("interrupted", None if run_dir and resumable(run_dir) else "no epoch had finished", run_dir, seconds, returncode)
    return Outcome("failed", failure_reason(log, returncode), run_dir, seconds, returncode)


def _child_setup(extra: Callable[[], None] | None) -> None:
    """In the child, before exec: no blocked signals. A signal mask survives fork and exec, and a
    worker thread of a host process (Ray's) may block SIGINT, which would leave the trial deaf to
    the one SIGINT that asks it to save and stop."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    if extra is not None:
        extra()


def _wait(proc: subprocess.Popen, stop: threading.Event) -> int:
    while True:
        try:
            return proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            if stop.is_set():
                break
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
