"""The training loop: framework agnostic, read top to bottom.

    load + validate data -> vocabulary (train only) -> encode once to numpy
    -> build through the selected model plugin
    -> per epoch: shuffle, train (progress bar per batch), evaluate val, score, checkpoint policy,
       log to every tracker, print one line, early stopping
    -> reload the best checkpoint, score the test split, write eval/, print the results block

The core owns epochs, progress, evaluation, the checkpoint policy and logging. A plugin trains
one step at a time (``qa_train_step``) or a whole epoch in its own loop (``qa_train_epoch``,
Keras ``fit``); either way the bar moves per batch and the epoch's results come back here.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from . import __version__, console, metrics, provenance
from .checkpoints import META_FORMAT, CheckpointPolicy, meta_path, read_meta
from .config import DEFAULT_DATA_SIZES, RunConfig
from .data.loading import read_dir, read_examples
from .data.records import Example, write_jsonl
from .data.splits import stratified_split
from .data.tokenizer import Vocabulary, encode, sequence_lengths
from .errors import ConfigError, QAError, RunInterrupted
from .evaluation import write_eval
from .fsutil import atomic_write, directory_lock
from .plugins import ModelPlugin, PluginManager, load_plugins
from .tracking.hub import TrackerHub
from .tracking.options import resolve_tracker_options
from .types import EncodedSplit, ModelSpec, RunContext

#: Encoded length when neither --max-len nor a plugin ``max_len`` parameter says otherwise:
#: the longest training record, capped here.
MAX_AUTO_LEN = 512
#: How often (in seconds) the progress bar's loss is refreshed; each refresh costs a float().
BAR_REFRESH_SECONDS = 0.5


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    context: RunContext
    summary: dict[str, Any]


@dataclass
class Data:
    splits: dict[str, list[Example]]
    dataset: str
    sources: dict[str, str] = field(default_factory=dict)


# -------------------------------------------------------------------------------------------------
# data
# -------------------------------------------------------------------------------------------------


def load_data(config: RunConfig, runs_dir: Path) -> Data:
    """The train/val/test records the config names, or the default generated dataset."""
    if config.data_dir:
        splits = read_dir(config.data_dir)
        data = Data(splits, Path(config.data_dir).resolve().name, {"data_dir": str(config.data_dir)})
    elif config.train:
        splits = {"train": read_examples(config.train, config.data_format)}
        if config.val:
            splits["val"] = read_examples(config.val, config.data_format)
        splits["test"] = read_examples(config.test, config.data_format)  # type: ignore[arg-type]
        sources = {k: str(getattr(config, k)) for k in ("train", "val", "test") if getattr(config, k)}
        data = Data(splits, Path(config.train).resolve().parent.name or Path(config.train).stem, sources)
    else:
        data = default_dataset(runs_dir, config.seed)
    if "val" not in data.splits:
        train, val = stratified_split(data.splits["train"], config.val_fraction, config.seed)
        if not train or not val:
            raise ConfigError(f"--train: too few records ({len(data.splits['train'])}) to carve a validation split")
        data.splits["train"], data.splits["val"] = train, val
        data.sources["val"] = f"stratified {config.val_fraction:g} of train"
    return data


def default_dataset(runs_dir: Path, seed: int) -> Data:
    """Generate (once, then reuse) the default dataset under ``<runs_dir>/_data/``."""
    from .data.generator import GENERATOR_VERSION, generate_splits

    # Named by everything that decides its content, so stale data is never silently reused.
    directory = runs_dir / "_data" / f"default-seed{seed}-gen{GENERATOR_VERSION}-qa{__version__}"
    # Locked: a second run started meanwhile waits, then reuses the set instead of writing it again.
    with directory_lock(directory):
        if not all((directory / f"{split}.jsonl").is_file() for split in DEFAULT_DATA_SIZES):
            console.say(f"no data given: generating the default dataset into {directory}")
            splits = generate_splits(DEFAULT_DATA_SIZES, seed=seed)
            for split, examples in splits.items():
                write_jsonl(directory / f"{split}.jsonl", examples)
    splits = read_dir(directory)
    return Data(splits, "generated", {"data_dir": str(directory)})


def category_order(splits: dict[str, list[Example]]) -> tuple[str, ...]:
    """Generator categories in difficulty order first, then any others alphabetically."""
    from .data.generator import CATEGORIES

    seen = {e.category for examples in splits.values() for e in examples}
    return tuple(c for c in CATEGORIES if c in seen) + tuple(sorted(seen - set(CATEGORIES)))


def resolve_model_params(model_plugin: ModelPlugin, config: RunConfig) -> dict[str, Any]:
    """The plugin's hyperparameters: --param values, plus the core options that a plugin may
    declare as parameters of its own (--lr sets ``lr``, --max-len sets ``max_len``), so the model
    and the encoding never disagree. An explicit --param wins."""
    declared = {p.name for p in model_plugin.info.params}
    given = dict(config.params)
    if config.lr is not None:
        if "lr" not in declared:
            raise ConfigError(f"--lr: plugin '{model_plugin.name}' has no lr parameter")
        given.setdefault("lr", config.lr)
    if config.max_len is not None and "max_len" in declared:
        given.setdefault("max_len", config.max_len)
    return model_plugin.resolve_params(given)


def resolve_max_len(config: RunConfig, params: dict[str, Any], train: Sequence[Example]) -> int:
    if "max_len" in params:  # the plugin's own parameter (which --max-len sets) decides
        return int(params["max_len"])
    if config.max_len is not None:
        return config.max_len
    return int(min(MAX_AUTO_LEN, max(4, sequence_lengths(train).max())))


# -------------------------------------------------------------------------------------------------
# helpers
# -------------------------------------------------------------------------------------------------


def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    return np.random.default_rng(seed)


def new_run_id(plugin: str) -> str:
    """Sortable by time (to the millisecond), unique by a random suffix."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"{int(now * 1000) % 1000:03d}"
    return f"{stamp}-{plugin}-{os.urandom(2).hex()}"


