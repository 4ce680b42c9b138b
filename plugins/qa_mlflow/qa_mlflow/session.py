"""One qa run's MLflow run, and everything that can go wrong with it.

A :class:`MlflowSession` lives in ``run.stash["mlflow"]`` from ``qa_log_run_start`` on. The core
calls a threaded tracker's hooks on one worker thread of its own, in order, so a session is only
ever used by one thread. It talks to MLflow through an ``MlflowClient`` bound to its own tracking
URI: never through the fluent ``mlflow.start_run`` API, whose active run and tracking URI are
process-wide and would collide with a user's own MLflow code in the same process.

Layout of an MLflow run (the metric names are the core's, unchanged)::

    run name                             --logger-param mlflow.run_name, else the qa run id
    tags     plugin, plugin_version, framework, dataset, qa_version, qa.run_id, qa.run_dir,
             one per `qa run --tag`, and status at the end
    params   everything qa_log_params gets (model/<k>: the model's hyperparameters)
    metrics  metrics/<split>/..., <split>/by_*/...   one point per epoch, step = epoch
             best/..., top_epochs/<rank>/..., test/..., metrics/test/...   step 0, last value wins
             run/epochs_run, run/seconds             step 0, at the end
    tags     best/checkpoint, top_epochs/<rank>/checkpoint   (summary values that are text)
    files    model/<best checkpoint> + its .meta.json, model/vocab.json, eval/<file>,
             qa/config.json (the resolved config), qa/summary.json (summary.json's content)

One qa run is one MLflow run: ``qa run --resume`` finds the MLflow run by its ``qa.run_id`` tag
and goes on logging to it (a setting the resume changed, which MLflow's write-once params cannot
take, goes to a ``resume/params/<name>`` tag).

Faults follow the one contract of every session tracker (:mod:`qa_core.tracking.sessions`): an
error from MLflow is raised; the core reports it as one redacted line (:meth:`describe` says
"cannot reach URI (Connection refused)" for a store that does not answer) and switches this tracker
off for the rest of the run; training and the local run directory go on. Before that,
:meth:`abort` marks an MLflow run that exists FAILED (unless the store cannot be reached at all),
so the UI does not show it running forever.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from qa_core import RunContext
from qa_core.tracking.sessions import TrackerSession, TrackingError, one_line

from . import NAME
from .names import RUN_STATUS, artifact_dir, mlflow_key, param_text, split_values
from .settings import Settings, resolve

#: Set (when the user has not) before MLflow is imported: no usage reports leave the machine, and
#: the client does not print "View run ... at" lines into qa's console from the worker thread.
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
#: MLflow retries an HTTP request 7 times with backoff, about 4 minutes, and waits 120 s for an
#: answer; the core waits QA_TRACKER_TIMEOUT (30 s) for a tracker at run end. These defaults make
#: an unreachable server fail within seconds; a user's own MLFLOW_HTTP_* settings win.
HTTP_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
#: Loggers that print at INFO while a store is opened ("Creating initial MLflow database tables").
MLFLOW_LOGGERS = ("mlflow", "alembic", "sqlalchemy")


def import_mlflow(verbose: bool = False) -> Any:
    """Import the client with its telemetry and console chatter off (unless the user says so)."""
    already_imported = "mlflow" in sys.modules
    changed = False
    for variable, value in QUIET_ENV.items():
        if variable not in os.environ:
            os.environ[variable] = value
            changed = True
    import mlflow

    if already_imported and changed:
        # MLflow decides on telemetry when first imported: decide again now the variable is set.
        from mlflow.telemetry import set_telemetry_client

        set_telemetry_client()
    if not verbose and "MLFLOW_LOGGING_LEVEL" not in os.environ:
        for name in MLFLOW_LOGGERS:
            logger = logging.getLogger(name)
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
        # It logs every database error with its whole traceback (89 lines for a read-only store)
        # and then raises it anyway: the raised error is what qa reports, in one line.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    return mlflow


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_network_error(exc: BaseException) -> bool:
    # requests' and urllib3's errors are OSErrors, like a full disk; their module tells them apart.
    module = type(exc).__module__.split(".", 1)[0]
    return isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)) or (
        isinstance(exc, OSError) and module in ("requests", "urllib3")
    )


def unreachable_reason(exc: BaseException) -> str | None:
    """The plainest reason when ``exc`` means the store could not be reached at all (connection
    refused, unknown host, timed out), else None."""
    chain = list(_exception_chain(exc))
    if not any(_is_network_error(e) for e in chain):
        return None
    inner = [e for e in chain if isinstance(e, OSError)][-1]
    text = inner.strerror or (str(inner).splitlines() or [""])[0]
    return text or type(inner).__name__


def read_only_reason(exc: BaseException) -> str | None:
    """The reason when ``exc`` means the store cannot be written (a read-only database file or
    mount, no permission), else None."""
    for error in _exception_chain(exc):
        text = (str(error).splitlines() or [""])[0]
        if isinstance(error, OSError) and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return error.strerror or text
        if "readonly database" in text or "read-only" in text.lower():
            return text.removeprefix("(sqlite3.OperationalError) ")
    return None


class MlflowSession(TrackerSession):
    """The per-run state of the mlflow tracker; see the module docstring."""

    def __init__(self, context: RunContext, settings: Settings | None = None):
        super().__init__(context)
        self.settings = settings or resolve(self.options, runs_dir=context.run_dir.parent)
        self.client: Any = None
        self.experiment_id: str | None = None
        #: The MLflow run's id; None until the run exists.
        self.run_id: str | None = None
        self.run_name = self.settings.run_name or context.run_id
        #: Params the MLflow run already holds (a resumed run): MLflow refuses to change them.
        self.logged_params: dict[str, str] = {}
        self._last_ms = 0
        self._unreachable = False

    # -- failure -----------------------------------------------------------------------------

    def secrets(self) -> tuple[str, ...]:
        return self.settings.secrets()

    def describe(self, exc: BaseException) -> str:
        """One line about an MLflow failure; MLflow's own messages run to many lines of HTTP detail."""
        unreachable = unreachable_reason(exc)
        if unreachable is not None:
            self._unreachable = True
            return f"cannot reach {self.settings.shown_uri} ({unreachable})"
        read_only = read_only_reason(exc)
        if read_only is not None:
            self._unreachable = True  # nothing can be written there, not even the FAILED mark
            return f"the store {self.settings.shown_uri} is read-only ({read_only}); choose a writable one with --logger-param {NAME}.tracking_uri=..."
        return one_line(exc)

    def abort(self, reason: str) -> None:
        # The store answers, so this run can still be closed honestly; a store that cannot be
        # reached would only make us wait for the same error again.
        if self.run_id is not None and self.client is not None and not self._unreachable:
            self.client.set_tag(self.run_id, "qa.tracking_error", reason)
            self.client.set_terminated(self.run_id, "FAILED")

    def _now_ms(self) -> int:
        # Strictly increasing: MLflow keeps, per metric, the point with the highest (step,
        # timestamp), so two summaries within one millisecond must still come out in order.
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    # -- start -------------------------------------------------------------------------------

    def start(self) -> None:
        settings = self.settings
        try:
            import_mlflow(settings.verbose)
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise TrackingError(f"the MLflow client is not installed ({exc}); pip install qa-mlflow") from exc
        if settings.store_dir is not None:
            settings.store_dir.mkdir(parents=True, exist_ok=True)
        if settings.is_http:
            for variable, value in HTTP_ENV.items():
                os.environ.setdefault(variable, value)
        self.client = MlflowClient(tracking_uri=settings.tracking_uri)
        self.experiment_id = self._experiment_id()
        earlier = self._earlier_run()
        if earlier is None:
            run = self.client.create_run(self.experiment_id, run_name=self.run_name, tags=self._run_tags())
        else:
            # `qa run --resume`: the same qa run goes on, so its MLflow run does too.
            run = earlier
            self.run_name = run.info.run_name
            self.logged_params = dict(run.data.params)
            self.client.update_run(run.info.run_id, status="RUNNING")
        self.run_id = run.info.run_id
        # The core's config is already redacted (option names, passwords and tokens in URLs).
        self.client.log_dict(self.run_id, json_ready(self.context.config), "qa/config.json")
        self.say(f"run '{self.run_name}' in experiment '{settings.experiment}' at {self.where()}")

    def where(self) -> str:
        """Where to look at the run: its page on a server, else the store's URI."""
        if self.settings.is_http and self.run_id:
            base = self.settings.shown_uri.rstrip("/")
            return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"
        return self.settings.shown_uri

    def _experiment_id(self) -> str:
        name = self.settings.experiment
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return self.client.create_experiment(name, artifact_location=self.settings.artifact_location)
            except Exception:
                # Another run may have created it in the meantime: use theirs.
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage != "active":
            raise TrackingError(
                f"experiment '{name}' is deleted in {self.settings.shown_uri}: restore it (mlflow experiments "
                f"restore --experiment-id {experiment.experiment_id}) or choose another with "
                f"--logger-param {NAME}.experiment=NAME"
            )
        return experiment.experiment_id

    def _earlier_run(self) -> Any:
        """The MLflow run an earlier part of this qa run created (before an interruption), if any."""
        found = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`qa.run_id` = '{self.context.run_id}'", max_results=1
        )
        return found[0] if found else None

    def _run_tags(self) -> dict[str, str]:
        context = self.context
        tags: dict[str, str] = {mlflow_key(label): "" for label in context.tags}
        tags.update(
            {
                "plugin": context.plugin,
                "plugin_version": context.plugin_version,
                "framework": context.framework or "",
                "dataset": context.dataset,
                "qa_version": str(context.config.get("qa_version") or _qa_version()),
                "qa.run_id": context.run_id,
                "qa.run_dir": str(Path(context.run_dir).resolve()),
                # MLflow's own tags: the UI's description, source and user columns.
                "mlflow.note.content": f"qa run {context.run_id}: {context.plugin} on {context.dataset}",
                "mlflow.source.name": "qa run",
                "mlflow.source.type": "LOCAL",
            }
        )
        with contextlib.suppress(Exception):  # no user name in some containers
            tags["mlflow.user"] = getpass.getuser()
        return tags

    # -- logging -----------------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param, RunTag

        new = {mlflow_key(name): param_text(value) for name, value in params.items()}
        # A resumed run may change a setting (`--resume --epochs 10`); MLflow params are
        # write-once, so the new value goes to a tag beside the original.
        changed = {f"resume/params/{k}": v for k, v in new.items() if self.logged_params.get(k, v) != v}
        batch = [Param(k, v) for k, v in new.items() if k not in self.logged_params]
        # synchronous=True: MLflow's async mode (MLFLOW_ENABLE_ASYNC_LOGGING) would queue the
        # data on threads of its own, beyond the core's bounded wait.
        self.client.log_batch(self.run_id, params=batch, tags=[RunTag(k, v) for k, v in changed.items()], synchronous=True)
        self.logged_params.update({p.key: p.value for p in batch})

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = self._now_ms()
        # One batch per epoch: hundreds of names, one request (MLflow splits past its limits).
        batch = [Metric(mlflow_key(name), float(value), stamp, step) for name, value in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch, synchronous=True)

    def log_summary(self, values: Mapping[str, Any], step: int) -> None:
        self._log_values(values, step)

    def _log_values(self, values: Mapping[str, Any], step: int) -> None:
        from mlflow.entities import Metric, RunTag

        numbers, texts = split_values(values)
        stamp = self._now_ms()
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(name, value, stamp, step) for name, value in numbers.items()],
            tags=[RunTag(name, text) for name, text in texts.items()],
            synchronous=True,
        )

    def log_artifact(self, path: Path, name: str) -> None:
        path = Path(path)
        folder = artifact_dir(name)
        self.client.log_artifact(self.run_id, str(path), artifact_path=folder)
        # A checkpoint is only loadable (`qa evaluate`) with the <stem>.meta.json the core
        # writes beside it: it goes along.
        meta = path.with_name(path.name.split(".", 1)[0] + ".meta.json")
        if meta != path and meta.is_file():
            self.client.log_artifact(self.run_id, str(meta), artifact_path=folder)

    def end(self, status: str, summary: Mapping[str, Any]) -> None:
        try:
            self._log_values(
                {
                    "run/epochs_run": summary.get("epochs_run"),
                    "run/seconds": summary.get("seconds"),
                    "status": status,
                },
                step=int(summary.get("epochs_run") or 0),
            )
            self.client.log_dict(self.run_id, json_ready(summary), "qa/summary.json")
        finally:
            self.client.set_terminated(self.run_id, RUN_STATUS.get(status, "FAILED"))


def json_ready(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as plain JSON types (numpy scalars and paths become numbers and text), as the
    local tracker writes it: MLflow's log_dict has no fallback for them."""
    return json.loads(json.dumps(dict(data), default=_plain))


def _plain(value: Any) -> Any:
    to_list = getattr(value, "tolist", None)  # numpy scalars and arrays
    return to_list() if callable(to_list) else str(value)


def _qa_version() -> str:
    from qa_core import __version__

    return __version__
