"""The checkpoint policy and the crash-consistent writing and reading of checkpoint units.

Per epoch the policy decides which roles the epoch's model plays, by the monitored value
(``--monitor``, default the validation accuracy; ``mode`` says which way is better):

* **best**: the best value so far, ties broken by lower validation loss, then by the earlier
  epoch. Kept as ``best<suffix>``.
* **top-k** (default 3): the k best epochs by the same order, as
  ``<dataset>-<run_id>-e<NNN><suffix>``; a file that falls out of the top-k is deleted.
* **periodic** (``--checkpoint-every N``): every N-th epoch's file is kept for good.
* **last**: the latest epoch, as ``last<suffix>``.

A checkpoint is a *unit*: the model file and ``<stem>.meta.json`` (plugin and version, epoch,
metrics, hyperparameters, vocabulary hash, the model's size and sha256, and a digest of the meta
itself). The epoch is written once, as its own unit: model then meta to unique temporary names,
the model renamed into place, the meta renamed *last* (the commit). ``best`` and ``last`` are
then hard links to it (copies where links fail), moved the same way; epoch files no longer kept
are deleted only after that. A reader (:func:`read_meta`) refuses a model whose meta does not
match it, so a half-moved ``last`` is never taken for a good one, and :func:`committed_units`
lists what a resume may fall back to. A failed write (disk full, permission denied) warns, tries
a fallback directory, and never stops training.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import CheckpointError, PluginError
from .fsutil import commit, no_space_left, os_reason, temp_path

META_FORMAT = 1


def meta_path(path: Path, suffix: str) -> Path:
    name = path.name[: -len(suffix)] if path.name.endswith(suffix) else path.stem
    return path.with_name(f"{name}.meta.json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def meta_digest(meta: dict[str, Any]) -> str:
    """sha256 of a meta's own content (without its ``digest``): an edited meta no longer matches."""
    body = {k: v for k, v in meta.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=2, default=str)


def write_checkpoint(save: Callable[[Path], Any], path: Path, suffix: str, meta: dict[str, Any]) -> Path:
    """Write one checkpoint unit: ``save(tmp_path)`` writes the model, the core writes its meta.

    Both go to temporary names first; then the model is renamed into place and the meta last. The
    meta's rename is the commit: it names the model's size and sha256, so a reader can always
    tell a committed unit from a model whose meta never arrived (or a meta of an older model)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    final_meta = meta_path(path, suffix)
    tmp = temp_path(path, suffix)
    tmp.unlink()  # the plugin creates the file (some writers refuse to overwrite one)
    tmp_meta = temp_path(final_meta)
    try:
        own = save(tmp)
        if not tmp.exists():
            raise CheckpointError(f"{path}: the plugin's save hook wrote no file")
        # A plugin's own facts live under "plugin_meta", so they can never replace the core's keys.
        plugin_meta = {"plugin_meta": dict(own)} if isinstance(own, Mapping) else {}
        full_meta = {**meta, **plugin_meta, "file": path.name, "bytes": tmp.stat().st_size, "sha256": file_sha256(tmp)}
        full_meta["digest"] = meta_digest(full_meta)
        _write_meta(tmp_meta, full_meta)
        commit(tmp, path)
        commit(tmp_meta, final_meta)
    finally:
        for leftover in (tmp, tmp_meta):
            if leftover.exists():
                leftover.unlink()
    return path


def link_checkpoint(source: Path, target: Path, suffix: str) -> Path:
    """Make ``target`` (and its meta) the same unit as ``source``: hard links, else copies.

    The model is renamed into place first and the meta last, as in :func:`write_checkpoint`: in
    between, ``target`` is a model beside the meta of another one, which :func:`read_meta` refuses
    (size and sha256), so a reader never takes a half-moved ``best`` or ``last`` for a good one."""
    pairs = ((source, target), (meta_path(source, suffix), meta_path(target, suffix)))
    staged = []
    try:
        for src, dst in pairs:
            if dst.exists() and os.path.samefile(src, dst):
                continue  # rename() of two links to one file does nothing and would leave tmp behind
            tmp = temp_path(dst)
            tmp.unlink()  # a fresh unique name: os.link needs it free
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copy2(src, tmp)
            staged.append((tmp, dst))
        for tmp, dst in staged:
            os.replace(tmp, dst)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()
    return target


def read_meta(path: Path, suffix: str | None = None, strict: bool = False) -> dict[str, Any]:
    """Read and check the meta of a checkpoint file: present, parsable, size and sha256 match.
    ``strict`` (a resume) also requires the meta's own digest and an integer epoch, so an edited
    meta is refused even when the model file is intact."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    candidates = [meta_path(path, suffix)] if suffix else [path.with_name(path.name.split(".", 1)[0] + ".meta.json")]
    meta_file = next((c for c in candidates if c.is_file()), None)
    if meta_file is None:
        raise CheckpointError(f"{path}: no {candidates[0].name} beside it; cannot tell what it holds")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{meta_file}: unreadable checkpoint meta ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT or "plugin" not in meta:
        raise CheckpointError(f"{meta_file}: not a qa checkpoint meta (format {META_FORMAT} expected)")
    size = path.stat().st_size
    if "bytes" in meta and size != meta["bytes"]:
        raise CheckpointError(f"{path}: truncated or changed ({size} bytes, meta says {meta['bytes']})")
    if "sha256" in meta and file_sha256(path) != meta["sha256"]:
        raise CheckpointError(f"{path}: contents do not match the sha256 in its meta (corrupt or replaced)")
    if strict:
        if meta.get("digest") != meta_digest(meta) or "sha256" not in meta:
            raise CheckpointError(f"{meta_file}: edited after it was written (its digest does not match)")
        if not isinstance(meta.get("epoch"), int) or isinstance(meta.get("epoch"), bool) or meta["epoch"] < 1:
            raise CheckpointError(f"{meta_file}: epoch {meta.get('epoch')!r} is not an epoch number")
    return meta


