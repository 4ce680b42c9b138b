"""Tracker options (``--logger-param NAME.KEY=VALUE``), resolved once, before any work.

A tracker that declares ``Param``s in its ``qa_describe`` gets its options converted to those
types, checked (bounds, choices, its own ``check``), and with every default filled in, exactly as
a model plugin's ``--param`` values are; the result is what ``RunContext.params_for(name)`` and
``run.options`` hand it. A tracker that declares none gets the strings as given. Secrets are never
taken on the command line, whatever the tracker declares.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..config import looks_secret
from ..errors import ConfigError


def resolve_tracker_options(
    manager: Any, loggers: Sequence[str], given: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``{tracker: options}`` for every tracker in ``loggers``; ConfigError naming the option
    (or the tracker) that cannot work."""
    from ..plugins import resolve_params

    for name in given:
        if name not in loggers:
            raise ConfigError(f"--logger-param {name}.*: tracker '{name}' is not active (add --logger {name})")
    resolved: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(loggers):
        info = manager.tracker(name).info
        options = dict(given.get(name, {}))
        declared = {param.name for param in info.params}
        secret = next((key for key in options if key not in declared and looks_secret(key)), None)
        if secret:
            raise ConfigError(
                f"--logger-param {name}.{secret}: secrets are not taken on the command line (shell history, "
                f"process lists); set the tracker's environment variable instead (see its README)"
            )
        resolved[name] = resolve_params(name, info, options, option=f"--logger-param {name}.") if declared else options
    return resolved
