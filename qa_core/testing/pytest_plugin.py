"""The pytest plugin of :mod:`qa_core.testing` (entry point ``pytest11: qa``): fixtures for plugin
tests, available in every test session where qa-core is installed.

    qa_tiny_data      a directory of tiny generated train/val/test.jsonl (``qa run --data`` takes it)
    qa_plugin_manager the plugin manager ``qa`` itself uses: built-ins plus installed entry points
    qa_read_run       ``qa_read_run(run_dir)`` -> :class:`~qa_core.testing.RunDirectory`
    qa_train          ``qa_train(plugin, runs_dir, **options)`` -> :class:`~qa_core.testing.TrainingRun`,
                      a real in-process ``qa run`` on the tiny data
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from .data import write_tiny_data
from .runs import RunDirectory, TrainingRun, train_run


@pytest.fixture(scope="session")
def qa_tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("qa-tiny-data"))


@pytest.fixture(scope="session")
def qa_plugin_manager() -> Any:
    from ..plugins import load_plugins

    return load_plugins()


@pytest.fixture(scope="session")
def qa_read_run() -> Callable[[Path], RunDirectory]:
    return RunDirectory.read


@pytest.fixture
def qa_train(qa_plugin_manager: Any, qa_tiny_data: Path) -> Callable[..., TrainingRun]:
    def run(plugin: str, runs_dir: Path, **options: Any) -> TrainingRun:
        return train_run(qa_plugin_manager, plugin, qa_tiny_data, runs_dir, **options)

    return run
