"""qa: train and evaluate binary question-answering models on stories, through plugins.

The public API for plugin authors is everything in ``__all__``: the ``hookimpl`` marker, the
types that cross the plugin boundary, the errors a plugin may raise, and the base of
session-per-run trackers (``TrackerSession``, ``SessionHooks``, ``TrackingError``). The kit for
testing a plugin is :mod:`qa_core.testing` (it needs pytest, so it is not imported here).
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import CheckpointError, ConfigError, DataError, PluginError, QAError
from .hookspecs import hookimpl
from .tracking.sessions import SessionHooks, TrackerSession, TrackingError
from .types import Batch, EncodedSplit, ModelSpec, Param, PluginInfo, RunContext

try:
    __version__ = version("qa-core")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "Batch",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "EncodedSplit",
    "ModelSpec",
    "Param",
    "PluginError",
    "PluginInfo",
    "QAError",
    "RunContext",
    "SessionHooks",
    "TrackerSession",
    "TrackingError",
    "__version__",
    "hookimpl",
]
