"""qa tracker plugin: every ``qa run`` as a TensorBoard run, written without TensorFlow.

    pip install ./plugins/qa_tensorboard
    qa run --plugin bow --data data/ --logger tensorboard   # -> runs/<run_id>/tensorboard/
    pip install "./plugins/qa_tensorboard[view]"            # TensorBoard itself, for the dashboard
    tensorboard --logdir runs                               # every run, side by side

Modules: :mod:`.plugin` holds the hooks (the entry point; it imports no writer), :mod:`.session`
owns one run's event files.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qa-tensorboard")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

#: The tracker's name: the entry point's name, ``--logger tensorboard``, ``--logger-param tensorboard.KEY``.
NAME = "tensorboard"

__all__ = ["NAME", "__version__"]
