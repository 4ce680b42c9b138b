"""The checkpoint policy and the safe writing and reading of checkpoint files.

Per epoch the policy decides which roles the epoch's model plays:

* **best**: highest validation accuracy so far, ties broken by lower loss, then by the earlier
  epoch. Kept as ``best<suffix>``.
* **top-k** (default 3): the k best epochs by the same order, as
  ``<dataset>-<run_id>-e<NNN><suffix>``; a file that falls out of the top-k is deleted.
* **periodic** (``--checkpoint-every N``): every N-th epoch's file is kept for good.
* **last**: the latest epoch, as ``last<suffix>``.

The model is written once per epoch at most; ``best`` and ``last`` are hard links to the epoch file
(a copy where links are not possible). Every model file has ``<stem>.meta.json`` beside it naming
what it holds: plugin and version, epoch, metrics, hyperparameters, vocabulary hash, file size and
sha256. Writes go to a temporary name and are renamed into place; a failed write (disk full,
permission denied) warns, tries a fallback directory, and never stops training.
"""

from __future__ import annotations

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
from .fsutil import atomic_write, os_reason

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


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(meta, indent=2, default=str))


def write_checkpoint(save: Callable[[Path], Any], path: Path, suffix: str, meta: dict[str, Any]) -> Path:
    """Have ``save(tmp_path)`` write the model, then rename it to ``path`` and write its meta."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name[: -len(suffix)]}.tmp{suffix}")
    try:
        own = save(tmp)
        if not tmp.exists():
            raise CheckpointError(f"{path}: the plugin's save hook wrote no file")
        # A plugin's own facts live under "plugin_meta", so they can never replace the core's keys.
        plugin_meta = {"plugin_meta": dict(own)} if isinstance(own, Mapping) else {}
        full_meta = {**meta, **plugin_meta, "file": path.name, "bytes": tmp.stat().st_size, "sha256": file_sha256(tmp)}
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _write_meta(meta_path(path, suffix), full_meta)
    return path


def link_checkpoint(source: Path, target: Path, suffix: str) -> Path:
    """Make ``target`` (and its meta) the same file as ``source``: a hard link, else a copy."""
    for src, dst in ((source, target), (meta_path(source, suffix), meta_path(target, suffix))):
        if dst.exists() and os.path.samefile(src, dst):
            continue  # rename() of two links to one file does nothing and would leave tmp behind
        tmp = dst.with_name(f".{dst.name}.tmp")
        if tmp.exists():
            tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    return target


def read_meta(path: Path, suffix: str | None = None) -> dict[str, Any]:
    """Read and check the meta of a checkpoint file: present, parsable, size and sha256 match."""
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
    return meta


@dataclass
class Entry:
    epoch: int
    accuracy: float
    loss: float
    checkpoint: str = ""

    def key(self) -> tuple[float, float, int]:
        return (-self.accuracy, self.loss, self.epoch)

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "accuracy": self.accuracy, "loss": self.loss, "checkpoint": self.checkpoint}


@dataclass
class Decision:
    is_best: bool
    in_top: bool
    top_changed: bool
    saved: Path | None


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

    def epoch_path(self, epoch: int) -> Path:
        return self.directory / f"{self.dataset}-{self.run_id}-e{epoch:03d}{self.suffix}"

    @property
    def best_path(self) -> Path:
        return self.directory / f"best{self.suffix}"

    @property
    def last_path(self) -> Path:
        return self.directory / f"last{self.suffix}"

    def update(self, epoch: int, accuracy: float, loss: float, save: Callable[[Path], Any], meta: dict[str, Any]) -> Decision:
        """Apply the policy to a finished epoch; ``save(tmp_path)`` writes the model."""
        entry = Entry(epoch, accuracy, loss)
        new_top, in_top, is_best, periodic = self._rank(entry)

        saved = None
        if in_top or is_best or periodic:
            saved = self._save(self.epoch_path(epoch), save, meta)
            entry.checkpoint = saved.name if saved else ""
        if is_best:
            self.best = entry
            if saved:
                self._link(saved, self.best_path)
        if saved:
            self._link(saved, self.last_path)
        else:
            self._save(self.last_path, save, meta)

        dropped = [old for old in self.top if old not in new_top]
        top_changed = [e.epoch for e in new_top] != [e.epoch for e in self.top]
        self.top = new_top
        for old in dropped:
            if old.checkpoint and not (self.every > 0 and old.epoch % self.every == 0):
                for stale in (self.directory / old.checkpoint, meta_path(self.directory / old.checkpoint, self.suffix)):
                    stale.unlink(missing_ok=True)
        return Decision(is_best, in_top, top_changed, saved)

    def _rank(self, entry: Entry) -> tuple[list[Entry], bool, bool, bool]:
        new_top = sorted([*self.top, entry], key=Entry.key)[: self.top_k]
        is_best = self.best is None or entry.key() < self.best.key()
        periodic = self.every > 0 and entry.epoch % self.every == 0
        return new_top, entry in new_top, is_best, periodic

    def replay(self, epoch: int, accuracy: float, loss: float) -> bool:
        """Re-take the decision of a finished epoch without writing anything (for a resume).
        Returns whether the epoch was a new best."""
        entry = Entry(epoch, accuracy, loss)
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
        keep = {e.checkpoint for e in self.top} | ({self.best.checkpoint} if self.best else set())
        pattern = re.compile(rf"-e(\d+){re.escape(self.suffix)}$")
        for path in self.directory.glob(f"*{self.suffix}"):
            match = pattern.search(path.name)
            if not match:
                continue
            epoch = int(match.group(1))
            periodic = self.every > 0 and epoch % self.every == 0 and epoch <= max_epoch
            if epoch > max_epoch or (path.name not in keep and not periodic):
                path.unlink(missing_ok=True)
                meta_path(path, self.suffix).unlink(missing_ok=True)
        if self.best and (self.directory / self.best.checkpoint).is_file():
            self._link(self.directory / self.best.checkpoint, self.best_path)

    def _save(self, path: Path, save: Callable[[Path], Any], meta: dict[str, Any]) -> Path | None:
        try:
            return write_checkpoint(save, path, self.suffix, meta)
        except (OSError, PluginError) as exc:
            if isinstance(exc, PluginError) and not isinstance(exc.error, OSError):
                raise
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
            self.warn(f"qa: could not update {target} ({exc.strerror or exc}); training goes on")

    def state(self) -> dict[str, Any]:
        return {"best": self.best.to_json() if self.best else None, "top": [e.to_json() for e in self.top]}
