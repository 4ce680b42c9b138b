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
            for number, line in enumerate(str(exc).splitlines() or [""]):
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


