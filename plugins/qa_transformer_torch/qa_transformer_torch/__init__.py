"""qa-transformer-torch: a PyTorch Transformer encoder as a ``qa`` model plugin.

Importing this package does not import torch: the entry point (:mod:`.plugin`) only describes
the plugin, and torch is loaded when a model is first built or loaded, so ``qa --help`` and
``qa plugins`` stay fast and keep working where torch is missing.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qa-transformer-torch")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
