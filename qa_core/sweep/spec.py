"""The sweep file, checked once, and its expansion into trials.

    [sweep]                      # all optional
    name = "bow-lr"              # the sweep directory is <dir>/<name> [default: the file's stem]
    dir = "sweeps"               # [default: sweeps]
    method = "grid"              # grid (every combination) or random (``samples`` draws)
    samples = 8                  # random only: configurations drawn (each crossed with every seed)
    seed = 0                     # random only: the sampler's seed, so a rerun draws the same trials
    workers = 2                  # default for --workers
    scheduler = "asha"           # Ray only: stop weak trials early on validation accuracy
    grace_period = 1             # ASHA: epochs every trial runs before it may be stopped
    reduction_factor = 2         # ASHA: keep the best 1/reduction_factor at each rung

    [base]                       # ordinary run options, the keys of a run.toml
    data_dir = "data"
    epochs = 2
    [base.params]
    l2 = 1e-4

    [axes]                       # run options or params.NAME, each a list of values
    plugin = ["bow"]
    seed = [0, 1, 2]
    "params.lr" = [0.01, 0.1]    # or: [axes.params] lr = [0.01, 0.1]
    # random only: {uniform = [lo, hi]}, {loguniform = [lo, hi]}, {randint = [lo, hi]} (inclusive)

``seed`` is never sampled: with ``method = "random"`` every drawn configuration runs once per seed,
so seed replicates always form groups (trials that differ only by seed).

Every problem is one ``file: key: problem`` line (a ConfigError, exit 2) before anything runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..config import CONFIG_KEYS, KEY_ALIASES, RunConfig
from ..errors import ConfigError

SECTIONS = ("sweep", "base", "axes")
SWEEP_KEYS = {
    "name": str,
    "dir": str,
    "method": str,
    "samples": int,
    "seed": int,
    "workers": int,
    "scheduler": str,
    "grace_period": int,
    "reduction_factor": int,
}
DISTRIBUTIONS = ("uniform", "loguniform", "randint")
#: Options a sweep owns: each trial's run directory goes under the sweep directory.
RESERVED = {"runs_dir": "the sweep puts every run under its own directory", "progress": "trials run without progress bars"}
#: Options holding paths: made absolute, so a trial's run.toml works from any directory.
PATH_KEYS = ("data_dir", "train", "val", "test")


@dataclass(frozen=True)
class Trial:
    """One point of the sweep: ``options`` are the axis values (``params.lr`` style keys),
    ``values`` the complete run options (RunConfig keyword arguments)."""

    options: dict[str, Any]
    values: dict[str, Any]

    @property
    def key(self) -> str:
        """Identity of a trial across reruns: its options, canonically."""
        return canonical(self.options)

    @property
    def group_key(self) -> str:
        """Trials that differ only by seed share this."""
        return canonical({k: v for k, v in self.options.items() if k != "seed"})


@dataclass
class SweepSpec:
    path: Path
    name: str
    directory: Path
    method: str
    samples: int
    sampler_seed: int
    workers: int | None
    scheduler: str
    grace_period: int
    reduction_factor: int
    base: dict[str, Any]
    axes: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Changes when the base options change: a rerun must not mix two different sweeps."""
        return hashlib.sha256(canonical(self.base).encode()).hexdigest()[:16]

    def trials(self) -> list[Trial]:
        points = self._points_grid() if self.method == "grid" else self._points_random()
        out = []
        seeds = self.axes.get("seed", [None])
        for point in points:
            for seed in seeds:
                options = dict(point) if seed is None else {**point, "seed": seed}
                out.append(Trial(options, merge(self.base, options)))
        return out

    def _points_grid(self) -> list[dict[str, Any]]:
        names = [name for name in self.axes if name != "seed"]
        return [dict(zip(names, combo)) for combo in itertools.product(*(self.axes[n] for n in names))]

    def _points_random(self) -> list[dict[str, Any]]:
        import numpy as np

        rng = np.random.default_rng(self.sampler_seed)
        names = [name for name in self.axes if name != "seed"]
        return [{name: draw(rng, self.axes[name]) for name in names} for _ in range(self.samples)]


