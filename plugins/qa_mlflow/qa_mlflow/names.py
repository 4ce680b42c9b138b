"""The core's names and values, fitted to MLflow's rules. Pure Python, no mlflow import.

MLflow keys (metrics, params, tags) may hold letters, digits, ``_ - . space : /`` and must not
change under ``posixpath.normpath``. The core's names (``val/by_group/dense/noun_8/accuracy``)
already fit and pass through unchanged, so MLflow shows the same names as every other tracker;
only a name built from unusual data (a category called ``a+b``) has its odd characters replaced.

MLflow values: a metric is a number, a param or a tag is text. The core's summaries mix both
(``best/accuracy`` is a number, ``best/checkpoint`` a file name): numbers become metrics and text
becomes tags (:func:`split_values`).
"""

from __future__ import annotations

import numbers
import os
import re
from typing import Any, Mapping

# MLflow's limits (mlflow.utils.validation), copied so that this module needs no mlflow import.
MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000

#: qa's run status -> MLflow's RunStatus name.
RUN_STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}

# MLflow refuses ':' in keys on Windows only.
_NOT_ALLOWED = re.compile(r"[^\w.\- /]" if os.name == "nt" else r"[^\w.\- :/]")


def mlflow_key(name: str) -> str:
    """``name`` as a valid MLflow key: unchanged when it already is one."""
    key = _NOT_ALLOWED.sub("_", str(name))
    # Empty, "." and ".." segments would make MLflow read the key as another path.
    key = "/".join(part if part not in ("", ".", "..") else "_" for part in key.split("/"))
    return key[:MAX_KEY_LENGTH].rstrip("/")


def artifact_dir(name: str) -> str | None:
    """The artifact folder for the core's artifact name: ``eval/groups.csv`` -> ``eval``,
    ``model/best`` -> ``model`` (the file keeps its own name inside it), ``vocab`` -> None."""
    parts = [part for part in str(name).replace("\\", "/").split("/")[:-1] if part not in ("", ".", "..")]
    return "/".join(parts) or None


def is_number(value: Any) -> bool:
    # numbers.Real covers int, float, bool and numpy scalars (they register with numbers).
    return isinstance(value, numbers.Real)


def split_values(values: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """``({key: number}, {key: text})`` of a summary; None values are left out."""
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if is_number(value):
            metrics[mlflow_key(name)] = float(value)
        else:
            tags[mlflow_key(name)] = str(value)[:MAX_TAG_LENGTH]
    return metrics, tags


def param_text(value: Any) -> str:
    """A param value as MLflow stores it: text, at most MAX_PARAM_LENGTH characters."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:  # numpy scalar -> Python scalar
        value = item()
    return ("" if value is None else str(value))[:MAX_PARAM_LENGTH]
