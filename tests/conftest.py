"""Shared fixtures: the `qa` CLI as a real subprocess, tiny generated data, and the test plugins of
tests/fake_plugins/ (real modules), either registered in process or installed as throwaway
distributions that Python finds through real entry-point metadata (a ``*.dist-info`` folder on
PYTHONPATH), so discovery is tested exactly as pip-installed plugins are found."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

QA = [sys.executable, "-m", "qa_core.cli"]


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_qa(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("QA_TRACEBACK", None)
    proc = subprocess.run([*QA, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def qa():
    return run_qa


FAKE_PLUGINS = Path(__file__).resolve().parent / "fake_plugins"


class PluginSite:
    """A directory on PYTHONPATH holding plugin modules and their distribution metadata."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, dist: str, version: str, fake: str, entry_point: str | None = None, module: str | None = None) -> None:
        """Install ``tests/fake_plugins/<fake>.py`` as module ``module`` (default: ``fake``) of a
        distribution ``dist`` ``version`` whose ``qa`` entry point ``entry_point`` (default: the
        module name) points at it."""
        module = module or fake
        shutil.copyfile(FAKE_PLUGINS / f"{fake}.py", self.root / f"{module}.py")
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[qa]\n{entry_point or module} = {module}\n", encoding="utf-8")

    @property
    def env(self) -> dict[str, str]:
        existing = os.environ.get("PYTHONPATH")
        return {"PYTHONPATH": str(self.root) + (os.pathsep + existing if existing else "")}


def fake_plugin(name: str) -> ModuleType:
    """``tests/fake_plugins/<name>.py`` imported as a fresh module, to register in process."""
    spec = importlib.util.spec_from_file_location(f"qa_fake_{name}", FAKE_PLUGINS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fake_plugins():
    """``fake_plugins(name)``: see :func:`fake_plugin` (conftest is not importable under importlib mode)."""
    return fake_plugin


@pytest.fixture
def plugin_site(tmp_path: Path) -> PluginSite:
    return PluginSite(tmp_path / "site")


@pytest.fixture(scope="session")
def make_plugin_site(tmp_path_factory: pytest.TempPathFactory):
    """For module- or session-scoped fixtures: a new PluginSite per call."""
    return lambda: PluginSite(tmp_path_factory.mktemp("site") / "site")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated dataset (every category x noun-count cell), written once per session."""
    from qa_core.data.generator import generate_splits
    from qa_core.data.records import write_jsonl

    directory = tmp_path_factory.mktemp("tiny-data")
    for split, examples in generate_splits({"train": 360, "val": 90, "test": 90}, seed=1).items():
        write_jsonl(directory / f"{split}.jsonl", examples)
    return directory
