"""One qa run's Neptune run, and everything that can go wrong with it.

A :class:`NeptuneSession` lives in ``run.stash["neptune"]`` from ``qa_log_run_start`` on. The core
calls the tracker hooks on a worker thread of their own, in order, so a session is only ever used
by one thread at a time (neptune's own background threads aside).

Faults follow the one contract of every session tracker (:mod:`qa_core.tracking.sessions`): when
the settings are unusable, ``neptune.init_run`` raises, or a later call into the client raises,
the method raises; the core turns that into one redacted line on stderr, :meth:`abort` stops the
Neptune run (briefly), and the tracker is off for the rest of the run. Training and the local run
directory never notice.

Field layout (the metric names are the core's, unchanged):

    sys/name, sys/tags, sys/description      the run's name (option, config name, else the qa run id), tags
    run/id, run/dir, run/plugin, run/plugin_version, run/framework, run/dataset
    config/...                               the resolved run config (RunContext.config, secrets redacted by the core)
    run/status, run/seconds, run/epochs_run  set at the end (sys/failed too, for a failed run)
    parameters/...                           everything qa_log_params gets (parameters/model/<k>: hyperparameters)
    metrics/<split>/..., <split>/by_*/...    series, step = epoch          (qa_log_metrics)
    best/..., top_epochs/..., test/..., metrics/test/...  single values    (qa_log_summary)
    model/best, model/vocab, eval/<file>     uploaded files                 (qa_log_artifact)

A debug-mode run is kept open after the qa run ends: neptune refuses to read a stopped run back
(InactiveRunException), and reading it back is what debug mode is for. :meth:`close` stops it, and
so does interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib.util
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from qa_core import RunContext
from qa_core.tracking.sessions import TrackerSession, TrackingError

from .settings import DATA_DIR_ENV, DATA_DIR_NAME, Settings, SettingsError, resolve

#: One fixed namespace instead of neptune's per-host/pid/thread hash, so every run (LSTM or
#: Transformer, any machine) has the same field paths.
MONITORING_NAMESPACE = "monitoring"
#: A run that is being switched off after a failure gets this long to flush; it is broken anyway.
STOP_AFTER_FAILURE_SECONDS = 1.0
#: Async mode: say once that the server is not accepting data after this long without progress
#: (neptune's own default is 300 s, longer than many qa runs).
NO_PROGRESS_SECONDS = 30.0

_NEPTUNE_LOGGERS = ("neptune", "neptune_no_prefix")
# NEPTUNE_DATA_DIRECTORY is process-wide and read while a run is created: one creation at a time.
_DATA_DIR_LOCK = threading.Lock()


def import_neptune(verbose: bool) -> Any:
    """Import the client and keep its own log lines and warnings off the console unless asked."""
    import neptune
    from neptune.common import warnings as neptune_warnings

    level = logging.INFO if verbose else logging.CRITICAL + 1
    for name in _NEPTUNE_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for category in (
        neptune_warnings.NeptuneWarning,
        neptune_warnings.NeptuneUnsupportedType,
        neptune_warnings.NeptuneUnsupportedValue,
        neptune_warnings.NeptuneDeprecationWarning,
    ):
        # Inserted first, so the latest run's choice wins over an earlier run's in this process.
        warnings.filterwarnings("default" if verbose else "ignore", category=category)
    return neptune


def plain(value: Any) -> Any:
    """A value neptune stores as is: numpy scalars become Python scalars, others become text."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        value = item()
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def flatten(tree: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1, 2], "d": None}`` -> ``{"<prefix>/a/b": 1, "<prefix>/c": "[1, 2]"}``.

    Unset (None) settings are left out rather than stored as text; lists become JSON text, as
    neptune has no list field."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value, default=str)
        elif value is not None:
            out[name] = plain(value)
    return out


@contextlib.contextmanager
def _data_directory(settings: Settings) -> Iterator[None]:
    """Point neptune at ``settings.neptune_dir`` while the run is created (it reads the variable
    then, to place the run's files), and put the environment back afterwards."""
    if not settings.set_data_dir:
        yield
        return
    with _DATA_DIR_LOCK:
        before = os.environ.get(DATA_DIR_ENV)
        os.environ[DATA_DIR_ENV] = str(settings.neptune_dir)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(DATA_DIR_ENV, None)
            else:
                os.environ[DATA_DIR_ENV] = before


def _tracker_timeout() -> float | None:
    try:
        from qa_core.tracking.hub import tracker_timeout
    except ImportError:  # an older core without the threaded hub
        return None
    return tracker_timeout()


