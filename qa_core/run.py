"""Phase one of a run: ``prepare(config) -> Run``.

    check the options -> (resume: lock the run directory, pick the newest consistent checkpoint)
    -> load + validate data -> vocabulary (train only) -> encode once to numpy
    -> the run's identity -> run directory (locked) -> spec, checkpoint policy, observers
    -> trackers started -> (resume: replay the finished epochs)

The run's identity facts (:class:`Identity`) are stated once; the checkpoint meta, the trackers'
params, the run context (config.json) and the summary are all derived from it. A resume is only
another way to prepare: it takes the identity, the vocabulary and the model from the run
directory and replays metrics.jsonl into the observers; :func:`qa_core.loop.fit` never knows.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, console, distributed, metrics, provenance
from .callbacks import Callbacks
from .checkpoints import META_FORMAT, CheckpointPolicy, link_checkpoint
from .config import RunConfig, check_encoding_fits
from .data.records import Example
from .data.tokenizer import Vocabulary, encode
from .errors import ConfigError
from .inputs import Data, category_order, check_plugin_options, file_digests, load_data, resolve_max_len, resolve_model_params
from .observers import EpochLogs, Monitor, Observer, default_observers, replay_observers
from .plugins import ModelPlugin, PluginManager
from .resume import ResumePoint, check_data_unchanged, check_replay_line, finished_state, read_json_object, read_resume_point, rewrite_lines
from .runlock import RunLock
from .signals import StopFlag
from .tracking.hub import TrackerHub
from .types import EncodedSplit, ModelSpec, RunContext

#: ``--fast-dev-run``: batches of each split that go through every hook.
FAST_DEV_BATCHES = 2


@dataclass(frozen=True)
class Identity:
    """What this run is, stated once."""

    run_id: str
    run_dir: Path
    plugin: str
    plugin_version: str
    framework: str | None
    dataset: str
    seed: int
    max_len: int
    vocab_size: int
    vocab_sha256: str
    params: dict[str, Any]
    category_names: tuple[str, ...]
    sizes: dict[str, int]
    epochs: int
    batch_size: int
    #: qa, Python, platform, framework and plugin versions, the git commit (provenance.py).
    provenance: dict[str, Any] = field(default_factory=dict)
    qa_version: str = __version__

    def checkpoint_meta(self, epoch: int, logs: dict[str, Any], monitor: str) -> dict[str, Any]:
        return {
            "format": META_FORMAT,
            "plugin": self.plugin,
            "plugin_version": self.plugin_version,
            "framework": self.framework,
            "qa_version": self.qa_version,
            "run_id": self.run_id,
            "dataset": self.dataset,
            "vocab_sha256": self.vocab_sha256,
            "vocab_size": self.vocab_size,
            "max_len": self.max_len,
            "seed": self.seed,
            "params": self.params,
            "category_names": list(self.category_names),
            "epoch": epoch,
            "metrics": {
                "val_accuracy": logs["metrics/val/accuracy"],
                "val_loss": logs["metrics/val/loss"],
                "train_loss": logs["metrics/train/loss"],
                "monitor": {monitor: logs.get(monitor)},
            },
        }

    def tracker_params(self) -> dict[str, Any]:
        return {
            **{f"model/{k}": v for k, v in self.params.items()},
            "plugin": self.plugin,
            "plugin_version": self.plugin_version,
            "framework": self.framework or "",
            "dataset": self.dataset,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "max_len": self.max_len,
            "vocab_size": self.vocab_size,
            **{f"{split}_size": size for split, size in self.sizes.items()},
            "qa_version": self.qa_version,
            **provenance.flat(self.provenance),
        }

    def summary_head(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "plugin_version": self.plugin_version, "framework": self.framework, "dataset": self.dataset}

    def run_config(self, config: RunConfig, data: Data, digests: dict[str, str], resumed_after: int | None) -> dict[str, Any]:
        """config.json's content (besides the context's own fields): the options and the facts."""
        public = config.public()
        public.update(
            {
                "qa_version": self.qa_version,
                "data_sources": data.sources,
                "data_files": digests,
                "max_len": self.max_len,
                "vocab_size": self.vocab_size,
                "vocab_sha256": self.vocab_sha256,
                "provenance": self.provenance,
            }
        )
        if resumed_after is not None:
            public["resumed_after_epoch"] = resumed_after
        return public


@dataclass
class Run:
    """A prepared run: everything fit() and finish() need, and what they decided so far."""

    config: RunConfig
    identity: Identity
    context: RunContext
    model_plugin: ModelPlugin
    splits: dict[str, list[Example]]
    encoded: dict[str, EncodedSplit]
    vocab_path: Path
    spec: ModelSpec
    policy: CheckpointPolicy
    monitor: Monitor
    observers: list[Observer]
    callbacks: Callbacks
    hub: TrackerHub
    rng: np.random.Generator
    lock: RunLock | None
    point: ResumePoint | None = None
    first_epoch: int = 1
    epochs_run: int = 0
    model: Any = None
    stop_flag: StopFlag = field(default_factory=StopFlag)
    stopped: dict[str, Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    #: --fast-dev-run: the throwaway directory to delete at the end.
    scratch: Path | None = None
    tracker_versions: list[tuple[str, str]] = field(default_factory=list)
    #: Files a full disk kept out of the run directory (eval/, checkpoints) -> summary.json "lost".
    lost: dict[str, str] = field(default_factory=dict)
    #: The epoch being trained right now (None between epochs), for the interrupt message.
    in_epoch: int | None = None
    #: This process's place in a data-parallel run (distributed.py); rank 0 alone when not.
    rank: distributed.Rank = distributed.SINGLE

    @property
    def run_dir(self) -> Path:
        return self.identity.run_dir


def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    return np.random.default_rng(seed)


def new_run_id(plugin: str) -> str:
    """Sortable by time (to the millisecond), unique by a random suffix."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"{int(now * 1000) % 1000:03d}"
    return f"{stamp}-{plugin}-{os.urandom(2).hex()}"


