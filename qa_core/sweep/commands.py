"""`qa sweep SWEEP.toml`: registered on the `qa` app by qa_core.cli."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer


def register(app: typer.Typer) -> None:
    from ..cli_support import TracebackOption, cli_errors

    @app.command("sweep")
    @cli_errors
    def sweep(
        file: Path = typer.Argument(..., help="Sweep file: [base] run options, [axes] to vary, [sweep] settings."),
        backend: str = typer.Option("local", "--backend", help="local (processes on this machine) or ray (a Ray cluster; pip install 'qa-core[ray]')."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Trials at once [default: [sweep] workers, else the usable cores]."),
        address: Optional[str] = typer.Option(None, "--address", help="Ray only: 'auto' or a head address HOST:PORT [default: a local Ray instance on 127.0.0.1]."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Run failed trials again (by default a rerun skips them)."),
        traceback: bool = TracebackOption,
    ) -> None:
        """Run many trials (grid or random over plugins, params, seeds, data), resumably; one results table."""
        code = run_sweep(file, backend, workers, address, retry_failed)
        if code:
            raise typer.Exit(code)


def run_sweep(file: Path, backend: str = "local", workers: int | None = None, address: str | None = None, retry_failed: bool = False) -> int:
    """The whole command: 0 when every trial finished (or was stopped by the scheduler), 1 when
    some failed; RunInterrupted (exit 130) when stopped; ConfigError for a bad file or option."""
    from ..errors import ConfigError, RunInterrupted
    from .manifest import DONE, open_manifest
    from .results import table, write_results
    from .spec import load_sweep
    from .trial import threads_per_trial, usable_cpus

    if backend not in ("local", "ray"):
        raise ConfigError(f"--backend: expected local or ray, got {backend!r}")
    if address is not None and backend != "ray":
        raise ConfigError("--address: only with --backend ray")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers: expected a positive integer, got {workers}")
    spec = load_sweep(file)
    if spec.scheduler != "none" and backend != "ray":
        raise ConfigError(f"{file}: sweep.scheduler: {spec.scheduler} needs --backend ray")
    models, threaded = installed_models()
    check_plugins(spec, models)
    manifest, pairs = open_manifest(spec)
    todo = [(r, t) for r, t in pairs if r.status not in DONE and (retry_failed or r.status != "failed")]
    count = workers or spec.workers or min(usable_cpus(), max(1, len(todo)))
    threads = threads_per_trial(count)
    settle(spec, [t for _, t in todo], threaded, threads)
    print(
        f"sweep {spec.name}: {len(pairs)} trial(s), {len(todo)} to run ({len(pairs) - len(todo)} already done), "
        f"{backend} backend, {count} worker(s) x {threads} thread(s) -> {spec.directory}",
        flush=True,
    )
    if backend == "local":
        from .local import run_local

        complete = run_local(manifest, todo, count, threads, _say)
    else:
        from .ray_backend import run_ray

        complete = run_ray(spec, manifest, todo, count, threads, address, _say)
    rows, groups, csv_path, json_path = write_results(manifest)
    print(table(rows, groups))
    print(f"wrote {csv_path} and {json_path}; manifest {manifest.path}")
    if not complete:
        raise RunInterrupted(f"sweep interrupted ({manifest.counts()}); run the same command again to continue", 2)
    return 1 if any(row["status"] == "failed" for row in rows) else 0


def _say(line: str) -> None:
    print(line, flush=True)


def installed_models() -> tuple[set[str], set[str]]:
    """The installed model plugins, and those declaring a ``threads`` parameter (their own
    thread setting, which would otherwise take every core; the sweep sets it to a trial's share)."""
    from ..plugins import load_plugins

    records = [(name, r.info) for name, r in load_plugins().records.items() if r.info and r.info.kind == "model"]
    return {name for name, _ in records}, {name for name, info in records if any(p.name == "threads" for p in info.params)}


def check_plugins(spec: Any, models: set[str]) -> None:
    from ..errors import ConfigError

    for trial in spec.trials():
        plugin = trial.values.get("plugin")
        if plugin not in models:
            where = "axes.plugin" if "plugin" in spec.axes else "base.plugin"
            raise ConfigError(f"{spec.path}: {where}: unknown model plugin {plugin!r} (installed: {', '.join(sorted(models)) or 'none'})")


def settle(spec: Any, trials: list[Any], threaded: set[str], threads: int) -> None:
    """What the driver settles before any trial starts: a plugin's own ``threads`` parameter gets
    the trial's share of the cores (unless the sweep file sets it), and trials without data share
    the default generated dataset, made here once per seed instead of raced by N workers."""
    from ..trainer import default_dataset

    made: dict[int, str] = {}
    for trial in trials:
        values = trial.values
        if values.get("plugin") in threaded:
            values.setdefault("params", {}).setdefault("threads", threads)
        if not (values.get("data_dir") or values.get("train")):
            seed = values.get("seed", 0)
            if seed not in made:
                made[seed] = str(Path(default_dataset(spec.directory, seed).sources["data_dir"]).resolve())
            values["data_dir"] = made[seed]
