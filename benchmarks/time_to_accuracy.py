"""7. Time to accuracy: seconds of training (with per-epoch validation) until validation accuracy
first reaches each stated level, per model plugin, on the default generated data (4,500 / 900).

Each epoch is what ``qa run`` does: shuffle with the run's seed, ``train_one_epoch``, evaluate and
score the validation split. Checkpoints and trackers are left out (benchmark 6 prices them).
Plugins run on their defaults (the transformer's ``threads=0`` = every usable core). Two kinds
of level: overall validation accuracy (the default data mixes three categories; dense and
superdense stories are hard, so overall accuracy tops out near 0.7 for today's models), and
accuracy on the ``simple`` stories alone. A run stops when every level is reached, at the time
cap or at the epoch cap; a level not reached is reported as null.
"""

from __future__ import annotations

import time

import numpy as np

from qa_core import metrics
from qa_core.trainer import train_one_epoch

from .common import Result, model_plugin, prepare

OVERALL_LEVELS = (0.6, 0.65, 0.7)
SIMPLE_LEVELS = (0.9,)
BATCH_SIZE = 32
PLUGINS = ("transformer", "lstm", "bow")


def run(
    quick: bool,
    plugins: tuple[str, ...] = PLUGINS,
    train_rows: int = 4500,
    val_rows: int = 900,
    cap_seconds: float | None = None,
    max_epochs: int = 40,
) -> Result:
    result = Result("time_to_accuracy", "7. Time to validation accuracy on the default generated data")
    cap = cap_seconds or (90.0 if quick else 600.0)
    result.notes.append(
        f"overall levels {OVERALL_LEVELS}, simple-story levels {SIMPLE_LEVELS}; at most {cap:.0f} s and "
        f"{max_epochs} epochs of training per plugin; plugin defaults; {train_rows} / {val_rows} rows"
    )
    for name in plugins:
        plugin = model_plugin(name)
        if plugin is None:
            result.notes.append(f"{name}: not installed, skipped")
            continue
        prepared = prepare(plugin, {}, train_rows, val_rows)
        train, val, params = prepared.splits["train"], prepared.splits["val"], prepared.params
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        model = plugin.build(prepared.spec)
        build_seconds = time.perf_counter() - start
        levels = {f"{name}_seconds_to_val_acc_{level:.2f}": ("overall", level) for level in OVERALL_LEVELS}
        levels.update({f"{name}_seconds_to_simple_val_acc_{level:.2f}": ("simple", level) for level in SIMPLE_LEVELS})
        reached: dict[str, float | None] = dict.fromkeys(levels)
        curve = []
        elapsed, epoch = 0.0, 0
        while elapsed < cap and epoch < max_epochs and None in reached.values():
            epoch += 1
            start = time.perf_counter()
            train_one_epoch(plugin, model, train.take(rng.permutation(len(train))), BATCH_SIZE, epoch, epoch, False)
            probs = np.asarray(plugin.evaluate(model, val, BATCH_SIZE), dtype=np.float32)
            report = metrics.compute_for_split(val, probs)
            elapsed += time.perf_counter() - start
            scores = {"overall": report.accuracy, "simple": report.by_category["simple"].accuracy if "simple" in report.by_category else 0.0}
            curve.append({"epoch": epoch, "seconds": round(elapsed, 2), "val_accuracy": scores["overall"], "simple_val_accuracy": scores["simple"]})
            for key, (kind, level) in levels.items():
                if reached[key] is None and scores[kind] >= level:
                    reached[key] = round(elapsed, 3)
        result.figures.update(reached)
        result.figures[f"{name}_best_val_acc"] = max(p["val_accuracy"] for p in curve)
        result.details[name] = {"curve": curve, "params": params, "build_seconds": round(build_seconds, 2), "epochs": epoch}
        if name == "transformer":
            import torch

            result.details[name]["torch_threads"] = torch.get_num_threads()
    return result
