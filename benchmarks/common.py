"""What every benchmark shares: side-by-side timing, the result record, data at a given size."""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping

import numpy as np


@dataclass
class Comparison:
    """Seconds per repeat of each side, measured alternately; ``ratio`` = median(a) / median(b)."""

    a: str
    b: str
    seconds_a: list[float]
    seconds_b: list[float]

    @property
    def median_a(self) -> float:
        return statistics.median(self.seconds_a)

    @property
    def median_b(self) -> float:
        return statistics.median(self.seconds_b)

    @property
    def ratio(self) -> float:
        return self.median_a / self.median_b

    @property
    def round_ratios(self) -> list[float]:
        """a / b of each round: their spread is the noise the median ratio sits in."""
        return [x / y for x, y in zip(self.seconds_a, self.seconds_b)]

    def to_json(self) -> dict[str, Any]:
        rounds = self.round_ratios
        return {
            "a": self.a,
            "b": self.b,
            "median_s": {self.a: self.median_a, self.b: self.median_b},
            "seconds": {self.a: self.seconds_a, self.b: self.seconds_b},
            "ratio": self.ratio,
            "round_ratio_min": min(rounds),
            "round_ratio_max": max(rounds),
        }


def side_by_side(
    sides: Mapping[str, Callable[[], Any]],
    repeats: int,
    warmup: int = 1,
    before: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Comparison:
    """Time two callables alternately: ``warmup`` untimed rounds, then ``repeats`` timed ones.

    The order flips every round (A B, B A, ...) so neither side always runs right after the
    other's caches, allocations or thermal state. ``before(round)`` runs untimed before each
    round (e.g. to draw this round's shuffle for both sides). ``clock=time.thread_time`` times
    the CPU the calling thread spent instead of the wall: on a shared machine a call longer than
    a scheduler slice is preempted and a sub-millisecond one mostly is not, so wall ratios
    against a short baseline grow with the load, CPU ratios much less.
    """
    (name_a, run_a), (name_b, run_b) = sides.items()
    times: dict[str, list[float]] = {name_a: [], name_b: []}
    for round_index in range(warmup + repeats):
        if before is not None:
            before(round_index)
        order = [(name_a, run_a), (name_b, run_b)]
        if round_index % 2:
            order.reverse()
        for name, run in order:
            start = clock()
            run()
            elapsed = clock() - start
            if round_index >= warmup:
                times[name].append(elapsed)
    return Comparison(name_a, name_b, times[name_a], times[name_b])


def best_of(run: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """(median seconds, all timings) of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


@dataclass
class Result:
    """One benchmark's output: ``figures`` are the headline numbers (ratios keyed by what they
    compare), ``targets`` the bound each should meet, ``details`` everything behind them."""

    name: str
    title: str
    figures: dict[str, float] = field(default_factory=dict)
    targets: dict[str, tuple[str, float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    def target_met(self, key: str) -> bool | None:
        if key not in self.targets or key not in self.figures:
            return None
        op, bound = self.targets[key]
        value = self.figures[key]
        return value <= bound if op == "<=" else value >= bound

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "figures": self.figures,
            "targets": {k: {"op": op, "value": v, "met": self.target_met(k)} for k, (op, v) in self.targets.items()},
            "details": self.details,
            "notes": self.notes,
            "skipped": self.skipped,
        }


def machine() -> dict[str, Any]:
    """What the figures were measured on, including how busy it was."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "usable_cores": cores,
        "load_average": load,
        "numpy": np.__version__,
    }


@lru_cache(maxsize=8)
def generated(train: int, val: int, test: int = 0, seed: int = 0) -> dict[str, list]:
    """Generated splits, cached for the process (several benchmarks share them)."""
    from qa_core.data.generator import generate_splits

    sizes = {"train": train, "val": val}
    if test:
        sizes["test"] = test
    return generate_splits(sizes, seed=seed)


def encoded(train: int, val: int, max_len: int, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """(vocabulary, {split: EncodedSplit}) exactly as ``qa run`` builds them."""
    from qa_core.data.tokenizer import Vocabulary, encode
    from qa_core.trainer import category_order

    splits = generated(train, val, 0, seed)
    vocab = Vocabulary.build(splits["train"])
    categories = category_order(splits)
    return vocab, {name: encode(examples, vocab, max_len, name, categories)[0] for name, examples in splits.items()}


def model_plugin(name: str, needs: str | None = None) -> Any | None:
    """The installed model plugin ``name`` through the core's plugin manager, or None (also when
    the module ``needs``, e.g. its framework, cannot be imported)."""
    import importlib

    from qa_core.errors import QAError
    from qa_core.plugins import load_plugins

    try:
        if needs is not None:
            importlib.import_module(needs)
        return load_plugins().model(name)
    except (QAError, ImportError):
        return None


@dataclass
class Prepared:
    """A model plugin's resolved params, the generated splits encoded for it and its spec."""

    params: dict[str, Any]
    vocab: Any
    splits: dict[str, Any]
    spec: Any


def prepare(plugin: Any, given: Mapping[str, str], train: int, val: int, max_len: int | None = None) -> Prepared:
    """Params from ``given``, the generated splits encoded at ``max_len`` (default: the plugin's
    own ``max_len`` param; 0 or none covers the data, as ``qa run`` resolves it), and a seed-0
    ``ModelSpec``: the inputs ``qa run`` builds."""
    from qa_core import ModelSpec
    from qa_core.data.tokenizer import sequence_lengths

    params = plugin.resolve_params(given)
    max_len = max_len or int(params.get("max_len") or 0)
    if not max_len:
        max_len = max(int(sequence_lengths(examples).max()) for examples in generated(train, val).values())
    if "max_len" in params:
        params = {**params, "max_len": max_len}
    vocab, splits = encoded(train, val, max_len)
    # vocab too: the memory network finds sentence ends through it (without it a story is one sentence)
    spec = ModelSpec(plugin.name, params, len(vocab), max_len, seed=0, vocab_hash=vocab.sha256, vocab=vocab.tokens)
    return Prepared(params, vocab, splits, spec)


def quiet_progress() -> Any:
    """Context: the progress bar's text goes nowhere (its bookkeeping still runs)."""
    import contextlib
    import io
    return contextlib.redirect_stderr(io.StringIO())