def check_probabilities(model_plugin: ModelPlugin, probs: Any, n: int) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float32).reshape(-1)
    if probs.shape[0] != n:
        raise QAError(f"plugin '{model_plugin.name}': qa_evaluate returned {probs.shape[0]} probabilities for {n} records")
    if not np.all(np.isfinite(probs)):
        raise QAError(f"plugin '{model_plugin.name}': qa_evaluate returned NaN or infinite probabilities")
    return probs


def train_one_epoch(
    model_plugin: ModelPlugin, model: Any, data: EncodedSplit, batch_size: int, epoch: int, epochs: int, progress: bool | None
) -> tuple[float, float]:
    """One pass over ``data`` (already shuffled); returns (mean loss, accuracy)."""
    total = data.num_batches(batch_size)
    bar = tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False, disable=(not progress) if progress is not None else None, dynamic_ncols=True, mininterval=0.2)
    try:
        if model_plugin.trains_whole_epochs:
            last_refresh = [time.monotonic()]

            def on_batch(done: int, loss: Any) -> None:
                bar.update(done - bar.n)
                now = time.monotonic()
                if now - last_refresh[0] >= BAR_REFRESH_SECONDS:
                    last_refresh[0] = now
                    bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)

            result = model_plugin.train_epoch(model, data, batch_size, epoch, on_batch)
            if result is not None:
                bar.update(total - bar.n)
                return float(result["loss"]), float(result["accuracy"])

        # Step by step. Losses stay whatever the plugin returned (maybe device tensors) until the
        # bar refreshes or the epoch ends: converting every step would force a sync per step.
        step = model_plugin.train_step
        losses: list[Any] = []
        correct: list[Any] = []
        next_refresh = time.monotonic() + BAR_REFRESH_SECONDS
        for batch in data.batches(batch_size):
            loss, right = step(model, batch)
            losses.append(loss)
            correct.append(right)
            bar.update(1)
            if bar.disable is False and time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + BAR_REFRESH_SECONDS
                bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)
        sizes = np.full(len(losses), batch_size, dtype=np.float64)
        if len(data) % batch_size:
            sizes[-1] = len(data) % batch_size
        loss_values = np.array([float(v) for v in losses])
        mean_loss = float(loss_values @ sizes / len(data))
        accuracy = float(sum(float(v) for v in correct) / len(data))
        return mean_loss, accuracy
    finally:
        bar.close()


# -------------------------------------------------------------------------------------------------
# interrupts and resume
# -------------------------------------------------------------------------------------------------


