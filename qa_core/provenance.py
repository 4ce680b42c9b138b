"""Where a run came from: the command line, the code's git state, the machine and the versions.

``collect()`` returns the ``provenance`` block of config.json, which every tracker also receives
(``RunContext.config``); ``flat()`` turns it into ``provenance/...`` and ``versions/...`` params,
so a tracker's run table can be filtered by commit or framework version. Nothing here may fail a
run: git missing, no repository, a hung git, an unknown distribution all become ``None``.

Framework versions are read without importing the framework: from the module if the model plugin
has already imported it, else from the installed distribution's metadata.
"""

from __future__ import annotations

import platform
import shlex
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

from .config import REDACTED, looks_secret, redact_url

#: git gets this long (seconds) per call; a network file system must not hold up a run.
GIT_TIMEOUT = 5.0


def redact_argv(argv: Iterable[str]) -> list[str]:
    """The command line with secrets replaced: ``KEY=VALUE`` items whose key looks secret, the
    value after a ``--flag`` whose name looks secret, and passwords inside URLs."""
    out: list[str] = []
    hide_next = False
    for item in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        key, sep, _ = item.partition("=")
        if sep and looks_secret(key):
            out.append(f"{key}={REDACTED}")
            continue
        if item.startswith("--") and not sep and looks_secret(item):
            hide_next = True
        out.append(redact_url(item))
    return out


def git_state(directory: Path | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty", "root"}`` of the repository holding ``directory`` (default: the
    working directory), or None outside a repository or without git. Untracked files do not
    count as dirty: a run's own output (runs/) is usually untracked."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=GIT_TIMEOUT)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status), "root": git("rev-parse", "--show-toplevel")}


def distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def module_version(module: str) -> str | None:
    """The version of a top-level module, never importing it: its ``__version__`` if it is
    already imported, else the metadata of the distribution that installs it (``tensorflow``
    may come from ``tensorflow-cpu``)."""
    loaded = sys.modules.get(module)
    version = getattr(loaded, "__version__", None)
    if isinstance(version, str):
        return version
    for dist in metadata.packages_distributions().get(module, []):
        found = distribution_version(dist)
        if found:
            return found
    return distribution_version(module)


def collect(plugins: Mapping[str, str | None], frameworks: Iterable[str] = (), argv: list[str] | None = None) -> dict[str, Any]:
    """The provenance block. ``plugins``: distribution (or plugin) name -> version of every
    loaded plugin; ``frameworks``: top-level module names of the model's framework (torch,
    tensorflow, keras ...)."""
    from . import __version__

    argv = list(sys.argv if argv is None else argv)
    if argv:  # `python -m qa_core.cli run ...` is `qa run ...`
        argv[0] = "qa" if Path(argv[0]).name in ("cli.py", "__main__.py") else Path(argv[0]).name
    versions: dict[str, str | None] = {"qa-core": __version__, "numpy": module_version("numpy")}
    versions.update({name: version for name, version in plugins.items()})
    for module in frameworks:
        if module and module not in versions:
            versions[module] = module_version(module)
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),  # local time, as the run id's stamp
        "command": shlex.join(redact_argv(argv)),
        "cwd": str(Path.cwd()),
        "git": git_state(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "versions": versions,
    }


def flat(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """``provenance/<key>`` and ``versions/<name>`` as flat params for trackers."""
    git = provenance.get("git") or {}
    out: dict[str, Any] = {
        "provenance/command": provenance.get("command"),
        "provenance/git_commit": git.get("commit", ""),
        "provenance/git_dirty": git.get("dirty", ""),
        "provenance/python": provenance.get("python"),
        "provenance/platform": provenance.get("platform"),
        "provenance/host": provenance.get("host"),
    }
    out.update({f"versions/{name}": version or "" for name, version in (provenance.get("versions") or {}).items()})
    return out


#: The framework name a model plugin declares -> the modules whose versions matter for it.
FRAMEWORK_MODULES = {"tensorflow": ("tensorflow", "keras"), "keras": ("keras", "tensorflow"), "torch": ("torch",), "jax": ("jax", "jaxlib")}


def framework_modules(framework: str | None) -> tuple[str, ...]:
    if not framework:
        return ()
    return FRAMEWORK_MODULES.get(framework, (framework,))


def for_run(manager: Any, framework: str | None) -> dict[str, Any]:
    """The provenance block of a run: every plugin ``manager`` loaded, and the model's framework."""
    plugins = {
        (record.distribution or record.name): record.version
        for record in manager.loaded()
        if not record.builtin
    }
    return collect(plugins, framework_modules(framework))


def across_resume(run_dir: Path, current: Mapping[str, Any]) -> dict[str, Any]:
    """config.json's provenance for a resumed run: the first start's block stays (its command line
    is the run's recipe; a resume's is only ``qa run --resume``), each resume's own block is
    appended under ``resumes``. Unreadable or absent earlier records leave ``current`` alone."""
    import json

    try:
        earlier = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8")).get("provenance")
    except (OSError, ValueError, AttributeError):
        earlier = None
    if not isinstance(earlier, dict) or not earlier:
        return dict(current)
    history = [entry for entry in earlier.get("resumes", []) if isinstance(entry, dict)]
    first = {key: value for key, value in earlier.items() if key != "resumes"}
    return {**first, "resumes": [*history, dict(current)]}
