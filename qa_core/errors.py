"""Errors the CLI turns into one clear line on stderr and a non-zero exit code.

``QAError`` and its subclasses are the user's problem (bad input, an unknown plugin, a refused
checkpoint): the CLI prints ``error: <message>`` and exits 2, no traceback unless ``--traceback``.
``PluginError`` wraps an exception raised inside a plugin hook and names the plugin and the hook.
"""

from __future__ import annotations


class QAError(Exception):
    """A problem the user can fix; its message is the whole story."""

    exit_code = 2


class ConfigError(QAError):
    """A bad option, config file key or hyperparameter value."""


class DataError(QAError):
    """One or more bad records. ``problems`` holds one ``file:line: field: problem`` per record."""

    def __init__(self, problems: list[str], limit: int = 20):
        self.problems = list(problems)
        shown = self.problems[:limit]
        more = len(self.problems) - len(shown)
        text = "\n".join(shown)
        if more > 0:
            text += f"\n... and {more} more problem(s)"
        super().__init__(text)


class CheckpointError(QAError):
    """A checkpoint that cannot be used: wrong plugin, wrong vocabulary, truncated, unsafe."""


class PluginError(QAError):
    """An exception raised inside a plugin hook, re-raised naming the plugin and the hook."""

    exit_code = 1

    def __init__(self, plugin: str, hook: str, error: BaseException):
        self.plugin = plugin
        self.hook = hook
        self.error = error
        super().__init__(f"plugin '{plugin}' failed in {hook}: {type(error).__name__}: {error}")


class RunInterrupted(QAError):
    """SIGINT or SIGTERM stopped a run; the last finished epoch is on disk and resumable.
    The exit code follows the shell convention: 128 + the signal number (130, 143)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum
