"""``python -m qa_neptune sync|status|clear``: neptune's own commands, started without pkg_resources.

The ``neptune`` command of client 1.x imports ``pkg_resources`` to look for CLI plugins, and
setuptools no longer ships it, so on a fresh environment ``neptune sync`` dies on an ImportError.
The commands themselves do not need it: this runs them, with the same options
(``python -m qa_neptune sync --help``).
"""

from __future__ import annotations

import click
from neptune.cli.commands import clear, status, sync


@click.group()
def main() -> None:
    """Neptune's sync, status and clear commands (as `neptune ...`)."""


main.add_command(sync)
main.add_command(status)
main.add_command(clear)

if __name__ == "__main__":
    main(prog_name="python -m qa_neptune")
