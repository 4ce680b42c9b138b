"""Shared pieces of the tensorboard tracker's tests: tiny data, the ``qa`` CLI as a subprocess,
and TensorBoard's own EventAccumulator for reading the event files back.

Everything is real: the numpy ``bow`` model plugin, tensorboardX writing, TensorBoard reading.
TensorBoard is told to use its TensorFlow stub (``tensorboard.compat.notf``, the marker module of
its no-TensorFlow build), so reading back neither needs nor imports TensorFlow, even where it is
installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

QA = [sys.executable, "-m", "qa_core.cli"]
EPOCHS = 3


@dataclass
class Completed:
    code: int
    out: str
    err: str


def run_qa(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Completed:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    proc = subprocess.run([*QA, *args], env=full_env, capture_output=True, text=True, timeout=timeout)
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def only_run_dir(runs_dir: Path) -> Path:
    found = [p for p in Path(runs_dir).iterdir() if p.is_dir() and not p.name.startswith("_")]
    assert len(found) == 1, found
    return found[0]


def metric_lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def accumulator(logdir: Path) -> Any:
    # Before TensorBoard first resolves its lazy `tf`: the stub instead of importing TensorFlow.
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # size_guidance 0: keep every point (the default samples scalars down to 10,000 per tag).
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def hparams_data(events: Any) -> dict[str, Any]:
    """The HParams plugin's records in a run: experiment, session start and end, parsed."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events.PluginTagToContent("hparams")
    return {tag.split("/")[-1]: plugin_data_pb2.HParamsPluginData.FromString(data) for tag, data in content.items()}


def text(events: Any, tag: str) -> list[tuple[int, str]]:
    return [(e.step, b"".join(e.tensor_proto.string_val).decode()) for e in events.Tensors(f"{tag}/text_summary")]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from qa_core.data.generator import generate_splits
    from qa_core.data.records import write_jsonl

    directory = tmp_path_factory.mktemp("data") / "tiny"
    for split, examples in generate_splits({"train": 270, "val": 90, "test": 90}, seed=3).items():
        write_jsonl(directory / f"{split}.jsonl", examples)
    return directory


@pytest.fixture(scope="session")
def helpers() -> SimpleNamespace:
    """The helpers above, for test modules (conftest is not importable under importlib mode)."""
    return SimpleNamespace(
        EPOCHS=EPOCHS, run_qa=run_qa, only_run_dir=only_run_dir, metric_lines=metric_lines,
        accumulator=accumulator, hparams_data=hparams_data, text=text,
    )  # fmt: skip
