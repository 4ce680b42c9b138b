"""qa model plugin: an Embedding + LSTM + sigmoid classifier in Keras 3 on TensorFlow.

Importing this package is cheap: TensorFlow is imported only when a model is built or loaded
(:mod:`qa_lstm_tf.runtime`), so ``qa --help`` and ``qa plugins`` stay fast and keep working
on a machine without TensorFlow.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qa-lstm-tf")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