def committed_units(directory: Path, suffix: str) -> list[tuple[int, Path, dict[str, Any]]]:
    """Every consistent checkpoint unit in ``directory`` as (epoch, model file, meta), newest
    epoch first, ``last`` before an epoch file of the same epoch. Damaged units are left out."""
    units = []
    for path in directory.glob(f"*{suffix}") if directory.is_dir() else ():
        if path.name.startswith("."):
            continue
        try:
            meta = read_meta(path, suffix, strict=True)
        except CheckpointError:
            continue
        units.append((meta["epoch"], path, meta))
    units.sort(key=lambda unit: (-unit[0], unit[1].name != f"last{suffix}", unit[1].name))
    return units


@dataclass
class Entry:
    epoch: int
    accuracy: float
    loss: float
    checkpoint: str = ""
    #: The monitored value (``--monitor``); the validation accuracy unless told otherwise.
    value: float | None = None

    def __post_init__(self) -> None:
        if self.value is None:
            self.value = self.accuracy

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "accuracy": self.accuracy, "loss": self.loss, "checkpoint": self.checkpoint, "value": self.value}


@dataclass
class Decision:
    is_best: bool
    in_top: bool
    top_changed: bool
    saved: Path | None


_EPOCH_FILE = r"-e(\d+){suffix}$"


