"""Shared pieces of the neptune tracker's tests: a tiny dataset, tiny model settings, and a
helper that runs ``qa_core.trainer.train`` in-process and reads back what the run left.

No test reaches a host outside this machine: Neptune runs in debug mode (in memory), offline mode
(files under tmp_path), or against a closed loopback port.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from qa_core.config import RunConfig
from qa_core.plugins import PluginManager, load_plugins
from qa_core.testing import write_tiny_data
from qa_core.trainer import RunResult, train

EPOCHS = 2
#: Small enough for a shared 2-core CPU: a few seconds per plugin.
TINY_PARAMS: dict[str, dict[str, str]] = {
    "bow": {},
    "transformer": {"d_model": "16", "heads": "2", "layers": "1", "ff_dim": "32", "max_len": "48", "dropout": "0.0", "threads": "1"},
    "lstm": {"embedding_dim": "8", "units": "8", "bidirectional": "false", "max_len": "48", "dropout": "0.0"},
}


def closed_port_token(api_key: str = "qa-neptune-test-key-7f3a") -> str:
    """A well-formed Neptune token whose server is a closed port on this machine."""
    address = "http://127.0.0.1:9"
    return base64.b64encode(json.dumps({"api_address": address, "api_url": address, "api_key": api_key}).encode()).decode()


@dataclass
class Run:
    result: RunResult
    lines: list[dict[str, Any]]  # metrics.jsonl
    summary: dict[str, Any]  # summary.json
    config: dict[str, Any]  # config.json

    @property
    def session(self) -> Any:
        return self.result.context.stash["neptune"]


def read_run(result: RunResult) -> Run:
    run_dir = Path(result.run_dir)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((run_dir / "summary.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    return Run(result, lines, summary, config)


def assert_run_dir_complete(run: Run, epochs: int = EPOCHS) -> None:
    """The local record a failing tracker must never cost: every epoch, the summary, the files."""
    run_dir = Path(run.result.run_dir)
    assert [line["epoch"] for line in run.lines] == list(range(1, epochs + 1))
    assert run.summary["status"] == "finished"
    assert run.summary["values"]["best/epoch"] in range(1, epochs + 1)
    assert "metrics/test/accuracy" in run.summary["values"]
    assert list((run_dir / "checkpoints").glob("best*"))
    assert (run_dir / "vocab.json").is_file()
    assert (run_dir / "eval" / "metrics.json").is_file()


def files_under(*roots: Path) -> list[Path]:
    return [path for root in roots if root.exists() for path in root.rglob("*") if path.is_file()]


@pytest.fixture(scope="session")
def helpers() -> SimpleNamespace:
    """The helpers above, for test modules (conftest is not importable under importlib mode)."""
    return SimpleNamespace(
        EPOCHS=EPOCHS,
        closed_port_token=closed_port_token,
        read_run=read_run,
        assert_run_dir_complete=assert_run_dir_complete,
        files_under=files_under,
    )


@pytest.fixture(scope="session")
def plugin_manager() -> PluginManager:
    return load_plugins()


@pytest.fixture(scope="session")
def model_names(plugin_manager: PluginManager) -> list[str]:
    return [name for name in TINY_PARAMS if name in {r.name for r in plugin_manager.loaded("model")}]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("data"), {"train": 160, "val": 48, "test": 48}, seed=0, noun_counts=None)


@pytest.fixture(scope="session")
def run_qa(data_dir: Path, plugin_manager: PluginManager):
    """``run_qa(plugin, runs_dir, neptune_options, **config)`` -> :class:`Run`."""

    def run(plugin: str, runs_dir: Path, neptune: dict[str, str] | None, pm: PluginManager | None = None, **config: Any) -> Run:
        if plugin not in {r.name for r in (pm or plugin_manager).loaded("model")}:
            pytest.skip(f"model plugin {plugin!r} is not installed")
        loggers = config.pop("loggers", ["neptune"] if neptune is not None else [])
        result = train(
            RunConfig(
                plugin=plugin,
                data_dir=str(data_dir),
                epochs=config.pop("epochs", EPOCHS),
                batch_size=32,
                seed=0,
                params=dict(TINY_PARAMS.get(plugin, {})),
                loggers=loggers,
                logger_params={"neptune": dict(neptune or {})},
                runs_dir=str(runs_dir),
                progress=False,
                **config,
            ),
            pm=pm or plugin_manager,
        )
        return read_run(result)

    return run
