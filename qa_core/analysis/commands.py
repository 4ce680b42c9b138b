"""CLI commands of the analysis room, registered on the main `qa` app by qa_core.cli."""

from __future__ import annotations

import typer


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    """Add the analysis commands to ``app`` (and ``data_app``)."""
