"""sweep.json: the record of a sweep, and what a rerun resumes from.

    <sweep dir>/sweep.json           trial id -> options -> run directory -> status (this file)
    <sweep dir>/trials/<id>/run.toml the trial's run options: `qa run --config` reproduces it
    <sweep dir>/trials/<id>/log.txt  everything the trial printed, every attempt appended
    <sweep dir>/trials/<id>/<run_id>/ the ordinary run directory (`qa report`, `qa compare` read it)
    <sweep dir>/results.csv|json     the end table

Only the process that drives the sweep writes this file (atomically), so workers never race on it.
A trial keeps its id for good: a rerun matches trials by their options, so editing the axes adds
trials (new ids) without renumbering the finished ones.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..tracking.local import write_json
from .spec import SweepSpec, Trial, canonical

FORMAT = "qa-sweep/1"
#: Trial states. A rerun skips ``finished`` and ``stopped`` (ended early by a scheduler, its test
#: split scored); ``failed`` only with --retry-failed; the rest run (``interrupted`` resumes).
STATES = ("pending", "running", "finished", "stopped", "failed", "interrupted")
DONE = ("finished", "stopped")


@dataclass
class TrialRecord:
    id: str
    options: dict[str, Any]
    group: str
    status: str = "pending"
    reason: str | None = None
    run_dir: str | None = None
    attempts: int = 0
    seconds: float | None = None

    @property
    def key(self) -> str:
        return canonical(self.options)


@dataclass
class Manifest:
    path: Path
    name: str
    sweep_file: str
    fingerprint: str
    trials: list[TrialRecord] = field(default_factory=list)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    axes: list[str] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def trial_dir(self, record: TrialRecord) -> Path:
        return self.directory / "trials" / record.id

    def save(self) -> None:
        data = {
            "format": FORMAT,
            "name": self.name,
            "sweep_file": self.sweep_file,
            "fingerprint": self.fingerprint,
            "created": self.created,
            "axes": self.axes,
            "trials": [asdict(t) for t in self.trials],
        }
        write_json(self.path, data)

    def counts(self) -> dict[str, int]:
        out = {state: 0 for state in STATES}
        for trial in self.trials:
            out[trial.status] += 1
        return {k: v for k, v in out.items() if v}


def open_manifest(spec: SweepSpec) -> tuple[Manifest, list[tuple[TrialRecord, Trial]]]:
    """The sweep's manifest (created, or read back and matched to the file's trials) and the
    (record, trial) pairs of this file's trials in order."""
    path = spec.directory / "sweep.json"
    trials = spec.trials()
    if path.is_file():
        manifest = _read(path)
        if manifest.fingerprint != spec.fingerprint:
            raise ConfigError(
                f"{spec.path}: base: the base options differ from the ones {path} was started with; "
                f"give the sweep a new [sweep] name (or remove {spec.directory})"
            )
    else:
        manifest = Manifest(path, spec.name, str(spec.path.resolve()), spec.fingerprint)
    manifest.axes = list(spec.axes)
    by_key = {record.key: record for record in manifest.trials}
    groups = {canonical({k: v for k, v in r.options.items() if k != "seed"}): r.group for r in manifest.trials}
    pairs = []
    for trial in trials:
        record = by_key.get(trial.key)
        if record is None:
            group = groups.setdefault(trial.group_key, f"g{len(set(groups.values())):03d}")
            record = TrialRecord(f"t{len(manifest.trials):03d}", trial.options, group)
            manifest.trials.append(record)
            by_key[trial.key] = record
        pairs.append((record, trial))
    spec.directory.mkdir(parents=True, exist_ok=True)
    manifest.save()
    return manifest, pairs


def _read(path: Path) -> Manifest:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        trials = [TrialRecord(**t) for t in data["trials"]]
        return Manifest(path, data["name"], data["sweep_file"], data["fingerprint"], trials, data.get("created", ""), data.get("axes", []))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a sweep manifest this qa can read ({exc})") from None
