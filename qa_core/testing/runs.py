"""Real training runs for plugin tests, in process, and what they leave on disk."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .models import INTERRUPTER, Interrupter


@dataclass
class RunDirectory:
    """A run directory read back: config.json, metrics.jsonl, summary.json."""

    path: Path
    config: dict[str, Any]
    lines: list[dict[str, Any]]
    summary: dict[str, Any]

    @classmethod
    def read(cls, path: str | Path) -> "RunDirectory":
        path = Path(path)
        lines = [json.loads(line) for line in (path / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line]
        summary_file = path / "summary.json"
        summary = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.is_file() else {}
        return cls(path, json.loads((path / "config.json").read_text(encoding="utf-8")), lines, summary)

    @property
    def epochs(self) -> list[int]:
        return [line["epoch"] for line in self.lines]

    @property
    def status(self) -> str | None:
        return self.summary.get("status")

    def metric(self, name: str) -> dict[int, float]:
        """``{epoch: value}`` of one metric series from metrics.jsonl."""
        return {line["epoch"]: line[name] for line in self.lines if name in line}

    def assert_complete(self, epochs: int) -> None:
        """The local record nothing may cost: every epoch, the summary, checkpoints, eval files."""
        assert self.epochs == list(range(1, epochs + 1)), f"{self.path}: metrics.jsonl holds epochs {self.epochs}"
        assert self.status == "finished", f"{self.path}: status {self.status!r}"
        values = self.summary.get("values", {})
        assert values.get("best/epoch") in range(1, epochs + 1) and "metrics/test/accuracy" in values, f"{self.path}: summary.json lacks best/test values"
        assert any((self.path / "checkpoints").glob("best*")), f"{self.path}: no best checkpoint"
        assert (self.path / "eval").is_dir() and any((self.path / "eval").iterdir()), f"{self.path}: no eval files"


def assert_same_epochs(left: str | Path | RunDirectory, right: str | Path | RunDirectory, metrics: Sequence[str], *, atol: float) -> None:
    """Two runs trained alike: the same epochs in metrics.jsonl, and at every epoch each of
    ``metrics`` within ``atol`` (absolute). For parity tests: two replicas or ranks against one
    device, a resumed run against one that ran through. ``atol`` is the test's to justify (the
    float32 summation order it allows); a metric missing from either line fails, by name."""
    left, right = (run if isinstance(run, RunDirectory) else RunDirectory.read(run) for run in (left, right))
    assert left.epochs == right.epochs, f"{left.path} holds epochs {left.epochs}, {right.path} holds {right.epochs}"
    for a, b in zip(left.lines, right.lines):
        for name in metrics:
            assert name in a and name in b, f"epoch {a['epoch']}: {name} missing from {left.path if name not in a else right.path}"
            assert abs(a[name] - b[name]) <= atol, f"epoch {a['epoch']}: {name} {a[name]} against {b[name]} (atol {atol})"


@dataclass
class TrainingRun:
    """One in-process ``qa run`` (or resume): where it went, what it printed on stderr."""

    run_dir: Path
    stderr: str
    interrupted: bool
    result: Any = None  # qa_core.trainer.RunResult; None when interrupted
    record: RunDirectory = field(init=False)

    def __post_init__(self) -> None:
        self.record = RunDirectory.read(self.run_dir)

    def lines_about(self, tracker: str) -> list[str]:
        """stderr lines naming ``tracker`` (its own ``qa: NAME:`` lines and the core's about it)."""
        return [line for line in self.stderr.splitlines() if f"qa: {tracker}:" in line or f"tracker '{tracker}'" in line]

    def failures_of(self, tracker: str) -> list[str]:
        """The core's lines about ``tracker`` failing or timing out (it switched it off)."""
        return [line for line in self.stderr.splitlines() if f"qa: tracker '{tracker}'" in line]


def train_run(
    manager: Any,
    plugin: str,
    data_dir: Path,
    runs_dir: Path,
    *,
    params: Mapping[str, Any] | None = None,
    loggers: Sequence[str] = (),
    logger_params: Mapping[str, Mapping[str, str]] | None = None,
    epochs: int = 2,
    batch_size: int = 16,
    seed: int = 0,
    interrupt_after: int | None = None,
) -> TrainingRun:
    """Train through the core's own loop, as ``qa run`` does. ``interrupt_after=N`` stops the run
    the way Ctrl-C does once epoch N is on disk (its checkpoint written), ready for a resume."""
    from ..config import RunConfig

    loggers = list(loggers)
    if interrupt_after is not None:
        Interrupter.install(manager, after_epoch=interrupt_after)
        loggers.append(INTERRUPTER)
    config = RunConfig(
        plugin=plugin,
        data_dir=str(data_dir),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        params=dict(params or {}),
        loggers=loggers,
        logger_params={k: dict(v) for k, v in (logger_params or {}).items()},
        runs_dir=str(runs_dir),
        progress=False,
    )
    return _train(manager, config, None, Path(runs_dir))


def resume_run(manager: Any, run_dir: Path, epochs: int | None = None) -> TrainingRun:
    """``qa run --resume RUN_DIR [--epochs N]``, in process."""
    from ..config import RunConfig
    from ..trainer import config_from_run

    values = config_from_run(Path(run_dir))
    values["loggers"] = [name for name in values.get("loggers", []) if name != INTERRUPTER]
    values["logger_params"] = {k: v for k, v in values.get("logger_params", {}).items() if k != INTERRUPTER}
    if epochs is not None:
        values["epochs"] = epochs
    values["progress"] = False
    return _train(manager, RunConfig(**values), Path(run_dir), Path(run_dir).parent)


def _train(manager: Any, config: Any, resume: Path | None, runs_dir: Path) -> TrainingRun:
    from ..errors import RunInterrupted
    from ..trainer import train

    before = set(runs_dir.iterdir()) if runs_dir.is_dir() else set()
    stderr = io.StringIO()
    result, interrupted = None, False
    # Every warning the core or a tracker prints goes to sys.stderr (tqdm.write): keep it to read.
    with contextlib.redirect_stderr(stderr):
        try:
            result = train(config, pm=manager, resume=resume)
        except RunInterrupted:
            interrupted = True
    if resume is not None:
        run_dir = resume
    elif result is not None:
        run_dir = Path(result.run_dir)
    else:
        (run_dir,) = [p for p in set(runs_dir.iterdir()) - before if not p.name.startswith("_")]
    return TrainingRun(Path(run_dir), stderr.getvalue(), interrupted, result)
