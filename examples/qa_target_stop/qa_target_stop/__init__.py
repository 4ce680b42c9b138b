"""qa-target-stop: a callback plugin for qa (stop at a target, add the balanced accuracy)."""

__version__ = "0.1.0"
