"""Where a run goes: ``--logger-param mlflow.KEY=VALUE`` options over MLflow's own environment.

Pure Python, no mlflow import: it runs (and is tested) without the client. The core has already
converted and checked the options against :data:`PARAMS` (an unknown or secret-looking key, a bad
boolean never gets here) and filled in the defaults; this module adds the environment and the
store's layout.

Precedence for each setting: the ``--logger-param`` option, then MLflow's environment variable
(``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``), then the default. The default store is a
SQLite file under the runs directory, so ``qa run --logger mlflow`` needs no server, and its files
live beside the run directories they describe::

    runs/_mlflow/mlflow.db          the tracking store (runs, params, metrics, tags)
    runs/_mlflow/mlartifacts/       the runs' files (MLflow adds <run id>/artifacts/)

Credentials are never options: MLflow reads them from ``MLFLOW_TRACKING_TOKEN`` or
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from qa_core import Param
from qa_core.tracking.sessions import redact

URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "qa"
#: Under the runs directory; the leading underscore keeps it apart from run directories (like _data).
STORE_DIR_NAME = "_mlflow"
STORE_FILE_NAME = "mlflow.db"
#: Beside a SQLite store; the name ``mlflow server`` gives its own artifact folder.
ARTIFACTS_DIR_NAME = "mlartifacts"

#: What ``qa plugins`` shows for ``--logger-param mlflow.KEY=VALUE``.
PARAMS: tuple[Param, ...] = (
    Param(
        "tracking_uri",
        str,
        "",
        f"sqlite:///PATH.db, http(s)://SERVER, ... (default: ${URI_ENV}, else sqlite:///<runs-dir>/{STORE_DIR_NAME}/{STORE_FILE_NAME})",
    ),
    Param("experiment", str, "", f"experiment name, created when missing (default: ${EXPERIMENT_ENV}, else {DEFAULT_EXPERIMENT})"),
    Param("run_name", str, "", "the MLflow run's name (default: the qa run id)"),
    Param(
        "artifact_location",
        str,
        "",
        f"where a NEW experiment keeps its files (default: {ARTIFACTS_DIR_NAME}/ beside a SQLite store, the server's choice otherwise)",
    ),
    Param("verbose", bool, False, "let MLflow's own log lines through to the console"),
)
DEFAULTS = {param.name: param.default for param in PARAMS}


@dataclass(frozen=True)
class Settings:
    tracking_uri: str
    experiment: str
    #: None: the qa run id.
    run_name: str | None
    #: Passed to ``create_experiment``; None lets the store or server choose.
    artifact_location: str | None
    #: A directory to create before the store is opened (SQLite does not create folders).
    store_dir: Path | None
    verbose: bool

    @property
    def is_http(self) -> bool:
        return self.tracking_uri.split(":", 1)[0].lower() in ("http", "https")

    @property
    def shown_uri(self) -> str:
        """The tracking URI as it may be printed: any password or token in it replaced."""
        return redact(self.tracking_uri, self.secrets())

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be printed: the password (or lone token) inside the URI."""
        try:
            parts = urlsplit(self.tracking_uri)
            secret = parts.password if parts.password is not None else (parts.username if "@" in parts.netloc else None)
        except ValueError:
            return ()
        return (secret,) if secret and len(secret) >= 3 else ()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative paths stay relative), else None."""
    scheme, sep, rest = uri.partition(":///")
    if not sep or scheme.split("+", 1)[0].lower() != "sqlite":
        return None
    path = rest.split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def resolve(
    options: Mapping[str, Any],
    runs_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Settings for one run from the core's typed options (``run.options``). Options left out
    take :data:`PARAMS`' defaults."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    options = {**DEFAULTS, **options}

    uri = (options.get("tracking_uri") or "").strip() or (env.get(URI_ENV) or "").strip()
    store_dir: Path | None = None
    if not uri:
        store_dir = (cwd / runs_dir / STORE_DIR_NAME).resolve()
        uri = f"sqlite:///{store_dir / STORE_FILE_NAME}"

    artifact_location = (options.get("artifact_location") or "").strip() or None
    if artifact_location is not None and ":" not in artifact_location:
        # A plain path: made absolute now, or MLflow would read it against some later cwd.
        artifact_location = (cwd / Path(artifact_location).expanduser()).resolve().as_uri()
    database = sqlite_path(uri)
    if database is not None:
        database = (cwd / database).resolve()
        store_dir = database.parent
        if artifact_location is None:
            # MLflow's own default for a client-side store is ./mlruns under whatever directory
            # the process happens to run in; keep a store's files beside the store instead.
            artifact_location = (store_dir / ARTIFACTS_DIR_NAME).as_uri()

    experiment = (options.get("experiment") or "").strip() or (env.get(EXPERIMENT_ENV) or "").strip() or DEFAULT_EXPERIMENT
    return Settings(
        tracking_uri=uri,
        experiment=experiment,
        run_name=(options.get("run_name") or "").strip() or None,
        artifact_location=artifact_location,
        store_dir=store_dir,
        verbose=bool(options["verbose"]),
    )