# -------------------------------------------------------------------------------------------------
# prepare
# -------------------------------------------------------------------------------------------------


def prepare(
    config: RunConfig, pm: PluginManager, resume: Path | None = None, allow_changed_data: bool = False, stop_flag: StopFlag | None = None
) -> Run:
    """Check, load, encode, lock, start the trackers; for a resume, also replay. Raises
    QAError subclasses for the user's mistakes before anything in a run directory changes."""
    config.check()
    if resume is not None and config.fast_dev_run:
        raise ConfigError("--fast-dev-run: not with --resume (a fast dev run keeps nothing to resume)")
    _absolute_data_paths(config)
    model_plugin, params, options = check_plugins(config, pm)
    rank = _check_rank(config, model_plugin)
    suffix = model_plugin.info.checkpoint_suffix or ""
    lock = RunLock.acquire(resume) if resume is not None and rank.is_main else None
    scratch = None
    try:
        point = _resume_point(resume, suffix) if resume is not None else None
        if point is not None and (done := _already_done(resume, point, config)):  # type: ignore[arg-type]
            raise NothingToDo(done, _stored_context(model_plugin, resume, point), point.summary)  # type: ignore[arg-type]
        if config.fast_dev_run or not rank.is_main:  # ranks > 0 keep their bookkeeping out of the run directory
            scratch = Path(tempfile.mkdtemp(prefix="qa-fast-dev-run-")) if rank.is_main else distributed.rank_scratch(rank)
            config.runs_dir = str(scratch)
        if config.fast_dev_run:
            config.epochs = 1
        data = load_data(_data_config(config, point), Path(config.runs_dir))
        digests = file_digests(data.files)
        if point is not None and not allow_changed_data:
            check_data_unchanged(resume, point.stored, digests)  # type: ignore[arg-type]
        run = _assemble(config, pm, model_plugin, params, options, data, digests, point, resume, scratch, rank)
        run.stop_flag = stop_flag or run.stop_flag
        run.lock = lock or RunLock.acquire(run.run_dir, option="qa run")
        if point is not None:
            replay(run)
    except BaseException:
        if lock is not None:
            lock.release()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    _start(run, lock)
    return run


