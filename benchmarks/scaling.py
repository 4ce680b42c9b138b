"""9. How cost grows: each stage at 1k, 10k, 100k and 1M records, time ~ n^k and peak memory.

Stages, each through the code ``qa run`` takes: ``generate`` (``generate_splits``), ``encode``
(``Vocabulary.build`` + ``encode`` at a fixed ``max_len`` of 90, so the width does not grow with
n), ``bow_epoch`` and ``transformer_epoch`` (``train_one_epoch``, bar off, one torch thread),
``evaluate`` (the bow plugin's ``evaluate`` + ``check_probabilities`` + ``compute_for_split``)
and ``metrics`` (``compute_for_split`` alone, every interval included).

Every size runs in a child process of its own, so one size's memory cannot hide another's: before
each stage the child resets its peak resident memory (``/proc/self/clear_refs``) and reports the
peak's growth (``VmHWM`` minus ``VmRSS`` before) beside the time. A stage under half a second is
repeated (median of up to 10 after one warm-up). The exponent k is the least-squares slope of
log time on log n over the sizes measured; fixed per-call costs make it < 1 at small n, so k > 1.1
means some stage does more than linear work per record.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .common import Result

MAX_LEN = 90
BATCH_SIZE = 32
STAGES = ("generate", "encode", "bow_epoch", "transformer_epoch", "evaluate", "metrics")
#: The largest size each stage runs at: training is capped so a full run stays in minutes.
FULL_CAPS = {"generate": 1_000_000, "encode": 1_000_000, "bow_epoch": 1_000_000, "transformer_epoch": 10_000, "evaluate": 1_000_000, "metrics": 1_000_000}
QUICK_CAPS = {"generate": 100_000, "encode": 100_000, "bow_epoch": 100_000, "transformer_epoch": 10_000, "evaluate": 100_000, "metrics": 100_000}
SIZES = (1_000, 10_000, 100_000, 1_000_000)


def _kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def measure(run: Callable[[], Any]) -> dict[str, float]:
    """Seconds (median of repeats when one call is short) and peak memory growth in MiB."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        before = _kib("VmRSS")
    except OSError:
        before = None
    start = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - start
    peak_mib = (_kib("VmHWM") - before) / 1024 if before is not None else float("nan")
    if seconds < 0.5:
        times = []
        for _ in range(min(10, math.ceil(1.0 / max(seconds, 1e-4)))):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
    return {"seconds": seconds, "peak_mib": peak_mib, "_out": out}


def child(n: int, stages: list[str]) -> dict[str, Any]:
    """All asked stages at size n, in this process."""
    from qa_core import ModelSpec, metrics
    from qa_core.data.generator import generate_splits
    from qa_core.data.tokenizer import Vocabulary, encode
    from qa_core.plugins import load_plugins
    from qa_core.trainer import category_order, check_probabilities, train_one_epoch

    out: dict[str, Any] = {}
    generated = measure(lambda: generate_splits({"train": n}, seed=0))
    records = generated.pop("_out")
    if "generate" in stages:
        out["generate"] = generated
    examples = records["train"]
    vocab = Vocabulary.build(examples)
    categories = category_order(records)
    encoded = measure(lambda: encode(examples, Vocabulary.build(examples), MAX_LEN, "train", categories)[0])
    split = encoded.pop("_out")
    if "encode" in stages:
        out["encode"] = encoded
    del records, examples
    probs = np.random.default_rng(0).random(len(split), dtype=np.float32)
    if "metrics" in stages:
        out["metrics"] = measure(lambda: metrics.compute_for_split(split, probs))
    plugins = load_plugins()
    for name in ("bow", "transformer"):
        if f"{name}_epoch" not in stages and not (name == "bow" and "evaluate" in stages):
            continue
        plugin = plugins.model(name)
        params = plugin.resolve_params({"threads": "1"} if name == "transformer" else {})
        if "max_len" in params:
            params = {**params, "max_len": MAX_LEN}
        model = plugin.build(ModelSpec(plugin.name, params, len(vocab), MAX_LEN, seed=0, vocab_hash=vocab.sha256, vocab=vocab.tokens))
        if f"{name}_epoch" in stages:
            out[f"{name}_epoch"] = measure(lambda: train_one_epoch(plugin, model, split, BATCH_SIZE, 1, 1, False))
        if name == "bow" and "evaluate" in stages:
            out["evaluate"] = measure(lambda: metrics.compute_for_split(split, check_probabilities(plugin, plugin.evaluate(model, split, 256), len(split))))
    for figures in out.values():
        figures.pop("_out", None)
    return out


def exponent(sizes: list[int], seconds: list[float]) -> float:
    """k in time ~ n^k: the least-squares slope on log-log axes."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def run(quick: bool, sizes: tuple[int, ...] | None = None, caps: dict[str, int] | None = None) -> Result:
    result = Result("scaling", "9. How cost grows: time ~ n^k and peak memory per stage and size")
    caps = caps or (QUICK_CAPS if quick else FULL_CAPS)
    sizes = sizes or SIZES
    table: dict[str, dict[int, dict[str, float]]] = {stage: {} for stage in STAGES}
    for n in sizes:
        stages = [stage for stage in STAGES if n <= caps.get(stage, 0)]
        if not stages:
            continue
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.scaling", str(n), *stages], capture_output=True, text=True,
            cwd=Path(__file__).resolve().parents[1], timeout=1800,
        )
        if done.returncode != 0:
            result.notes.append(f"size {n}: child failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        for stage, figures in json.loads(done.stdout.strip().splitlines()[-1]).items():
            table[stage][n] = figures
    for stage, by_size in table.items():
        if len(by_size) >= 2:
            ns = sorted(by_size)
            result.figures[f"scaling_k_{stage}"] = exponent(ns, [by_size[n]["seconds"] for n in ns])
            result.targets[f"scaling_k_{stage}"] = ("<=", 1.1)
    result.details["table"] = {stage: {str(n): v for n, v in sorted(by_size.items())} for stage, by_size in table.items()}
    result.details["setup"] = {"max_len": MAX_LEN, "batch_size": BATCH_SIZE, "caps": caps}
    return result


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]), sys.argv[2:])))