@dataclass
class CheckpointPolicy:
    directory: Path
    dataset: str
    run_id: str
    suffix: str
    top_k: int = 3
    every: int = 0
    warn: Callable[[str], None] = print
    best: Entry | None = None
    top: list[Entry] = field(default_factory=list)
    fallback: Path | None = None
    #: "max" or "min": which direction of the monitored value is better.
    mode: str = "max"

    def key(self, entry: Entry) -> tuple[float, float, int]:
        """Better first: the monitored value, then the lower validation loss, then the earlier epoch."""
        value = float(entry.value)  # type: ignore[arg-type]
        return (-value if self.mode == "max" else value, entry.loss, entry.epoch)

    def epoch_path(self, epoch: int) -> Path:
        return self.directory / f"{self.dataset}-{self.run_id}-e{epoch:03d}{self.suffix}"

    @property
    def best_path(self) -> Path:
        return self.directory / f"best{self.suffix}"

    @property
    def last_path(self) -> Path:
        return self.directory / f"last{self.suffix}"

    def update(
        self, epoch: int, accuracy: float, loss: float, save: Callable[[Path], Any], meta: dict[str, Any], value: float | None = None
    ) -> Decision:
        """Apply the policy to a finished epoch; ``save(tmp_path)`` writes the model.

        The epoch is written once, as its own unit; ``best`` (when it is one) and then ``last``
        are linked to it; then every epoch file the policy no longer keeps is deleted (this
        epoch's own, when ``last`` is its only role). At every moment some committed unit holds
        the newest finished epoch: a kill -9 anywhere in here loses nothing a resume needs."""
        entry = Entry(epoch, accuracy, loss, value=value)
        new_top, in_top, is_best, periodic = self._rank(entry)
        written = self._save(self.epoch_path(epoch), save, meta)
        kept = written if (written and (in_top or is_best or periodic)) else None
        entry.checkpoint = kept.name if kept else ""
        if is_best:
            self.best = entry
            if written:
                self._link(written, self.best_path)
        if written:
            self._link(written, self.last_path)
        top_changed = [e.epoch for e in new_top] != [e.epoch for e in self.top]
        self.top = new_top
        self._prune(max_epoch=epoch, directories=[written.parent] if written else [])
        return Decision(is_best, in_top, top_changed, kept)

    def _rank(self, entry: Entry) -> tuple[list[Entry], bool, bool, bool]:
        new_top = sorted([*self.top, entry], key=self.key)[: self.top_k]
        is_best = self.best is None or self.key(entry) < self.key(self.best)
        periodic = self.every > 0 and entry.epoch % self.every == 0
        return new_top, entry in new_top, is_best, periodic

    def replay(self, epoch: int, accuracy: float, loss: float, value: float | None = None) -> bool:
        """Re-take the decision of a finished epoch without writing anything (for a resume).
        Returns whether the epoch was a new best."""
        entry = Entry(epoch, accuracy, loss, value=value)
        new_top, in_top, is_best, periodic = self._rank(entry)
        if in_top or is_best or periodic:
            entry.checkpoint = self.epoch_path(epoch).name
        if is_best:
            self.best = entry
        self.top = new_top
        return is_best

    def reconcile(self, max_epoch: int) -> None:
        """After a replay: delete epoch files the policy would not keep (or from an epoch after
        ``max_epoch`` that never finished), and point best at the replayed best."""
        self._prune(max_epoch, [self.directory])
        if self.best and self.best.checkpoint and (self.directory / self.best.checkpoint).is_file():
            self._link(self.directory / self.best.checkpoint, self.best_path)

    def _prune(self, max_epoch: int, directories: list[Path]) -> None:
        """Delete the epoch files (and orphan metas) the policy no longer keeps. The meta goes
        first: a model without its meta is an uncommitted unit, never mistaken for a good one."""
        keep = {e.checkpoint for e in self.top} | ({self.best.checkpoint} if self.best else set())
        pattern = re.compile(_EPOCH_FILE.format(suffix=re.escape(self.suffix)))
        meta_pattern = re.compile(r"-e(\d+)\.meta\.json$")
        for directory in directories:
            for path in sorted(directory.glob(f"*-e*")):
                match = pattern.search(path.name) or meta_pattern.search(path.name)
                if not match or path.name.startswith("."):
                    continue
                epoch = int(match.group(1))
                model = path if path.name.endswith(self.suffix) else path.with_name(path.name[: -len(".meta.json")] + self.suffix)
                periodic = self.every > 0 and epoch % self.every == 0 and epoch <= max_epoch
                orphan_meta = model is not path and not model.exists()
                if epoch > max_epoch or orphan_meta or (model.name not in keep and not periodic):
                    meta_path(model, self.suffix).unlink(missing_ok=True)
                    model.unlink(missing_ok=True)

    def _save(self, path: Path, save: Callable[[Path], Any], meta: dict[str, Any]) -> Path | None:
        try:
            return write_checkpoint(save, path, self.suffix, meta)
        except (OSError, PluginError) as exc:
            if isinstance(exc, PluginError) and not isinstance(exc.error, OSError):
                if not no_space_left(path.parent):
                    raise
                exc = OSError(errno.ENOSPC, f"No space left on device; the plugin said: {os_reason(exc.error)}")
            if self.fallback is None:
                self.fallback = Path(tempfile.gettempdir()) / "qa-fallback-checkpoints" / self.run_id
            self.warn(f"qa: could not write checkpoint {path} ({os_reason(exc)}); trying {self.fallback}")
            try:
                return write_checkpoint(save, self.fallback / path.name, self.suffix, meta)
            except (OSError, PluginError) as again:
                self.warn(f"qa: fallback checkpoint write failed too ({os_reason(again)}); training goes on")
                return None

    def _link(self, source: Path, target: Path) -> None:
        if source.parent != target.parent:
            target = source.parent / target.name  # keep best/last beside the fallback file
        try:
            link_checkpoint(source, target, self.suffix)
        except OSError as exc:
            self.warn(f"qa: could not update {target} ({os_reason(exc)}); training goes on")

    def state(self) -> dict[str, Any]:
        return {"best": self.best.to_json() if self.best else None, "top": [e.to_json() for e in self.top]}
