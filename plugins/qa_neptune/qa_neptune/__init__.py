"""qa tracker plugin: log every ``qa run`` to Neptune (client 1.x).

    pip install ./plugins/qa_neptune
    qa run --plugin transformer --data data/ --logger neptune                 # offline: ./.neptune/
    qa run ... --logger neptune --logger-param neptune.mode=debug            # in memory only
    NEPTUNE_API_TOKEN=... NEPTUNE_PROJECT=ws/proj qa run ... --logger neptune  # a self-hosted server

Modules: :mod:`.plugin` holds the hooks (the entry point; it never imports neptune),
:mod:`.settings` turns ``--logger-param`` options and environment variables into connection
settings, :mod:`.session` owns one Neptune run and everything that can go wrong with it, and
:mod:`.__main__` runs neptune's ``sync``/``status``/``clear`` commands (``python -m qa_neptune``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qa-neptune")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

NAME = "neptune"

__all__ = ["NAME", "__version__"]
