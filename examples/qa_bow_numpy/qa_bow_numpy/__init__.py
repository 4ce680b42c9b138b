"""qa-bow-numpy: a bag-of-words logistic regression plugin for qa (numpy only)."""

__version__ = "0.1.0"