class NeptuneSession(TrackerSession):
    """The per-run state of the neptune tracker; see the module docstring."""

    def __init__(self, context: RunContext):
        super().__init__(context)
        self.settings: Settings | None = None
        #: The ``neptune.Run``; None until started, and when Neptune could not start.
        self.run: Any = None
        #: Set when the server stopped accepting data during the run (async mode).
        self.stalled = False
        self._warned = False
        self._top_epochs: set[str] = set()
        self._at_exit: Callable[[], None] | None = None
        self._scratch: Path | None = None

    @property
    def mode(self) -> str | None:
        return self.settings.mode if self.settings else None

    def secrets(self) -> list[str]:
        return self.settings.secrets() if self.settings else []

    def _say_once(self, line: str) -> None:
        if not self._warned:
            self._warned = True
            self.say(line)

    def abort(self, reason: str) -> None:
        # The tracker is being switched off: give the run a moment to flush, never longer.
        if self._at_exit is not None:
            atexit.unregister(self._at_exit)
            self._at_exit = None
        if self.run is not None:
            with contextlib.suppress(Exception):
                self.run.stop(seconds=STOP_AFTER_FAILURE_SECONDS)
        self._remove_scratch()

    # -- start -------------------------------------------------------------------------------

    def start(self) -> None:
        settings = resolve(self.options, tracker_timeout=_tracker_timeout())
        if settings.mode == "debug" and not settings.set_data_dir:
            # Debug runs still keep a small working folder (run metadata, upload staging) under
            # .neptune/: give it a scratch directory, removed when the run stops, so a debug run
            # leaves nothing in the working directory.
            self._scratch = Path(tempfile.mkdtemp(prefix="qa-neptune-debug-"))
            settings = dataclasses.replace(
                settings, neptune_dir=self._scratch / DATA_DIR_NAME, sync_path=self._scratch, set_data_dir=True
            )
        self.settings = settings
        try:
            neptune = import_neptune(settings.verbose)
        except ImportError as exc:
            raise TrackingError(f"the neptune client is not installed ({exc})") from exc
        try:
            with _data_directory(settings):
                self.run = neptune.init_run(**self._init_arguments(settings))
        except Exception as exc:  # noqa: BLE001 - bad token, unreachable server, bad project, ...
            raise TrackingError(f"could not start a Neptune run in {settings.mode} mode ({self.describe(exc)})") from exc
        # Neptune's own exit hook waits for every unsent operation without a limit; ours runs
        # first (atexit is last-in, first-out) and bounds that wait.
        self._at_exit = self._stop_at_exit
        atexit.register(self._at_exit)
        self._write_run_fields()

    def _init_arguments(self, settings: Settings) -> dict[str, Any]:
        context = self.context
        tags = list(dict.fromkeys((*context.tags, *settings.tags)))
        return dict(
            project=settings.project,
            api_token=settings.api_token,
            mode=settings.mode,
            name=settings.name or context.config.get("name") or context.run_id,
            description=f"qa run {context.run_id}: {context.plugin} on {context.dataset}",
            tags=tags or None,
            # The console belongs to qa (progress bars, epoch lines): capturing it would ship
            # every bar refresh. Source files and git info are not ours to upload.
            capture_stdout=False,
            capture_stderr=False,
            capture_traceback=False,
            capture_hardware_metrics=settings.hardware,
            monitoring_namespace=MONITORING_NAMESPACE,
            source_files=[],
            git_ref=False,
            async_no_progress_callback=self._on_no_progress,
            async_no_progress_threshold=NO_PROGRESS_SECONDS,
        )

    def _write_run_fields(self) -> None:
        context, run = self.context, self.run
        run["run/id"] = context.run_id
        run["run/dir"] = str(context.run_dir)
        run["run/plugin"] = context.plugin
        run["run/plugin_version"] = context.plugin_version
        run["run/framework"] = context.framework or ""
        run["run/dataset"] = context.dataset
        for name, value in flatten(context.config, "config").items():
            run[name] = value

    def _on_no_progress(self, _run: Any) -> None:
        # Called on neptune's own thread when the server has accepted nothing for a while
        # (async mode). Data keeps queueing on disk; say so once, do not stop anything.
        self.stalled = True
        where = self.settings.neptune_dir if self.settings else "the .neptune directory"
        self._say_once(
            f"the Neptune server is not accepting data; training goes on and the data "
            f"waits in {where} (send it later with `{sync_command(self.settings)}`)"
        )

    # -- logging -----------------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        for name, value in params.items():
            self.run[f"parameters/{name}"] = plain(value)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for name, value in metrics.items():
            number = float(value)
            # neptune drops non-finite floats itself, with a console warning; the local
            # metrics.jsonl keeps them, so skipping here loses nothing.
            if math.isfinite(number):
                self.run[name].append(number, step=step)

    def log_summary(self, values: Mapping[str, Any], step: int) -> None:
        # Neptune keeps single-value fields: the step is not needed.
        new_top = {name.split("/", 2)[1] for name in values if name.startswith("top_epochs/")}
        if new_top:
            # The top-k arrives whole each time: ranks it no longer has are removed.
            for rank in sorted(self._top_epochs - new_top):
                if self.run.exists(f"top_epochs/{rank}"):
                    self.run.pop(f"top_epochs/{rank}")
            self._top_epochs = new_top
        for name, value in values.items():
            if value is None:
                if self.run.exists(name):
                    self.run.pop(name)
                continue
            if isinstance(value, float) and not math.isfinite(value):
                continue
            self.run[name] = plain(value)

    def log_artifact(self, path: Path, name: str) -> None:
        from neptune.types import File

        source = Path(path)
        if self.mode == "debug":
            self.run[name].upload(str(source))  # kept in memory only: no copy needed
            return
        # Offline and async runs send files later (`neptune sync`, the background thread) and
        # read them then: upload a snapshot so later changes to the run directory (best
        # replaced, the directory moved or cleaned) cannot change or lose what was logged.
        extension = source.name.split(".", 1)[1] if "." in source.name else ""
        self.run[name].upload(File.from_content(source.read_bytes(), extension=extension))

    # -- end ---------------------------------------------------------------------------------

    def end(self, status: str, summary: Mapping[str, Any]) -> None:
        run = self.run
        run["run/status"] = status
        for key in ("seconds", "epochs_run"):
            if isinstance(summary.get(key), (int, float)):
                run[f"run/{key}"] = plain(summary[key])
        if status == "failed":
            run["sys/failed"] = True
        if self.mode == "debug":
            return  # kept open so it can be read back; close() stops it
        assert self.settings is not None
        self._stop(self.settings.stop_timeout)
        self._report_local_data()

    def close(self) -> None:
        """Stop the Neptune run now (debug runs stay open until this or interpreter exit)."""
        if self.run is not None and self.settings is not None:
            self._stop(self.settings.stop_timeout)

    def _stop(self, seconds: float) -> None:
        if self._at_exit is not None:
            atexit.unregister(self._at_exit)
            self._at_exit = None
        try:
            self.run.stop(seconds=seconds)
        finally:
            self._remove_scratch()

    def _stop_at_exit(self) -> None:
        with contextlib.suppress(Exception):
            self.run.stop(seconds=self.settings.stop_timeout if self.settings else 0)
        self._remove_scratch()

    def _remove_scratch(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def container_dirs(self) -> list[Path]:
        """This run's directories under ``.neptune/`` (offline data, or unsent async data)."""
        run_uuid = getattr(self.run, "_id", None)  # neptune 1.x keeps the run's UUID here
        if self.settings is None or not run_uuid:
            return []
        return sorted(self.settings.neptune_dir.glob(f"*/run__{run_uuid}__*"))

    def _report_local_data(self) -> None:
        settings = self.settings
        assert settings is not None
        if settings.mode == "offline":
            where = self.container_dirs()
            run_uuid = getattr(self.run, "_id", None)
            target = f" --object offline/{run_uuid}" if run_uuid else " --offline-only"
            self.say(
                f"offline run saved in {where[0] if where else settings.neptune_dir}; "
                f"send it to a Neptune server with `{sync_command(settings)}{target}`"
            )
        elif settings.mode == "async" and self.container_dirs():
            # An async run whose queue did not drain before stop_timeout: the rest waits on disk.
            self._say_once(
                f"not everything reached the Neptune server within {settings.stop_timeout:g}s; "
                f"the rest is kept in {settings.neptune_dir} (send it with `{sync_command(settings)}`)"
            )


def sync_command(settings: Settings | None) -> str:
    """The command that uploads what a run left under ``.neptune/``.

    neptune 1.x's ``neptune`` command needs ``pkg_resources``, which recent setuptools no longer
    ships; ``python -m qa_neptune`` runs the same sync without it.
    """
    program = "neptune" if importlib.util.find_spec("pkg_resources") else "python -m qa_neptune"
    if settings is None:
        return f"{program} sync"
    project = settings.project or "WORKSPACE/PROJECT"
    extra = f" --project {project}" if settings.mode == "offline" else ""
    return f"{program} sync --path {settings.sync_path}{extra}"
