"""`qa sweep --backend ray` against a real local Ray instance (127.0.0.1), started once for the
module and stopped at its end. Trials are the same bow `qa run` subprocesses as on the local
backend, so the results must be the same; ASHA must stop a trial with a hopeless learning rate."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from qa_core.data.records import Example, write_jsonl
from qa_core.sweep.commands import run_sweep
from qa_core.sweep.trial import run_status

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    from qa_core.sweep.ray_backend import start_local_ray

    start_local_ray(ray, num_cpus=2)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def cue_data(tmp_path_factory) -> Path:
    """Stories whose answer a bag of words can learn (one cue word), so a good learning rate is
    clearly better than a hopeless one after one epoch."""
    directory = tmp_path_factory.mktemp("cue-data")
    sizes = {"train": 300, "val": 60, "test": 60}
    for split, size in sizes.items():
        records = []
        for i in range(size):
            answer = i % 2 == 0
            place = ("kitchen", "garden", "hall")[i % 3]
            cue = "bright" if answer else "dim"
            story = f"Mary went to the {place}. The {place} was {cue}. John took the {('ball', 'cup')[i % 2 ^ (i // 2) % 2]}."
            records.append(Example(f"{split}-{i}", story, f"Is Mary in the {place}?", answer, ("simple", "dense")[i % 4 // 2], 3 + i % 2))
        write_jsonl(directory / f"{split}.jsonl", records)
    return directory


DEFAULT_AXES = "params.lr = [0.2]\nseed = [0, 1]"


def sweep_file(tmp_path: Path, name: str, data: Path, extra: str = "", axes: str = "", epochs: int = 2) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[sweep]\nname = "{name}"\ndir = "{tmp_path / "sweeps"}"\n{extra}\n'
        f'[base]\ndata_dir = "{data}"\nepochs = {epochs}\nplugin = "bow"\n'
        f"[axes]\n{axes or DEFAULT_AXES}\n",
        encoding="utf-8",
    )
    return path


def results(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / "sweeps" / name / "results.json").read_text())


def epoch_lines(run_dir: str) -> list[dict]:
    """metrics.jsonl without the wall-clock values."""
    lines = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if "seconds" not in k and "time" not in k} for line in lines]


def test_ray_gives_the_local_results_and_a_rerun_runs_only_missing_trials(tmp_path, local_ray, cue_data, capsys):
    assert run_sweep(sweep_file(tmp_path, "on-local", cue_data), "local", workers=2) == 0
    assert run_sweep(sweep_file(tmp_path, "on-ray", cue_data), "ray", workers=2) == 0
    local, remote = results(tmp_path, "on-local")["trials"], results(tmp_path, "on-ray")["trials"]
    assert [t["status"] for t in remote] == ["finished"] * 2
    for a, b in zip(local, remote):
        assert a["options"] == b["options"]
        for key in ("best_epoch", "best_val_accuracy", "test_accuracy", "test_by_category", "test_ci95"):
            assert a[key] == b[key], (a["trial"], key)
        assert epoch_lines(a["run_dir"]) == epoch_lines(b["run_dir"])
    assert results(tmp_path, "on-ray")["groups"][0]["seeds"] == [0, 1]

    # A sweep killed before trial t001 finished an epoch: only t001 runs again.
    manifest_path = tmp_path / "sweeps" / "on-ray" / "sweep.json"
    manifest = json.loads(manifest_path.read_text())
    lost = Path(manifest["trials"][1]["run_dir"])
    shutil.rmtree(lost)
    manifest["trials"][1].update(status="running", run_dir=None)
    manifest_path.write_text(json.dumps(manifest))
    untouched = {t["id"]: (Path(t["run_dir"]) / "summary.json").stat().st_mtime_ns for t in manifest["trials"] if t["id"] != "t001"}
    capsys.readouterr()
    assert run_sweep(sweep_file(tmp_path, "on-ray", cue_data), "ray", workers=2) == 0
    assert "1 to run (1 already done)" in capsys.readouterr().out
    again = results(tmp_path, "on-ray")["trials"]
    assert again[1]["status"] == "finished" and again[1]["test_accuracy"] == local[1]["test_accuracy"]
    for trial_id, mtime in untouched.items():
        row = next(t for t in again if t["trial"] == trial_id)
        assert (Path(row["run_dir"]) / "summary.json").stat().st_mtime_ns == mtime


def test_asha_stops_the_trial_with_a_hopeless_learning_rate_early(tmp_path, local_ray, cue_data):
    # A tiny trial runs an epoch in tens of milliseconds, faster than Tune's stop travels (the
    # trial is a subprocess that does not wait for Tune): enough epochs that the stop lands early.
    EPOCHS = 150
    path = sweep_file(
        tmp_path,
        "asha",
        cue_data,
        extra='scheduler = "asha"\ngrace_period = 1\nreduction_factor = 2\nworkers = 1',
        axes="params.lr = [0.2, 1e-6]\nseed = [0]",
        epochs=EPOCHS,
    )
    assert run_sweep(path, "ray") == 0
    good, bad = results(tmp_path, "asha")["trials"]
    assert good["status"] == "finished" and good["epochs_run"] == EPOCHS
    assert good["best_val_accuracy"] > 0.9
    assert bad["status"] == "stopped", bad
    # ASHA decides at the first rung (epoch 1), but a tiny trial runs on while Tune's stop travels
    # (seen: 1 or 3 epochs done); the reason names the epoch actually on disk, and it is early.
    stopped_after = re.match(r"ASHA stopped it after epoch (\d+) ", bad["reason"])
    assert stopped_after, bad["reason"]
    assert int(stopped_after.group(1)) == len(epoch_lines(bad["run_dir"])) < EPOCHS
    # Ended by SIGTERM, not killed outright: the run closed itself and says so.
    deadline = time.monotonic() + 30
    while run_status(Path(bad["run_dir"])) == "running" and time.monotonic() < deadline:
        time.sleep(0.1)  # the trial may still be closing when Tune returns
    assert run_status(Path(bad["run_dir"])) == "interrupted"
    # A stopped trial is done: a rerun leaves it alone.
    assert run_sweep(path, "ray") == 0
    assert results(tmp_path, "asha")["trials"][1]["status"] == "stopped"
