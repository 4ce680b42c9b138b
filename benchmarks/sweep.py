"""21.6 Sweeps: the local pool against running the same trials one after another, and Ray's cost.

The same sweep file (bow, 2 learning rates x 2 L2 penalties x 3 seeds = 12 trials; quick: 2 x 1 x 2
= 4) runs three times, each into a fresh sweep directory, through ``qa sweep``'s own entry point:

* ``--workers 1`` (sequential: one trial at a time with every core),
* ``--workers 2`` (two at once, one thread each: the thread rule on 2 cores),
* ``--backend ray --workers 2`` against a local Ray instance started before the clock starts
  (its start-up is reported separately: a cluster is started once, not per sweep).

Figures: ``sweep_2_workers_ratio_vs_sequential`` (wall time; 0.5 is perfect on 2 idle cores) and
``ray_overhead_seconds_per_trial`` ((ray wall - local wall) / trials at the same worker count),
with ``ray_ratio_vs_local``. One measurement each (a sweep is long): see the machine load.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

from .common import Result


def _sweep_file(directory: Path, data: Path, name: str, quick: bool, epochs: int) -> Path:
    lrs, l2s, seeds = ("[0.02, 0.1]", "[1e-4]", "[0, 1]") if quick else ("[0.02, 0.1]", "[1e-4, 1e-3]", "[0, 1, 2]")
    path = directory / f"{name}.toml"
    path.write_text(
        f'[sweep]\nname = "{name}"\ndir = "{directory / "sweeps"}"\n'
        f'[base]\nplugin = "bow"\ndata = "{data}"\nepochs = {epochs}\n'
        f'[axes]\n"params.lr" = {lrs}\n"params.l2" = {l2s}\nseed = {seeds}\n',
        encoding="utf-8",
    )
    return path


def _timed(path: Path, backend: str, workers: int) -> float:
    from qa_core.sweep.commands import run_sweep

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = run_sweep(path, backend, workers=workers)
    if code:
        raise RuntimeError(f"sweep {path.name} ended with code {code}")
    return time.perf_counter() - started


def run(quick: bool, with_ray: bool = True, sizes: dict[str, int] | None = None, epochs: int | None = None) -> Result:
    from qa_core.data.generator import generate_splits
    from qa_core.data.records import write_jsonl

    result = Result("sweep", "qa sweep: 2 workers vs sequential; Ray overhead per trial")
    sizes = sizes or ({"train": 600, "val": 150, "test": 150} if quick else {"train": 2000, "val": 400, "test": 400})
    epochs = epochs or (4 if quick else 8)
    with tempfile.TemporaryDirectory(prefix="qa-bench-sweep-") as tmp:
        root = Path(tmp)
        for split, examples in generate_splits(sizes, seed=5).items():
            write_jsonl(root / "data" / f"{split}.jsonl", examples)
        sequential = _timed(_sweep_file(root, root / "data", "sequential", quick, epochs), "local", 1)
        parallel = _timed(_sweep_file(root, root / "data", "parallel", quick, epochs), "local", 2)
        trials = sum(1 for _ in (root / "sweeps" / "parallel" / "trials").iterdir())
        result.figures["sweep_2_workers_ratio_vs_sequential"] = round(parallel / sequential, 3)
        result.targets["sweep_2_workers_ratio_vs_sequential"] = ("<=", 0.8)
        result.details.update(trials=trials, epochs=epochs, sizes=sizes, sequential_seconds=round(sequential, 2), two_workers_seconds=round(parallel, 2))
        if with_ray:
            _ray(result, root, quick, epochs, parallel, trials)
    return result


def _ray(result: Result, root: Path, quick: bool, epochs: int, local_seconds: float, trials: int) -> None:
    try:
        import ray
    except ImportError:
        result.notes.append("Ray not installed (pip install 'qa-core[ray]'): Ray figures skipped")
        return
    started = time.perf_counter()
    from qa_core.sweep.ray_backend import start_local_ray

    start_local_ray(ray, num_cpus=2)
    result.details["ray_start_seconds"] = round(time.perf_counter() - started, 2)
    try:
        seconds = _timed(_sweep_file(root, root / "data", "on-ray", quick, epochs), "ray", 2)
    finally:
        ray.shutdown()
    result.details["ray_two_workers_seconds"] = round(seconds, 2)
    result.figures["ray_overhead_seconds_per_trial"] = round((seconds - local_seconds) / trials, 2)
    result.figures["ray_ratio_vs_local"] = round(seconds / local_seconds, 3)
