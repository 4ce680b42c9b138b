"""A plugin whose import fails, as one with a missing dependency does."""

raise ImportError("needs a library that is not installed")
