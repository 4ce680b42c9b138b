"""Connection settings: ``--logger-param neptune.KEY=VALUE`` options over environment variables.

Pure Python, no neptune import: it runs (and is tested) without the client. The core has already
converted and checked the options against :data:`PARAMS` (an unknown or secret-looking key, a bad
number never gets here) and filled in the defaults; this module adds what the core cannot know:
the environment, and which combinations can work.

Precedence: a ``--logger-param`` option, then neptune's own environment variable
(``NEPTUNE_PROJECT``, ``NEPTUNE_MODE``, ``NEPTUNE_DATA_DIRECTORY``), then the default. The token is
read from ``NEPTUNE_API_TOKEN`` only: a token given on the command line would end up in shell
history, process lists and run configs, so the option is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from qa_core import Param
from qa_core.tracking.sessions import TrackingError

TOKEN_ENV = "NEPTUNE_API_TOKEN"
PROJECT_ENV = "NEPTUNE_PROJECT"
MODE_ENV = "NEPTUNE_MODE"
DATA_DIR_ENV = "NEPTUNE_DATA_DIRECTORY"
#: The directory name neptune keeps its data in; ``neptune sync --path P`` looks for ``P/.neptune``.
DATA_DIR_NAME = ".neptune"

MODES = ("async", "sync", "offline", "debug")
#: Modes that talk to a server, and so need a token and a project.
ONLINE_MODES = ("async", "sync")
DEFAULT_STOP_TIMEOUT = 20.0

#: What ``qa plugins`` shows for ``--logger-param neptune.KEY=VALUE``.
PARAMS: tuple[Param, ...] = (
    Param("project", str, "", f"WORKSPACE/PROJECT on your Neptune server (default: ${PROJECT_ENV})"),
    Param(
        "mode",
        str,
        "",
        f"async | sync | offline | debug (default: ${MODE_ENV}, else async with ${TOKEN_ENV} set, offline without)",
        choices=MODES,
    ),
    Param("name", str, "", "the Neptune run's name (default: the qa run id)"),
    Param("tags", str, "", "comma-separated tags, added to the run's --tag values"),
    Param(
        "data_dir",
        str,
        "",
        f"directory that gets the {DATA_DIR_NAME}/ folder of offline runs and unsent data (default: ${DATA_DIR_ENV}, else the current directory)",
    ),
    Param(
        "stop_timeout",
        float,
        DEFAULT_STOP_TIMEOUT,
        "seconds to wait at the end of a run for data to reach the server (capped below QA_TRACKER_TIMEOUT)",
        minimum=0.0,
    ),
    Param("hardware", bool, False, "also record CPU and memory use under monitoring/"),
    Param("verbose", bool, False, "let neptune's own log lines and warnings through to the console"),
)
DEFAULTS = {param.name: param.default for param in PARAMS}


class SettingsError(TrackingError):
    """An option or environment that cannot work; the message is shown as is."""


@dataclass(frozen=True)
class Settings:
    mode: str
    project: str | None
    name: str | None
    tags: tuple[str, ...]
    #: Where neptune keeps this run's files (offline runs, the async queue): ``<...>/.neptune``.
    neptune_dir: Path
    #: The ``--path`` to give ``neptune sync`` for that directory.
    sync_path: Path
    #: True when ``data_dir`` was given: neptune is pointed at ``neptune_dir`` for this run only.
    set_data_dir: bool
    stop_timeout: float
    hardware: bool
    verbose: bool
    #: Never printed, stored or logged (``repr=False`` keeps it out of reprs and tracebacks).
    api_token: str | None = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        """Every string that must never reach the console or a file: the token and the key in it."""
        found = [self.api_token] if self.api_token else []
        key = _api_key(self.api_token)
        if key:
            found.append(key)
        return [s for s in found if len(s) >= 4]


def _api_key(token: str | None) -> str | None:
    # A Neptune token is base64 of JSON {"api_address", "api_url", "api_key"}; error messages from
    # the client may quote the decoded parts, so the key is redacted too.
    if not token:
        return None
    try:
        decoded = json.loads(base64.b64decode(token.strip() + "=" * (-len(token.strip()) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    key = decoded.get("api_key") if isinstance(decoded, dict) else None
    return key if isinstance(key, str) and key else None


def resolve(
    options: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    tracker_timeout: float | None = None,
) -> Settings:
    """Settings for one run from the core's typed options (``run.options``), or SettingsError
    naming what cannot work. Options left out take :data:`PARAMS`' defaults."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    options = {**DEFAULTS, **options}

    token = env.get(TOKEN_ENV) or None
    mode = (options.get("mode") or env.get(MODE_ENV) or ("async" if token else "offline")).strip().lower()
    if mode not in MODES:
        where = "--logger-param neptune.mode" if options.get("mode") else MODE_ENV
        raise SettingsError(f"{where}: expected one of {', '.join(MODES)}, got {mode!r}")
    project = (options.get("project") or env.get(PROJECT_ENV) or "").strip() or None
    if mode in ONLINE_MODES:
        if not token:
            raise SettingsError(f"mode {mode} needs a Neptune server token: set {TOKEN_ENV} (or use mode=offline)")
        if not project:
            raise SettingsError(
                f"mode {mode} needs a project: --logger-param neptune.project=WORKSPACE/PROJECT or {PROJECT_ENV}"
            )

    if options.get("data_dir"):
        sync_path = (cwd / Path(options["data_dir"]).expanduser()).resolve()
        neptune_dir, set_data_dir = sync_path / DATA_DIR_NAME, True
    else:
        neptune_dir = (cwd / Path(env.get(DATA_DIR_ENV) or DATA_DIR_NAME).expanduser()).resolve()
        sync_path = neptune_dir.parent if neptune_dir.name == DATA_DIR_NAME else neptune_dir
        set_data_dir = False

    stop_timeout = float(options["stop_timeout"])
    if tracker_timeout is not None:
        # Leave the core time to see run end finish: past QA_TRACKER_TIMEOUT it gives up on us
        # and our closing message would be lost.
        stop_timeout = min(stop_timeout, max(0.0, tracker_timeout * 0.5))

    extra_tags = tuple(tag.strip() for tag in options["tags"].split(",") if tag.strip())
    return Settings(
        mode=mode,
        project=project,
        name=(options.get("name") or "").strip() or None,
        tags=extra_tags,
        neptune_dir=neptune_dir,
        sync_path=sync_path,
        set_data_dir=set_data_dir,
        stop_timeout=stop_timeout,
        hardware=bool(options["hardware"]),
        verbose=bool(options["verbose"]),
        api_token=token,
    )
