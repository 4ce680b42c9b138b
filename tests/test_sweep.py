"""`qa sweep` on the local backend: real `qa run` subprocesses of the bow plugin on tiny data."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa_core.config import load_toml
from qa_core.errors import ConfigError
from qa_core.sweep.spec import load_sweep
from qa_core.sweep.trial import thread_env, threads_per_trial, write_run_toml

QA = [sys.executable, "-m", "qa_core.cli"]
#: Epochs of each trial in the interrupted sweep (held at epoch 3 until the Ctrl-C).
EPOCHS = 5


def sweep_file(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def grid(tmp_path: Path, data: Path, epochs: int = 2, lrs: str = "[0.01, 0.1]", seeds: str = "[0, 1]", base: str = "") -> Path:
    return sweep_file(
        tmp_path,
        f"""
        [sweep]
        name = "grid"
        dir = "{tmp_path / 'sweeps'}"
        [base]
        data_dir = "{data}"
        epochs = {epochs}
        {base}
        [axes]
        plugin = ["bow"]
        "params.lr" = {lrs}
        seed = {seeds}
        """.replace("\n        ", "\n"),
    )


def manifest(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "sweeps" / "grid" / "sweep.json").read_text())


# -------------------------------------------------------------------------------------------------
# the sweep file
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, where",
    [
        ("[sweep]\nmethod = 'bayes'\n[base]\nplugin='bow'", "sweep.method: expected grid or random"),
        ("[sweep]\nmethod = 'random'\n[base]\nplugin='bow'", "sweep.samples: random sampling needs samples"),
        ("[sweep]\nworkerz = 2\n[base]\nplugin='bow'", "sweep.workerz: unknown key"),
        ("[bases]\nplugin='bow'", "bases: unknown section"),
        ("[base]\nplugin='bow'\nepoch = 3", "base.epoch: unknown run option"),
        ("[base]\nplugin='bow'\nruns_dir = 'x'", "base.runs_dir: not a sweep option"),
        ("[base]\nplugin='bow'\n[axes]\nepochs = [2, 0]", "axes.epochs: expected a positive integer, got 0"),
        ("[base]\nplugin='bow'\nepochs = -1", "base.epochs: expected a positive integer, got -1"),
        ("[base]\nplugin='bow'\n[axes]\nseed = 3", "axes.seed: expected a non-empty list of values, got 3"),
        ("[base]\nplugin='bow'\n[axes]\n'params.lr' = []", "axes.params.lr: expected a non-empty list"),
        ("[base]\nplugin='bow'\n[axes]\n'params.lr' = {loguniform = [0.1, 0.01]}", 'axes.params.lr: a distribution needs method = "random"'),
        ("[sweep]\nmethod='random'\nsamples=2\n[base]\nplugin='bow'\n[axes]\n'params.lr' = {loguniform = [0, 1]}", "axes.params.lr.loguniform: bounds must be positive"),
        ("[sweep]\nmethod='random'\nsamples=2\n[base]\nplugin='bow'\n[axes]\n'params.lr' = {normal = [0, 1]}", "axes.params.lr: expected one of uniform, loguniform, randint"),
        ("[base]\nplugin='bow'\n[axes]\nlearning_rate = [1]", "axes.learning_rate: unknown run option"),
        ("[base]\nplugin='bow'\n[axes]\nbatch-size = [16, 'x']", "axes.batch_size: expected a positive integer, got 'x'"),
        ("[base\nplugin='bow'", "sweep: invalid TOML"),
        ("[base]\nplugin='bow'\n[axes]\ndata = ['/no/such/dir']", "axes.data_dir: /no/such/dir: no such file or directory"),
    ],
)
def test_bad_sweep_files_name_file_and_key(tmp_path, text, where):
    path = sweep_file(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert where in message, message
    assert "\n" not in message


def test_bad_sweep_file_is_one_line_exit_2_and_writes_nothing(tmp_path, qa):
    path = sweep_file(tmp_path, f"[sweep]\ndir = '{tmp_path / 'out'}'\n[base]\nplugin = 'bow'\n[axes]\nplugin = ['bow', 'nosuch']\n")
    result = qa("sweep", str(path))
    assert result.code == 2
    assert result.err.startswith(f"error: {path}: axes.plugin: unknown model plugin 'nosuch' (installed: ") and result.err.count("\n") == 1
    assert "Traceback" not in result.err
    assert not (tmp_path / "out").exists()


def test_grid_and_random_expansion(tmp_path):
    spec = load_sweep(sweep_file(tmp_path, "[base]\nplugin='bow'\n[axes]\nepochs=[1,2]\n'params.lr'=[0.1,0.2,0.3]\nseed=[0,1]\n"))
    trials = spec.trials()
    assert len(trials) == 12 and len({t.key for t in trials}) == 12
    assert len({t.group_key for t in trials}) == 6  # seeds are replicates within a group
    assert trials[0].values == {"plugin": "bow", "epochs": 1, "params": {"lr": 0.1}, "seed": 0}

    text = "[sweep]\nmethod='random'\nsamples=5\nseed=7\n[base]\nplugin='bow'\n[axes]\n'params.lr'={loguniform=[1e-4,1e-1]}\n'params.l2'={uniform=[0.0,0.5]}\nepochs={randint=[1,3]}\nseed=[0,1,2]\n"
    first = load_sweep(sweep_file(tmp_path, text)).trials()
    again = load_sweep(sweep_file(tmp_path, text, "again.toml")).trials()
    assert [t.options for t in first] == [t.options for t in again]  # a rerun draws the same trials
    assert len(first) == 15 and len({t.group_key for t in first}) == 5
    for trial in first:
        assert 1e-4 <= trial.values["params"]["lr"] <= 1e-1 and 0.0 <= trial.values["params"]["l2"] <= 0.5
        assert trial.values["epochs"] in (1, 2, 3)
    other = load_sweep(sweep_file(tmp_path, text.replace("seed=7", "seed=8"), "other.toml")).trials()
    assert [t.options for t in other] != [t.options for t in first]


def test_run_toml_reads_back_as_the_same_options(tmp_path):
    values = {
        "plugin": "bow",
        "data_dir": str(tmp_path / 'dir "quoted" \\ and ünïcode'),
        "epochs": 3,
        "lr": 1e-05,
        "threshold": 0.5,
        "tags": ["a", "b c"],
        "params": {"binary": False, "l2": 0.0001},
        "logger_params": {"mlflow": {"experiment": "x y"}},
    }
    write_run_toml(tmp_path / "run.toml", values, "header")
    assert load_toml(tmp_path / "run.toml") == values


def test_thread_rule():
    assert threads_per_trial(2, cpus=2) == 1
    assert threads_per_trial(3, cpus=8) == 2
    assert threads_per_trial(4, cpus=2) == 1  # never zero
    assert threads_per_trial(1, cpus=16) == 16
    env = thread_env(3)
    assert env["OMP_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "3" and env["TF_NUM_INTEROP_THREADS"] == "1"


# -------------------------------------------------------------------------------------------------
# running sweeps
# -------------------------------------------------------------------------------------------------


def test_grid_sweep_runs_every_trial_then_a_rerun_skips_them(tmp_path, qa, tiny_data):
    path = grid(tmp_path, tiny_data)
    result = qa("sweep", str(path), "--workers", "2")
    assert result.code == 0, result.err + result.out
    assert "4 to run" in result.out and "2 worker(s) x" in result.out
    data = manifest(tmp_path)
    assert [t["status"] for t in data["trials"]] == ["finished"] * 4
    assert [t["id"] for t in data["trials"]] == ["t000", "t001", "t002", "t003"]
    assert [t["group"] for t in data["trials"]] == ["g000", "g000", "g001", "g001"]
    for trial in data["trials"]:
        run_dir = Path(trial["run_dir"])
        config = json.loads((run_dir / "config.json").read_text())
        assert config["seed"] == trial["options"]["seed"] and config["params"]["lr"] == trial["options"]["params.lr"]
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    # Same options and seed -> same result as a plain `qa run` by hand with the trial's run.toml.
    results = json.loads((tmp_path / "sweeps" / "grid" / "results.json").read_text())
    first = results["trials"][0]
    assert set(first["test_by_category"]) == {"simple", "dense", "superdense"}
    low, high = first["test_ci95"]
    assert low < first["test_accuracy"] < high
    values = json.loads((Path(first["run_dir"]) / "summary.json").read_text())["values"]
    assert [low, high] == [values["metrics/test/accuracy_low"], values["metrics/test/accuracy_high"]]
    by_hand = qa("run", "--config", str(tmp_path / "sweeps" / "grid" / "trials" / "t000" / "run.toml"), "--runs-dir", str(tmp_path / "by-hand"), "--no-progress")
    assert by_hand.code == 0, by_hand.err
    summary = json.loads(next((tmp_path / "by-hand").glob("*/summary.json")).read_text())
    assert summary["test"]["accuracy"] == first["test_accuracy"]
    assert summary["best"]["accuracy"] == first["best_val_accuracy"]
    groups = {g["group"]: g for g in results["groups"]}
    assert groups["g000"]["seeds"] == [0, 1] and groups["g000"]["options"] == {"plugin": "bow", "params.lr": 0.01}
    # Seed groups in the format of `qa run --seeds`: qa compare and qa report read them.
    groups_dir = tmp_path / "sweeps" / "grid" / "groups"
    aggregate = json.loads((groups_dir / "g000" / "aggregate.json").read_text())
    assert aggregate["seeds"] == [0, 1]
    assert aggregate["metrics"]["metrics/test/accuracy"]["values"] == [r["test_accuracy"] for r in results["trials"][:2]]
    compared = qa("compare", str(groups_dir / "g000"), str(groups_dir / "g001"))
    assert compared.code == 0, compared.err
    assert "g000" in compared.out and "g001" in compared.out
    report = qa("report", str(groups_dir / "g001"), "--out", str(tmp_path / "g001.html"))
    assert report.code == 0, report.err
    rows = list(csv.DictReader(open(tmp_path / "sweeps" / "grid" / "results.csv")))
    assert [r["trial"] for r in rows] == ["t000", "t001", "t002", "t003"] and "test_dense_accuracy" in rows[0]
    assert "t003" in result.out and "seed groups" in result.out

    again = qa("sweep", str(path), "--workers", "2")
    assert again.code == 0 and "0 to run (4 already done)" in again.out
    assert sum(1 for _ in (tmp_path / "sweeps" / "grid" / "trials").glob("*/*/config.json")) == 4


def test_a_failing_trial_is_marked_with_its_reason_and_the_sweep_goes_on(tmp_path, qa, tiny_data):
    path = grid(tmp_path, tiny_data, epochs=1, lrs="[0.05, 50.0]", seeds="[0]")
    result = qa("sweep", str(path), "--workers", "2")
    assert result.code == 1, result.err + result.out
    trials = manifest(tmp_path)["trials"]
    assert trials[0]["status"] == "finished"
    assert trials[1]["status"] == "failed"
    assert trials[1]["reason"].startswith("--param lr") and "50" in trials[1]["reason"], trials[1]["reason"]
    assert f"t001 failed: {trials[1]['reason']}" in result.out
    # Failed trials are not retried unless asked.
    again = qa("sweep", str(path))
    assert "0 to run" in again.out and again.code == 1


def test_interrupted_sweep_resumes_each_trial_and_runs_only_what_is_missing(tmp_path, tiny_data, plugin_site):
    """Ctrl-C while two trials run and a third waits: each running trial saves its last epoch and a
    rerun resumes it (not restarts it) and runs only what is missing.

    The running trials are held at the end of epoch 3 by a gate callback (its checkpoint written)
    until the signal reaches them, so the Ctrl-C lands in a known state rather than racing the
    trials' clock (a timed poll, passing alone, twice sent it in full-suite runs only after every
    trial had finished; which part of the suite slowed what was never pinned down)."""
    plugin_site.add("qa-gatecallback", "0.1", "gate_callback", module="gatecallback")
    gate = tmp_path / "gate"
    gate.mkdir()
    path = grid(tmp_path, tiny_data, epochs=EPOCHS, lrs="[0.01]", seeds="[0, 1, 2]", base='callbacks = ["gatecallback"]')
    # Nothing from the suite's own environment (a QA_* setting of an earlier test) reaches the trials.
    env = {name: value for name, value in os.environ.items() if not name.startswith("QA_")}
    env.update({**plugin_site.env, "PYTHONUNBUFFERED": "1", "GATE_DIR": str(gate), "GATE_EPOCH": "3"})
    trials_dir = tmp_path / "sweeps" / "grid" / "trials"
    # Started with SIGINT ignored, as a script's background job (`qa sweep ... &`) is: the sweep
    # must still stop on it (Python installs no handler of its own then; an unfixed sweep hung).
    proc = subprocess.Popen(
        [*QA, "sweep", str(path), "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline = time.monotonic() + 300  # a guard against a hang, not a timing assumption
        while len(list(gate.glob("waiting-*"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        held = sorted(len(p.read_text().splitlines()) for p in trials_dir.glob("*/*/metrics.jsonl"))
        assert len(list(gate.glob("waiting-*"))) == 2 and held == [3, 3], (held, proc.poll(), list(gate.iterdir()))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            (gate / "open").touch()  # let held trials (their own sessions) end before the driver goes
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "run the same command again" in err
    assert [t["status"] for t in manifest(tmp_path)["trials"]] == ["interrupted", "interrupted", "pending"]
    interrupted = [t for t in manifest(tmp_path)["trials"] if t["status"] == "interrupted"]
    for trial in interrupted:
        assert json.loads((Path(trial["run_dir"]) / "summary.json").read_text())["status"] == "interrupted"

    (gate / "open").touch()
    result = subprocess.run([*QA, "sweep", str(path), "--workers", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    trials = manifest(tmp_path)["trials"]
    assert [t["status"] for t in trials] == ["finished"] * 3
    for before in interrupted:
        after = next(t for t in trials if t["id"] == before["id"])
        assert after["run_dir"] == before["run_dir"] and after["attempts"] == 2  # resumed, not restarted
        config = json.loads((Path(after["run_dir"]) / "config.json").read_text())
        assert config["resumed_after_epoch"] == 3
        epochs = [json.loads(line)["epoch"] for line in (Path(after["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
        assert epochs == list(range(1, EPOCHS + 1))
        assert "qa run --resume" in (trials_dir / after["id"] / "log.txt").read_text()
    assert next(t for t in trials if t["id"] == "t002")["attempts"] == 1  # the pending trial ran once, after
    assert sum(1 for _ in trials_dir.glob("*/*/config.json")) == 3  # no trial ran twice
