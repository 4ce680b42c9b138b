"""Shared fixtures: the `qa` CLI as a real subprocess, tiny generated data, and throwaway plugin
distributions that Python finds through real entry-point metadata (a ``*.dist-info`` folder on
PYTHONPATH), so discovery is tested exactly as pip-installed plugins are found."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

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


class PluginSite:
    """A directory on PYTHONPATH holding plugin modules and their distribution metadata."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, dist: str, version: str, module: str, source: str, entry_point: str | None = None) -> None:
        (self.root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[qa]\n{entry_point or module} = {module}\n", encoding="utf-8")

    @property
    def env(self) -> dict[str, str]:
        existing = os.environ.get("PYTHONPATH")
        return {"PYTHONPATH": str(self.root) + (os.pathsep + existing if existing else "")}


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