def _check_rank(config: RunConfig, model_plugin: ModelPlugin) -> distributed.Rank:
    """The launcher's rank; a data-parallel run needs a plugin that can take part in one.
    Ranks > 0 print nothing and draw no progress bar (rank 0 speaks for the job)."""
    rank = distributed.from_env()
    if not rank.distributed:
        return rank
    info = model_plugin.info
    if not info.distributed or "qa_all_reduce" not in model_plugin.hooks:
        raise ConfigError(f"--plugin {model_plugin.name}: does not support data-parallel training (WORLD_SIZE={rank.world_size}); run it as one process")
    distributed.per_rank_batch(config.batch_size, rank)
    if not rank.is_main:
        console.mute()
        config.progress = False
    return rank


def _absolute_data_paths(config: RunConfig) -> None:
    """Data paths as absolute paths in config.json, so a resume started in another working
    directory reads the same files (and never generates the default dataset somewhere new)."""
    for key in ("data_dir", "train", "val", "test"):
        value = getattr(config, key)
        if isinstance(value, str) and value:
            setattr(config, key, str(Path(value).absolute()))


def check_plugins(config: RunConfig, pm: PluginManager) -> tuple[ModelPlugin, dict[str, Any], dict[str, dict[str, Any]]]:
    """The model plugin, its resolved params, and the trackers' and callbacks' options
    (typed, defaults filled: what ``run.params_for(name)`` hands each of them)."""
    from .tracking.options import resolve_tracker_options

    model_plugin = pm.model(config.plugin)
    params = resolve_model_params(model_plugin, config)
    options = resolve_tracker_options(pm, config.loggers, config.logger_params)
    for name in set(config.callback_params) - set(config.callbacks):
        raise ConfigError(f"--callback-param {name}.*: callback '{name}' is not active (add --callback {name})")
    for name in config.callbacks:
        given = config.callback_params.get(name, {})
        options[name] = check_plugin_options("--callback-param", name, pm.callback(name).info, given) or dict(given)
    return model_plugin, params, options


def _resume_point(run_dir: Path, suffix: str) -> ResumePoint:
    point = read_resume_point(run_dir, suffix)
    point.stored = read_json_object(run_dir / "config.json", "config.json")
    summary_file = run_dir / "summary.json"
    if summary_file.is_file():
        try:
            point.summary = read_json_object(summary_file, "summary.json")
        except ConfigError:
            point.summary = {}  # a summary cut short: the run did not finish
    return point


def _already_done(run_dir: Path, point: ResumePoint, config: RunConfig) -> str | None:
    """The line to print when a resume would change nothing: the run ended of its own accord
    (all epochs, early stopping, a callback) and ``--epochs`` does not extend it."""
    state = finished_state(point.summary, point.stored)
    if state is None:
        return None
    how, epochs_run = state
    planned = point.stored.get("epochs") if isinstance(point.stored.get("epochs"), int) else epochs_run
    if how == "finished" and config.epochs > epochs_run:
        return None
    if how == "stopped" and config.epochs > planned:
        return None
    stopped = point.summary.get("stopped") or {}
    if how == "finished":
        return f"run {run_dir.name} already finished all {epochs_run} epochs; nothing to do (give --epochs N, more than {epochs_run}, to train further)"
    reason = f" ({stopped.get('by')}: {stopped.get('reason')})" if stopped else ""
    return (
        f"run {run_dir.name} stopped early after epoch {epochs_run}{reason}; nothing to do "
        f"(give --epochs N, more than the {planned} it was planned for, to train further)"
    )


