"""The selected callback plugins (``qa run --callback NAME``), called in the order given.

A callback plugin acts on training: at every epoch end it may add metrics of its own
(``qa_epoch_metrics``) and may ask the run to stop (``qa_epoch_end`` returns a reason). Unlike a
tracker, a callback that raises stops the run (exit 1, naming the plugin and the hook): a rule
that decides when to stop must not silently switch itself off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping

from .errors import PluginError, QAError

if TYPE_CHECKING:
    from .plugins import PluginManager
    from .run import Run

CALLBACK_HOOKS = ("qa_epoch_metrics", "qa_epoch_end")


class Callbacks:
    def __init__(self, manager: "PluginManager | None", names: list[str]):
        self.names = list(dict.fromkeys(names))
        self._callers: dict[str, dict[str, Any]] = {}
        for name in self.names:
            record = manager.callback(name)  # type: ignore[union-attr]
            self._callers[name] = {hook: manager._caller(name, hook) for hook in CALLBACK_HOOKS if hook in record.hooks}  # type: ignore[union-attr]

    def _call(self, name: str, hook: str, **kwargs: Any) -> Any:
        caller = self._callers[name].get(hook)
        if caller is None:
            return None
        try:
            results = caller(**kwargs)  # not firstresult: a list, of one result (one plugin's)
            return next((result for result in results if result is not None), None)
        except QAError:
            raise
        except Exception as exc:  # noqa: BLE001 - name the plugin and the hook, keep the cause
            raise PluginError(name, hook, exc) from exc

    def epoch_metrics(self, run: "Run", epoch: int, logs: Mapping[str, float]) -> Iterator[tuple[str, dict[str, float]]]:
        for name in self.names:
            values = self._call(name, "qa_epoch_metrics", run=run.context, epoch=epoch, logs=dict(logs))
            if values:
                try:
                    yield name, {str(k): float(v) for k, v in values.items()}
                except (TypeError, ValueError, AttributeError) as exc:
                    raise PluginError(name, "qa_epoch_metrics", ValueError(f"expected {{name: number}}, got {values!r} ({exc})")) from None

    def epoch_end(self, run: "Run", epoch: int, logs: Mapping[str, float]) -> Iterator[tuple[str, str]]:
        for name in self.names:
            reason = self._call(name, "qa_epoch_end", run=run.context, epoch=epoch, logs=dict(logs))
            if reason:
                yield name, str(reason)

