"""The randomized interrupt test (issue 16): 50 SIGINTs and 20 kill -9s at random moments of real
`qa run` processes (startup, preparing a resume, training, inside and just after checkpoint writes,
the test split), each followed by `qa run --resume`. Every run must resume, and every run that reaches its
end must equal an uninterrupted one: metrics.jsonl, steps.jsonl, best, top-k and the test results.

Bounded: a tiny plugin (the numpy bow; its save hook is slow in odd epochs, widening the window
inside the write, and fast in even ones, where the renames and links follow at once),
360 training records, 5 epochs; about two minutes on two cores."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EPOCHS = 5
SIGINTS, KILLS = 50, 20


def _args(data: Path, runs: Path) -> list[str]:
    return ["run", "--plugin", "chaosbow", "--data", str(data), "--epochs", str(EPOCHS), "--runs-dir", str(runs),
            "--no-progress", "--seed", "7", "--top-k", "2", "--checkpoint-every", "3", "--log-every-n-steps", "5"]


def _outcome(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    files = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    import numpy as np

    with np.load(run_dir / "checkpoints" / "best.npz") as best:  # the weights, not the file (it embeds the run id)
        weights = [float(v) for v in np.concatenate([best["w"].ravel(), best["b"].ravel()])[:: 97]]
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    outcome = {
        "lines": lines,
        "steps": steps,
        "best": summary["best"],
        "top": summary["top_epochs"],
        "test": summary["test"],
        "status": summary["status"],
        "files": files,
        "best_weights": weights,
    }
    # file names carry the run id; two runs are equal when all else is
    return json.loads(json.dumps(outcome).replace(run_dir.name, "RUN"))


def _line_count(runs: Path) -> int:
    try:
        return sum(len(path.read_bytes().splitlines()) for path in runs.glob("*/metrics.jsonl"))
    except OSError:
        return 0


@pytest.mark.slow
def test_randomized_sigints_and_kill_9s_each_followed_by_resume(plugin_site, tiny_data, tmp_path):
    plugin_site.add("qa-chaosbow", "0.1", "chaos_bow", module="chaosbow")
    env = {**os.environ, **plugin_site.env, "PYTHONUNBUFFERED": "1", "QA_LOAD_PLUGINS": "chaosbow"}
    env.pop("QA_TRACEBACK", None)

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "qa_core.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    reference_runs = tmp_path / "reference"
    proc = start(*_args(tiny_data, reference_runs))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (reference_dir,) = [p for p in reference_runs.iterdir() if not p.name.startswith("_")]
    reference = _outcome(reference_dir)
    assert reference["status"] == "finished"

    rng = random.Random(16)
    signals = [signal.SIGINT] * SIGINTS + [signal.SIGKILL] * KILLS
    rng.shuffle(signals)
    runs = tmp_path / "runs"
    run_dir: Path | None = None
    sent = {signal.SIGINT: 0, signal.SIGKILL: 0}
    completed = 0
    log: list[str] = []

    def current() -> Path | None:
        found = [p for p in runs.iterdir() if not p.name.startswith("_")] if runs.is_dir() else []
        return found[0] if found else None

    def check_completed(directory: Path) -> None:
        nonlocal completed, run_dir
        assert _outcome(directory) == reference, "\n".join(log[-6:])
        completed += 1
        shutil.rmtree(directory)
        run_dir = None

    while signals:
        sig = signals[0]
        proc = start("run", "--resume", str(run_dir), "--no-progress") if run_dir else start(*_args(tiny_data, runs))
        # Half at a random moment; a quarter once a checkpoint write is under way (inside the slow
        # save, or just after it: the renames and the best/last links); a quarter just after a
        # metrics line appears (the checkpoint follows it at once).
        aim = rng.choice(["random", "random", "checkpoint", "line"])
        lines_before = _line_count(runs)
        deadline = time.monotonic() + (rng.uniform(0.05, 2.5) if aim == "random" else 10)
        while time.monotonic() < deadline and proc.poll() is None:
            if aim == "checkpoint" and list(runs.glob("*/checkpoints/.*.tmp*")):
                time.sleep(rng.uniform(0, 0.12))
                break
            if aim == "line" and _line_count(runs) > lines_before:
                time.sleep(rng.uniform(0, 0.01))
                break
            time.sleep(0.003)
        if proc.poll() is not None:  # it ended before the signal: a whole run, or a refusal
            out, err = proc.communicate()
            log.append(f"ended {proc.returncode}: {err.strip()[-300:]}")
            if proc.returncode == 0:
                check_completed(current())  # type: ignore[arg-type]
                continue
            assert proc.returncode == 2 and "no completed epoch was saved" in err, "\n".join(log[-6:])
            shutil.rmtree(current())  # type: ignore[arg-type]
            run_dir = None
            continue
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        log.append(f"{signal.Signals(sig).name} -> {proc.returncode}: {err.strip()[-300:]}")
        if proc.returncode == 2 and "no completed epoch was saved" in err:
            # The resume had refused (a kill landed between the epoch's metrics line and its
            # checkpoint) and was exiting as the signal came: as if it ended before it.
            shutil.rmtree(current())  # type: ignore[arg-type]
            run_dir = None
            continue
        signals.pop(0)
        sent[sig] += 1
        if sig == signal.SIGINT:
            # 130: stopped at a safe point; 0: it was finishing anyway. Outside qa's handler (the
            # interpreter starting up, or shutting down after the run) Python's own ends it: a
            # KeyboardInterrupt, or -2 during finalisation.
            assert proc.returncode in (0, 130, -signal.SIGINT) or "KeyboardInterrupt" in err, "\n".join(log[-6:])
            assert "Traceback" not in err or "KeyboardInterrupt" in err, "\n".join(log[-6:])
            assert "unexpected" not in err, "\n".join(log[-6:])
        run_dir = current()
        if run_dir is not None and (run_dir / "summary.json").is_file():
            if json.loads((run_dir / "summary.json").read_text()).get("status") == "finished":
                check_completed(run_dir)
        if run_dir is not None and not any(run_dir.glob("checkpoints/*.meta.json")) and not (run_dir / "metrics.jsonl").exists():
            shutil.rmtree(run_dir)  # stopped before its first epoch: nothing to resume, start again
            run_dir = None

    # the last run, to its end without signals
    if run_dir is not None:
        result = subprocess.run([sys.executable, "-m", "qa_core.cli", "run", "--resume", str(run_dir), "--no-progress"], env=env,
                                capture_output=True, text=True, timeout=120)
        if result.returncode == 2 and "no completed epoch was saved" in result.stderr:
            shutil.rmtree(run_dir)
        else:
            assert result.returncode == 0, result.stderr
            check_completed(run_dir)
    assert sent == {signal.SIGINT: SIGINTS, signal.SIGKILL: KILLS}
    assert completed >= 1