class NothingToDo(Exception):
    """A resume of a run that already ended: ``line`` says why; nothing was touched."""

    def __init__(self, line: str, context: RunContext, summary: dict[str, Any]):
        super().__init__(line)
        self.line, self.context, self.summary = line, context, summary


def _stored_context(model_plugin: ModelPlugin, run_dir: Path, point: ResumePoint) -> RunContext:
    stored = point.stored
    return RunContext(
        str(stored.get("run_id") or run_dir.name), run_dir, model_plugin.name, model_plugin.version,
        model_plugin.info.framework, str(stored.get("dataset", "")), stored,
    )


def _data_config(config: RunConfig, point: ResumePoint | None) -> RunConfig:
    """The data a run reads. A resume reads the files the run started with, by their absolute
    paths, from whatever directory it is started in (the default dataset is not regenerated)."""
    if point is None:
        return config
    sources = point.stored.get("data_sources") or {}
    if not (config.data_dir or config.train) and isinstance(sources.get("data_dir"), str):
        from dataclasses import replace

        return replace(config, data_dir=sources["data_dir"])
    return config


def _encode(
    data: Data, vocab: Vocabulary, max_len: int, categories: tuple[str, ...], config: RunConfig, truncation: dict[str, dict[str, int]]
) -> dict[str, EncodedSplit]:
    """Every split encoded once; ``truncation`` gets, per split that max_len cut, the records per
    cell that lost a supporting sentence (config.json's ``lost_support``)."""
    encoded: dict[str, EncodedSplit] = {}
    for split in ("train", "val", "test"):
        encoded[split], stats = encode(data.splits[split], vocab, max_len, split, categories)
        if stats.truncated:
            truncation[split] = stats.lost_by_cell
            console.warn(console.truncation_line(split, stats, max_len))
    if config.fast_dev_run:  # a couple of batches of each split through every hook
        rows = FAST_DEV_BATCHES * config.batch_size
        encoded = {split: e.take(np.arange(min(rows, len(e)))) for split, e in encoded.items()}
        data.splits["test"] = data.splits["test"][:rows]
    return encoded


