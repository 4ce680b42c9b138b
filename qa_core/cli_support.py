"""What every `qa` command shares: one-line errors, the --traceback option, list parsing.

Its own module so that command modules (qa_core.cli, qa_core.analysis.commands) import it without
importing each other.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable

import typer

from .errors import ConfigError, QAError, RunInterrupted

TracebackOption = typer.Option(False, "--traceback", help="Show the full traceback on errors.")


def cli_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """One clear line and a non-zero exit code for every error; a traceback only when asked."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        show = kwargs.get("traceback") or os.environ.get("QA_TRACEBACK", "") not in ("", "0")
        try:
            return command(*args, **kwargs)
        except QAError as exc:
            if show:
                raise
            prefix = "" if isinstance(exc, RunInterrupted) else "error: "
            lines = str(exc).splitlines() or ([] if isinstance(exc, RunInterrupted) else [""])  # [] from a rank > 0
            for number, line in enumerate(lines):
                print((prefix if number == 0 else "  ") + line, file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit, BrokenPipeError):
            raise
        except Exception as exc:  # noqa: BLE001 - an unexpected failure still gets one line
            if show:
                raise
            if isinstance(exc, OSError) and exc.filename:
                # A file qa could not write or read (a full disk, a read-only folder, permissions):
                # the user's environment, not a bug; name the file and the reason.
                print(f"error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
                raise typer.Exit(2) from None
            print(f"error: unexpected {type(exc).__name__}: {exc} (run again with --traceback for details)", file=sys.stderr)
            raise typer.Exit(1) from None

    return wrapper


def _csv_ints(option: str, text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{option}: expected comma-separated integers, got {text!r}") from None


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]




#: Metavars by option name, where the value has a shape worth showing.
OPTION_METAVARS = {
    "param": "KEY=VALUE",
    "logger_param": "TRACKER.KEY=VALUE",
    "logger": "TRACKER",
    "plugin": "NAME",
    "tag": "TAG",
    "data_format": "auto|jsonl|babi",
    "runs_dir": "DIR",
    "resume": "RUN_DIR",
}
#: Metavars by the type typer would show as ``<int>``, ``<list[str]>`` ...
TYPE_METAVARS = {"int": "N", "float": "NUMBER", "str": "TEXT", "path": "PATH", "Path": "PATH", "bool": "BOOL"}


def readable_metavars(command: Any) -> Any:
    """Replace typer's ``<list[str]>``-style metavars with readable ones (``KEY=VALUE``, ``N``,
    ``PATH``), on every option and argument of ``command`` and its subcommands; explicit
    metavars stay. Returns ``command``."""
    import contextlib

    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)
    for param in command.params:
        if param.param_type_name == "argument":
            name = param.name[:-1] if param.nargs != 1 and param.name.endswith("s") else param.name
            param.metavar = param.metavar or name.upper()  # RUN_DIRS... -> RUN_DIR...
            param.display_type = lambda ctx: ""  # the name says it; "<path>" after it is noise
            continue
        if getattr(param, "is_flag", False) or param.metavar is not None:
            continue
        if param.name in OPTION_METAVARS:
            param.metavar = OPTION_METAVARS[param.name]
            continue
        with contextlib.suppress(Exception):  # a type typer cannot describe keeps typer's label
            label = param.display_type(None).strip("<>")
            inner = label[5:-1] if label.startswith("list[") else label
            param.metavar = TYPE_METAVARS.get(inner, inner.upper())
    return command


def _plugin_names(kind: str, incomplete: str) -> list[str]:
    """Installed plugins of ``kind`` starting with ``incomplete``, for shell completion (a broken
    plugin is left out, silently: completion must never print)."""
    import contextlib
    import io

    from .plugins import PluginManager

    manager = PluginManager()
    manager.load_builtins()
    with contextlib.redirect_stderr(io.StringIO()):
        manager.load_entrypoints(strict=False)
    return sorted(r.name for r in manager.loaded(kind) if r.name.startswith(incomplete) and r.name != "local")


def complete_models(incomplete: str) -> list[str]:
    return _plugin_names("model", incomplete)


def complete_trackers(incomplete: str) -> list[str]:
    return _plugin_names("tracker", incomplete)
