"""7. Time to accuracy: seconds of training (with per-epoch validation) until validation accuracy
first reaches each stated level, per model plugin, on the default generated data (4,500 / 900).

Each epoch is what ``qa run`` does: shuffle with the run's seed, ``train_one_epoch``, evaluate and
score the validation split. Checkpoints and trackers are left out (benchmark 6 prices them). Runs
stop at the last level or at a time cap; a level not reached is reported as null.
"""

from __future__ import annotations

import time

import numpy as np

from qa_core import ModelSpec, metrics
from qa_core.trainer import train_one_epoch

from .common import Result, encoded, model_plugin

LEVELS = (0.6, 0.7, 0.8, 0.9)
BATCH_SIZE = 32


def run(quick: bool) -> Result:
    result = Result("time_to_accuracy", "7. Time to validation accuracy on the default generated data")
    cap = 75.0 if quick else 900.0
    result.notes.append(f"levels {LEVELS}; at most {cap:.0f} s of training per plugin; plugin defaults except threads")
    for name in ("transformer", "lstm", "bow"):
        plugin = model_plugin(name)
        if plugin is None:
            result.notes.append(f"{name}: not installed, skipped")
            continue
        given = {"threads": "1"} if name == "transformer" else {}
        params = plugin.resolve_params(given)
        max_len = int(params.get("max_len", 96))
        vocab, splits = encoded(4500, 900, max_len)
        train, val = splits["train"], splits["val"]
        spec = ModelSpec(name, params, len(vocab), max_len, seed=0, vocab_hash=vocab.sha256)
        rng = np.random.default_rng(0)
        model = plugin.build(spec)
        reached: dict[str, float | None] = {f"{level:.2f}": None for level in LEVELS}
        curve = []
        elapsed, epoch = 0.0, 0
        while elapsed < cap and reached[f"{LEVELS[-1]:.2f}"] is None:
            epoch += 1
            start = time.perf_counter()
            train_one_epoch(plugin, model, train.take(rng.permutation(len(train))), BATCH_SIZE, epoch, epoch, False)
            probs = np.asarray(plugin.evaluate(model, val, BATCH_SIZE), dtype=np.float32)
            accuracy = metrics.compute_for_split(val, probs).accuracy
            elapsed += time.perf_counter() - start
            curve.append({"epoch": epoch, "seconds": round(elapsed, 2), "val_accuracy": accuracy})
            for level in LEVELS:
                if accuracy >= level and reached[f"{level:.2f}"] is None:
                    reached[f"{level:.2f}"] = round(elapsed, 2)
        for level, seconds in reached.items():
            result.figures[f"{name}_seconds_to_val_acc_{level}"] = seconds
        result.figures[f"{name}_best_val_acc_within_cap"] = max(p["val_accuracy"] for p in curve)
        result.details[name] = {"curve": curve, "params": params}
    return result
