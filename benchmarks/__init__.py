"""Measured ratios of ``qa`` against the hand-written code it replaces (issue 8).

    python -m benchmarks [--quick] [--out DIR] [--only NAME ...]

Every figure that compares two things is a ratio measured side by side in one process: the two
sides alternate (A B, B A, A B, ...) after a warm-up, and the ratio is the median of one side over
the median of the other, so slow drift in the load of a shared machine hits both alike. Each
benchmark is one module exposing ``run(quick: bool) -> dict`` (see :mod:`benchmarks.common`).
"""