class _Signal(BaseException):
    """Raised by our signal handler inside the training thread (like KeyboardInterrupt)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into an exception in the main thread, for the duration."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Signal(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class ResumePoint:
    """Where a resumed run starts. Everything is derived from files a run writes anyway: the
    last checkpoint (model, optimizer, RNG) and metrics.jsonl (the policy is replayed from it)."""

    epoch: int
    checkpoint: Path
    meta: dict[str, Any]
    lines: list[dict[str, Any]]


def read_resume_point(run_dir: Path, suffix: str) -> ResumePoint:
    last = run_dir / "checkpoints" / f"last{suffix}"
    if not last.is_file() or not meta_path(last, suffix).is_file():
        raise ConfigError(f"--resume {run_dir}: no completed epoch was saved (no checkpoints/last{suffix}); start the run again")
    meta = read_meta(last, suffix)
    epoch = int(meta["epoch"])
    lines = []
    metrics_file = run_dir / "metrics.jsonl"
    if metrics_file.is_file():
        for text in metrics_file.read_text(encoding="utf-8").splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue  # a line cut short by kill -9
            if isinstance(line, dict) and isinstance(line.get("epoch"), int) and line["epoch"] <= epoch:
                lines.append(line)
    if [line["epoch"] for line in lines] != list(range(1, epoch + 1)):
        raise ConfigError(f"--resume {run_dir}: metrics.jsonl does not hold epochs 1..{epoch}; cannot resume")
    return ResumePoint(epoch, last, meta, lines)


def config_from_run(run_dir: Path) -> dict[str, Any]:
    """The options a run was started with, from its config.json (for --resume)."""
    from .config import CONFIG_KEYS, REDACTED

    path = run_dir / "config.json"
    if not path.is_file():
        raise ConfigError(f"--resume {run_dir}: not a run directory (no config.json)")
    stored = json.loads(path.read_text(encoding="utf-8"))
    values = {k: v for k, v in stored.items() if k in CONFIG_KEYS}
    values["logger_params"] = {
        tracker: {k: v for k, v in options.items() if v != REDACTED} for tracker, options in stored.get("logger_params", {}).items()
    }
    return values


def _rewrite_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    atomic_write(path, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))


# -------------------------------------------------------------------------------------------------
# the run
# -------------------------------------------------------------------------------------------------


def train(config: RunConfig, pm: PluginManager | None = None, resume: Path | None = None) -> RunResult:
    """Run one training job end to end (or continue one: ``resume`` = its run directory).
    Raises QAError subclasses for the user's mistakes; RunInterrupted on SIGINT/SIGTERM."""
    config.check()
    pm = pm or load_plugins()
    model_plugin = pm.model(config.plugin)
    suffix = model_plugin.info.checkpoint_suffix or ""
    params = resolve_model_params(model_plugin, config)
    trackers = ["local", *config.loggers]
    tracker_options = resolve_tracker_options(pm, config.loggers, config.logger_params)  # before any work
    point = read_resume_point(resume, suffix) if resume is not None else None

    runs_dir = Path(config.runs_dir)
    data = load_data(config, runs_dir)
    categories = category_order(data.splits)
    if resume is not None:
        vocab = Vocabulary.load(resume / "vocab.json")
        categories = tuple(point.meta.get("category_names", categories))  # type: ignore[union-attr]
    else:
        vocab = Vocabulary.build(data.splits["train"])
    max_len = resolve_max_len(config, params, data.splits["train"])
    encoded: dict[str, EncodedSplit] = {}
    for split in ("train", "val", "test"):
        encoded[split], stats = encode(data.splits[split], vocab, max_len, split, categories)
        if stats.truncated:
            console.warn(
                f"qa: {stats.truncated} of {stats.records} {split} records are longer than max_len={max_len} "
                f"(longest {stats.longest}); kept the question and the end of each story"
            )

    if resume is not None:
        run_dir = resume
        run_id = run_dir.name
    else:
        run_id = new_run_id(model_plugin.name)
        run_dir = runs_dir / run_id
        (run_dir / "checkpoints").mkdir(parents=True)
        vocab.save(run_dir / "vocab.json")
    vocab_path = run_dir / "vocab.json"

    public = config.public()
    public.update({"qa_version": __version__, "data_sources": data.sources, "max_len": max_len, "vocab_size": len(vocab), "vocab_sha256": vocab.sha256})
    public["provenance"] = provenance.for_run(pm, model_plugin.info.framework)
    if point is not None:
        public["resumed_after_epoch"] = point.epoch
    context = RunContext(
        run_id=run_id,
        run_dir=run_dir,
        plugin=model_plugin.name,
        plugin_version=model_plugin.version,
        framework=model_plugin.info.framework,
        dataset=data.dataset,
        config=public,
        tags=tuple(config.tags),
        logger_params=tracker_options,
        resumed_after_epoch=point.epoch if point is not None else None,
    )
    hub = TrackerHub(pm, trackers, context, warn=console.warn)
    versions = [(name, pm.records[name].version or "?") for name in hub.names]
    console.say(console.plugins_line((model_plugin.name, model_plugin.version), versions))
    console.say(
        f"run {run_id}: {len(encoded['train'])} train / {len(encoded['val'])} val / {len(encoded['test'])} test records, "
        f"vocabulary {len(vocab)}, max_len {max_len} -> {run_dir}"
    )

    rng = seed_everything(config.seed)
    spec = ModelSpec(
        model_plugin.name,
        params,
        len(vocab),
        max_len,
        config.seed,
        vocab_hash=vocab.sha256,
        vocab=vocab.tokens,
        epochs=config.epochs,
        batch_size=config.batch_size,
        steps_per_epoch=encoded["train"].num_batches(config.batch_size),
    )
    policy = CheckpointPolicy(run_dir / "checkpoints", data.dataset, run_id, suffix, config.top_k, config.checkpoint_every, warn=console.warn)
    base_meta = {
        "format": META_FORMAT,
        "plugin": model_plugin.name,
        "plugin_version": model_plugin.version,
        "framework": model_plugin.info.framework,
        "qa_version": __version__,
        "run_id": run_id,
        "dataset": data.dataset,
        "vocab_sha256": vocab.sha256,
        "vocab_size": len(vocab),
        "max_len": max_len,
        "seed": config.seed,
        "params": params,
        "category_names": list(categories),
    }
    status = "failed"
    summary: dict[str, Any] = {"plugin": model_plugin.name, "plugin_version": model_plugin.version, "framework": model_plugin.info.framework, "dataset": data.dataset}
    started = time.monotonic()
    lost: dict[str, str] = {}  # files a full disk kept out of the run directory -> summary.json
    first_epoch, since_best, epochs_run = 1, 0, 0
    epoch = 0
    hub.run_start()
    try:
        with _signals_interrupt():
            hub.params(
                {
                    **{f"model/{k}": v for k, v in params.items()},
                    "plugin": model_plugin.name,
                    "plugin_version": model_plugin.version,
                    "framework": model_plugin.info.framework or "",
                    "dataset": data.dataset,
                    "epochs": config.epochs,
                    "batch_size": config.batch_size,
                    "seed": config.seed,
                    "max_len": max_len,
                    "vocab_size": len(vocab),
                    "train_size": len(encoded["train"]),
                    "val_size": len(encoded["val"]),
                    "test_size": len(encoded["test"]),
                    "qa_version": __version__,
                    **provenance.flat(public["provenance"]),
                }
            )
            if point is None:
                model = model_plugin.build(spec)
            else:
                # Replay what the finished epochs decided: the shuffles (so the next epoch sees the
                # order it would have seen), the checkpoint policy and early stopping. Lines and
                # checkpoints of an epoch that never finished are dropped.
                _rewrite_lines(run_dir / "metrics.jsonl", point.lines)
                for stale in run_dir.rglob(".*.tmp*"):  # half-written files of a killed process
                    stale.unlink(missing_ok=True)
                for line in point.lines:
                    rng.permutation(len(encoded["train"]))
                    decision = policy.replay(line["epoch"], line["metrics/val/accuracy"], line["metrics/val/loss"])
                    since_best = 0 if decision else since_best + 1
                policy.reconcile(max_epoch=point.epoch)
                model = model_plugin.load(point.checkpoint, spec, point.meta)
                first_epoch = point.epoch + 1
                epochs_run = point.epoch
                if policy.best:
                    hub.summary(metrics.best_names(policy.best.epoch, policy.best.accuracy, policy.best.loss, policy.best.checkpoint))
                hub.summary(metrics.top_epoch_names(e.to_json() for e in policy.top))
                console.say(f"resuming {run_id} after epoch {point.epoch} (best so far: epoch {policy.best.epoch if policy.best else '-'})")

            for epoch in range(first_epoch, config.epochs + 1):
                epoch_start = time.monotonic()
                train_split = encoded["train"].take(rng.permutation(len(encoded["train"])))
                train_loss, train_acc = train_one_epoch(model_plugin, model, train_split, config.batch_size, epoch, config.epochs, config.progress)
                if not math.isfinite(train_loss):
                    last = f"; the last good checkpoint is {policy.best_path}" if policy.best else ""
                    raise QAError(f"training loss became {train_loss} in epoch {epoch}: stopping{last}. Try a lower --lr.")
                probs = check_probabilities(model_plugin, model_plugin.evaluate(model, encoded["val"], config.batch_size), len(encoded["val"]))
                report = metrics.compute_for_split(encoded["val"], probs, config.threshold)
                # The metrics line is written before the checkpoint: a resume trusts the newest
                # checkpoint and drops any metrics line after it, so no epoch is missing or doubled.
                values = {
                    **metrics.train_metric_names(train_loss, train_acc),
                    **{f"metrics/train/{name}": value for name, value in model_plugin.model_metrics(model).items()},
                    **metrics.metric_names(report, "val"),
                }
                hub.metrics(values, step=epoch)
                meta = {**base_meta, "epoch": epoch, "metrics": {"val_accuracy": report.accuracy, "val_loss": report.loss, "train_loss": train_loss}}
                decision = policy.update(epoch, report.accuracy, report.loss, lambda path: model_plugin.save(model, path, spec, meta), meta)
                if decision.is_best and policy.best:
                    hub.summary(metrics.best_names(epoch, report.accuracy, report.loss, policy.best.checkpoint))
                if decision.top_changed:
                    hub.summary(metrics.top_epoch_names(e.to_json() for e in policy.top))
                rank = next((i for i, e in enumerate(policy.top, 1) if e.epoch == epoch), None)
                console.say(console.epoch_line(epoch, config.epochs, train_loss, train_acc, report, time.monotonic() - epoch_start, decision.is_best, rank))
                epochs_run = epoch
                since_best = 0 if decision.is_best else since_best + 1
                if config.patience and since_best >= config.patience:
                    console.say(f"early stopping: no better validation accuracy for {config.patience} epochs")
                    break

            # Score the best model, reloaded from disk exactly as a user would, on the test split.
            test_model, tested = model, f"epoch {epochs_run} (in memory)"
            if policy.best and policy.best_path.is_file():
                best_meta = read_meta(policy.best_path, policy.suffix)
                test_model = model_plugin.load(policy.best_path, spec, best_meta)
                tested = f"best epoch {policy.best.epoch} ({policy.best_path.name})"
            test_probs = check_probabilities(model_plugin, model_plugin.evaluate(test_model, encoded["test"], config.batch_size), len(encoded["test"]))
            test_report = metrics.compute_for_split(encoded["test"], test_probs, config.threshold)
            eval_files = write_eval(run_dir / "eval", test_report, data.splits["test"], test_probs, plots=True, lost=lost)
            test_values = metrics.metric_names(test_report, "test")
            hub.summary(test_values)
            if policy.best and policy.best_path.is_file():
                hub.artifact(policy.best_path, "model/best")
                hub.artifact(meta_path(policy.best_path, suffix), "model/best.meta")
            hub.artifact(vocab_path, "model/vocab")
            for path in eval_files:
                hub.artifact(path, f"eval/{path.name}")
            console.say(console.THIN_RULE)
            console.say(f"test split scored with the {tested}")
            console.say(console.results_block(test_report))
            summary.update(
                {
                    "epochs_run": epochs_run,
                    "best": policy.best.to_json() if policy.best else None,
                    "top_epochs": [e.to_json() for e in policy.top],
                    "test": {"accuracy": test_report.accuracy, "loss": test_report.loss, "count": test_report.overall.count, "scored_with": tested},
                    "test_metrics": test_values,
                }
            )
            status = "finished"
    except (_Signal, KeyboardInterrupt) as exc:
        status = "interrupted"
        signum = exc.signum if isinstance(exc, _Signal) else signal.SIGINT
        # What is on disk decides, not the loop counter: the signal may land between an epoch's
        # checkpoint and the end of its bookkeeping.
        last = policy.last_path
        resumable = last.is_file() and meta_path(last, suffix).is_file()
        saved = "its last finished epoch is saved" if resumable else "no epoch had finished, nothing to resume"
        message = f"interrupted ({signal.Signals(signum).name}) during epoch {epoch}; {saved}"
        if resumable:
            message += f". Resume with: qa run --resume {run_dir}"
        interrupted = RunInterrupted(message, int(signum))
    finally:
        summary["status"] = status
        summary["epochs_run"] = epochs_run
        summary["seconds"] = round(time.monotonic() - started, 3)
        if policy.fallback is not None:
            lost["checkpoints"] = f"could not all be written to the run directory; see {policy.fallback} (fallback)"
        if lost:
            summary["lost"] = lost
        hub.close(status, summary)
    if status == "interrupted":
        raise interrupted
    console.say(f"run directory: {run_dir}")
    return RunResult(run_id, run_dir, context, summary)