def _assemble(
    config: RunConfig, pm: PluginManager, model_plugin: ModelPlugin, params: dict[str, Any], options: dict[str, dict[str, Any]], data: Data,
    digests: dict[str, str], point: ResumePoint | None, resume: Path | None, scratch: Path | None, rank: distributed.Rank = distributed.SINGLE,
) -> Run:
    categories = category_order(data.splits)
    if point is not None:
        vocab = Vocabulary.load(resume / "vocab.json")  # type: ignore[operator]
        categories = tuple(point.meta.get("category_names", categories))
    else:
        vocab = Vocabulary.build(data.splits["train"])
    max_len = resolve_max_len(config, params, data.splits)
    check_encoding_fits("--max-len", max_len, sum(len(examples) for examples in data.splits.values()))
    if "max_len" in params:  # the model, meta.json and config.json get the resolved length, not 0
        params["max_len"] = max_len
    truncation: dict[str, dict[str, int]] = {}
    encoded = _encode(data, vocab, max_len, categories, config, truncation)
    _check_monitor(config, encoded["val"], model_plugin)
    run_dir, run_id = _run_dir(config, model_plugin, point, resume if rank.is_main else None, vocab)
    identity = Identity(
        run_id, run_dir, model_plugin.name, model_plugin.version, model_plugin.info.framework, data.dataset, config.seed,
        max_len, len(vocab), vocab.sha256, params, categories, {s: len(e) for s, e in encoded.items()}, config.epochs, config.batch_size,
        provenance.for_run(pm, model_plugin.info.framework),
    )
    resumed_after = point.epoch if point is not None else None
    context = RunContext(
        run_id=run_id, run_dir=run_dir, plugin=identity.plugin, plugin_version=identity.plugin_version, framework=identity.framework,
        dataset=identity.dataset, config=identity.run_config(config, data, digests, resumed_after), tags=tuple(config.tags),
        logger_params=options, resumed_after_epoch=resumed_after,
    )
    if point is not None:  # the first start's provenance stays the run's; each resume is appended
        context.config["provenance"] = provenance.across_resume(run_dir, identity.provenance)
    if rank.distributed:  # --batch-size stays the global batch; this says how it was split
        context.config["world_size"] = rank.world_size
    if truncation:  # per split and cell, the records that lost a supporting sentence
        context.config["lost_support"] = truncation
    steps = len(distributed.shard_sizes(len(encoded["train"]), config.batch_size, rank))
    if config.limit_train_batches or config.fast_dev_run:
        steps = min(steps, config.limit_train_batches or FAST_DEV_BATCHES)
    spec = ModelSpec(
        model_plugin.name, params, len(vocab), max_len, config.seed, vocab_hash=vocab.sha256, vocab=vocab.tokens,
        epochs=config.epochs, batch_size=distributed.per_rank_batch(config.batch_size, rank), steps_per_epoch=steps,
    )
    policy = CheckpointPolicy(
        run_dir / "checkpoints", data.dataset, run_id, model_plugin.info.checkpoint_suffix or "", config.top_k,
        config.checkpoint_every, warn=console.warn, mode=config.mode or "max",
    )
    trackers = ["local"] if config.fast_dev_run or not rank.is_main else ["local", *config.loggers]
    hub = TrackerHub(pm, trackers, context, warn=console.warn)
    return Run(
        config=config, identity=identity, context=context, model_plugin=model_plugin, splits=data.splits, encoded=encoded,
        vocab_path=run_dir / "vocab.json", spec=spec, policy=policy, monitor=Monitor(config.monitor, config.mode or "max"),
        observers=default_observers(config.patience, config.min_delta), callbacks=Callbacks(pm, config.callbacks),
        hub=hub, rng=seed_everything(config.seed), lock=None, point=point, summary=identity.summary_head(), scratch=scratch,
        tracker_versions=[(name, pm.records[name].version or "?") for name in hub.names], rank=rank,
    )


def core_metric_names(val: EncodedSplit, threshold: float) -> set[str]:
    """The metric names the core itself logs each epoch (the validation names from a dry report:
    the same categories and cells the real one will have)."""
    report = metrics.compute_for_split(val, np.full(len(val), 0.5, dtype=np.float32), threshold)
    return {"metrics/train/loss", "metrics/train/accuracy", *metrics.metric_names(report, "val")}


def _check_monitor(config: RunConfig, val: EncodedSplit, model_plugin: ModelPlugin) -> None:
    """--monitor names a metric the run will log, checked before the run directory exists. A
    name only a plugin can add (a callback, the model's ``qa_model_metrics``) is checked at the
    end of epoch 1 instead."""
    import difflib

    name, known = config.monitor, core_metric_names(val, config.threshold)
    if name in known or config.callbacks or (name.startswith("metrics/train/") and "qa_model_metrics" in model_plugin.hooks):
        return
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else " (see a run's metrics.jsonl for the names)"
    raise ConfigError(f"--monitor {name}: not a metric this run logs{hint}")


def _run_dir(config: RunConfig, model_plugin: ModelPlugin, point: ResumePoint | None, resume: Path | None, vocab: Vocabulary) -> tuple[Path, str]:
    """A resumed run keeps its run id (checkpoint names carry it), wherever its folder now is."""
    if point is not None and resume is not None:
        return resume, str(point.stored.get("run_id") or resume.name)
    # A rank > 0 resuming gets resume=None: its scratch copy keeps the run's id.
    run_id = str(point.stored.get("run_id")) if point is not None and point.stored.get("run_id") else new_run_id(model_plugin.name)
    run_dir = Path(config.runs_dir) / run_id
    (run_dir / "checkpoints").mkdir(parents=True)
    vocab.save(run_dir / "vocab.json")
    return run_dir, run_id