def canonical(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def merge(base: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """Base run options with one trial's axis values on top (``params.lr`` -> params["lr"])."""
    values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in options.items():
        if key.startswith("params."):
            values.setdefault("params", {})[key.split(".", 1)[1]] = value
        else:
            values[key] = value
    return values


def draw(rng: Any, axis: Any) -> Any:
    if isinstance(axis, list):
        value = axis[int(rng.integers(len(axis)))]
        return value
    kind, (low, high) = next(iter(axis.items()))
    if kind == "uniform":
        return float(rng.uniform(low, high))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return int(rng.integers(low, high + 1))


# -------------------------------------------------------------------------------------------------
# loading and checking
# -------------------------------------------------------------------------------------------------


def load_sweep(path: Path) -> SweepSpec:
    raw = _read(path)
    problem = _Problems(path)
    for section in raw:
        if section not in SECTIONS:
            problem(section, f"unknown section (known: {', '.join(SECTIONS)})")
    settings = raw.get("sweep", {})
    problem.table("sweep", settings)
    for key, value in settings.items():
        if key not in SWEEP_KEYS:
            problem(f"sweep.{key}", f"unknown key (known: {', '.join(SWEEP_KEYS)})")
        expected = SWEEP_KEYS[key]
        if not isinstance(value, expected) or isinstance(value, bool):
            problem(f"sweep.{key}", f"expected {'a string' if expected is str else 'an integer'}, got {value!r}")
    method = settings.get("method", "grid")
    if method not in ("grid", "random"):
        problem("sweep.method", f"expected grid or random, got {method!r}")
    samples = settings.get("samples", 0)
    if method == "random" and samples < 1:
        problem("sweep.samples", "random sampling needs samples = N (a positive integer)")
    if method == "grid" and "samples" in settings:
        problem("sweep.samples", 'only for method = "random"')
    workers = settings.get("workers")
    if workers is not None and workers < 1:
        problem("sweep.workers", f"expected a positive integer, got {workers}")
    scheduler = settings.get("scheduler", "none")
    if scheduler not in ("none", "asha"):
        problem("sweep.scheduler", f"expected none or asha, got {scheduler!r}")
    if settings.get("grace_period", 1) < 1:
        problem("sweep.grace_period", "expected a positive integer (epochs)")
    if settings.get("reduction_factor", 2) < 2:
        problem("sweep.reduction_factor", "expected an integer of at least 2")
    base = _base(problem, raw.get("base", {}), path)
    axes = _axes(problem, raw.get("axes", {}), method, path)
    spec = SweepSpec(
        path=path,
        name=settings.get("name") or path.stem,
        directory=Path(settings.get("dir", "sweeps")) / (settings.get("name") or path.stem),
        method=method,
        samples=samples,
        sampler_seed=settings.get("seed", 0),
        workers=workers,
        scheduler=scheduler,
        grace_period=settings.get("grace_period", 1),
        reduction_factor=settings.get("reduction_factor", 2),
        base=base,
        axes=axes,
    )
    _check_trials(problem, spec)
    return spec


def _read(path: Path) -> dict[str, Any]:
    # load_toml checks run-config keys; the sweep file has sections of its own, so read it raw
    # through the same error paths (missing file, not UTF-8, invalid TOML) with a neutral key set.
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: sweep file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: sweep file is a directory") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read sweep file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: sweep: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: sweep: invalid TOML ({exc})") from None


class _Problems:
    """Raises the first problem as ``file: key: problem``."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, key: str, problem: str) -> None:
        raise ConfigError(f"{self.path}: {key}: {problem}")

    def table(self, key: str, value: Any) -> None:
        if not isinstance(value, dict):
            self(key, "expected a table")


def _base(problem: _Problems, base: Any, path: Path) -> dict[str, Any]:
    problem.table("base", base)
    out: dict[str, Any] = {}
    for key, value in base.items():
        name = key.replace("-", "_")
        name = KEY_ALIASES.get(name, name)  # the run.toml spellings: data = "dir", format = ...
        if name not in CONFIG_KEYS:
            problem(f"base.{key}", f"unknown run option (known: {', '.join(sorted(CONFIG_KEYS - set(RESERVED)))})")
        if name in RESERVED:
            problem(f"base.{key}", f"not a sweep option: {RESERVED[name]}")
        if name == "params":
            problem.table("base.params", value)
        out[name] = _absolute(name, value)
    return out


def _axes(problem: _Problems, axes: Any, method: str, path: Path) -> dict[str, Any]:
    problem.table("axes", axes)
    flat: dict[str, Any] = {}
    for key, value in axes.items():
        if key == "params" and isinstance(value, dict):  # [axes.params] lr = [...]
            flat.update({f"params.{k}": v for k, v in value.items()})
        else:
            name = key.replace("-", "_")
            flat[key if key.startswith("params.") else KEY_ALIASES.get(name, name)] = value
    for key, value in flat.items():
        option = key.split(".", 1)[0]
        if option not in CONFIG_KEYS or (option == "params") != key.startswith("params.") or key == "params.":
            problem(f"axes.{key}", "unknown run option (an axis is a run option such as seed or plugin, or params.NAME)")
        if option in RESERVED:
            problem(f"axes.{key}", f"not a sweep option: {RESERVED[option]}")
        if isinstance(value, dict):
            _distribution(problem, key, value, method)
        elif not isinstance(value, list) or not value:
            problem(f"axes.{key}", f"expected a non-empty list of values, got {value!r}")
        else:
            flat[key] = [_absolute(option, v) for v in value]
    if "seed" in flat and not isinstance(flat["seed"], list):
        problem("axes.seed", "seeds are replicates: give a list, never a distribution")
    return flat


def _distribution(problem: _Problems, key: str, value: dict[str, Any], method: str) -> None:
    if method != "random":
        problem(f"axes.{key}", 'a distribution needs method = "random" in [sweep]; a grid takes a list')
    if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        problem(f"axes.{key}", f"expected one of {', '.join(DISTRIBUTIONS)} = [low, high], got {value!r}")
    kind, bounds = next(iter(value.items()))
    numeric = isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
    if not numeric or not bounds[0] < bounds[1]:
        problem(f"axes.{key}.{kind}", f"expected [low, high] with low < high, got {bounds!r}")
    if kind == "loguniform" and bounds[0] <= 0:
        problem(f"axes.{key}.{kind}", f"bounds must be positive, got {bounds!r}")
    if kind == "randint" and not all(isinstance(b, int) for b in bounds):
        problem(f"axes.{key}.{kind}", f"expected integer bounds, got {bounds!r}")


def _absolute(option: str, value: Any) -> Any:
    if option in PATH_KEYS and isinstance(value, str):
        return str(Path(value).expanduser().resolve())
    return value


def _check_trials(problem: _Problems, spec: SweepSpec) -> None:
    """Every trial's core options pass RunConfig.check (plugin parameters are checked by the
    trial itself: a bad one fails that trial, not the sweep). A problem names its key."""
    for trial in spec.trials():
        for key in PATH_KEYS:
            if isinstance(trial.values.get(key), str) and not Path(trial.values[key]).exists():
                problem(f"axes.{key}" if key in spec.axes else f"base.{key}", f"{trial.values[key]}: no such file or directory")
        values = {**trial.values, "runs_dir": str(spec.directory)}
        try:
            RunConfig(**values).check()
        except TypeError as exc:  # a value of the wrong shape for a dataclass field
            problem("base", str(exc))
        except ConfigError as exc:
            message = str(exc)
            option, _, detail = message.partition(": ")
            name = option.lstrip("-").replace("-", "_")
            where = f"axes.{name}" if name in spec.axes else f"base.{name}" if name in spec.base else name
            problem(where, detail or message)