def _start(run: Run, lock: RunLock | None) -> None:
    """Say what runs, start the trackers; a resume also re-sends its best and top-k."""
    if lock is not None and lock.stale_note():
        console.warn(lock.stale_note())  # type: ignore[arg-type]
    plugin, encoded = run.model_plugin, run.encoded
    console.say(console.plugins_line((plugin.name, plugin.version), run.tracker_versions))
    console.say(
        f"run {run.identity.run_id}: {len(encoded['train'])} train / {len(encoded['val'])} val / {len(encoded['test'])} test records, "
        f"vocabulary {run.identity.vocab_size}, max_len {run.identity.max_len} -> {run.run_dir}"
    )
    if run.config.fast_dev_run:
        console.say(f"fast dev run: {FAST_DEV_BATCHES} batches of train, val and test through every hook; nothing is kept (extra trackers are not called)")
    run.hub.run_start()
    run.hub.params(run.identity.tracker_params())
    if run.point is not None:
        policy = run.policy
        if policy.best:
            best = policy.best
            run.hub.summary(metrics.best_names(best.epoch, best.accuracy, best.loss, best.checkpoint))
        run.hub.summary(metrics.top_epoch_names(e.to_json() for e in policy.top))
        best_epoch = policy.best.epoch if policy.best else "-"
        console.say(f"resuming {run.identity.run_id} after epoch {run.point.epoch} (best so far: epoch {best_epoch})")


def replay(run: Run) -> None:
    """Replay what the finished epochs decided: the shuffles (so the next epoch sees the order it
    would have seen), the checkpoint policy and early stopping. Then the files: lines, steps and
    checkpoints of an epoch that never finished are dropped; a damaged ``last`` is restored from
    the unit chosen. Every check comes before the first file is touched."""
    point, policy = run.point, run.policy
    assert point is not None
    names = ("metrics/val/accuracy", "metrics/val/loss", run.monitor.name)
    for line in point.lines:
        check_replay_line(line, names, run.run_dir)
    for line in point.lines:
        run.rng.permutation(len(run.encoded["train"]))
        replay_observers(run.observers, run, EpochLogs(line["epoch"], {k: v for k, v in line.items() if k != "epoch"}))
    run.first_epoch, run.epochs_run = point.epoch + 1, point.epoch
    if point.note:
        console.warn(point.note)
    rewrite_lines(run.run_dir / "metrics.jsonl", point.lines)
    _drop_steps_after(run.run_dir / "steps.jsonl", point.epoch * run.spec.steps_per_epoch)
    for stale in run.run_dir.rglob(".*.tmp*"):  # half-written files of a killed process
        stale.unlink(missing_ok=True)
    if point.checkpoint != policy.last_path:
        try:
            link_checkpoint(point.checkpoint, policy.last_path, policy.suffix)
        except OSError as exc:
            raise ConfigError(f"--resume {run.run_dir}: cannot restore {policy.last_path.name} ({exc.strerror or exc})") from None
    policy.reconcile(max_epoch=point.epoch)


def _drop_steps_after(path: Path, max_step: int) -> None:
    """steps.jsonl lines after ``max_step`` (an epoch that never finished) go, like metrics lines."""
    if not path.is_file():
        return
    import json

    kept = []
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("step"), int) and line["step"] <= max_step:
            kept.append(line)
    rewrite_lines(path, kept)


def start_model(run: Run) -> Any:
    """A fresh model, or the resumed one from ``last`` (restored by the replay)."""
    if run.point is None:
        return run.model_plugin.build(run.spec)
    from .checkpoints import read_meta

    last = run.policy.last_path
    return run.model_plugin.load(last, run.spec, read_meta(last, run.policy.suffix))


def discard_scratch(run: Run) -> None:
    """--fast-dev-run keeps nothing: its throwaway runs dir goes, whatever happened."""
    if run.scratch is not None:
        shutil.rmtree(run.scratch, ignore_errors=True)
