"""Small real plugins the contracts run with: a numpy model, an interrupter, a hook recorder.

:class:`TinyModel` lets a tracker's contract train for real without any framework installed.
:class:`Interrupter` stops a run the way Ctrl-C does once an epoch is on disk, so a resume can be
tested in process. :class:`HookRecorder` records which tracker hooks reached one plugin, in order,
and can make one of them fail.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import CheckpointError
from ..hookspecs import hookimpl
from ..types import Batch, EncodedSplit, ModelSpec, Param, PluginInfo, RunContext

TINY_MODEL = "qa-testing-tiny"
INTERRUPTER = "qa-testing-interrupt"


def _present(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """[n, vocab] word presence, one bincount for the whole batch (ids 0-2 are pad/unk/sep)."""
    n = tokens.shape[0]
    index = tokens + (np.arange(n) * vocab_size)[:, None]
    counts = np.bincount(index[tokens > 2].ravel(), minlength=n * vocab_size).reshape(n, vocab_size)
    return (counts > 0).astype(np.float32)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


class TinyModel:
    """Logistic regression on word presence, plain gradient descent: a real model in 0.1 ms a step."""

    @hookimpl
    def qa_describe(self) -> PluginInfo:
        return PluginInfo(
            kind="model",
            description="qa.testing: logistic regression on word presence (numpy)",
            framework="numpy",
            params=(Param("lr", float, 0.5, "step size", minimum=1e-6),),
            checkpoint_suffix=".npz",
        )

    @hookimpl
    def qa_build(self, spec: ModelSpec) -> dict[str, Any]:
        return {"w": np.zeros(spec.vocab_size, np.float32), "b": np.zeros(1, np.float32), "spec": spec}

    @hookimpl
    def qa_train_step(self, model: dict[str, Any], batch: Batch) -> tuple[float, int]:
        x = _present(batch.tokens, model["spec"].vocab_size)
        p = _sigmoid(x @ model["w"] + model["b"][0])
        error = (p - batch.labels) / len(batch)
        model["w"] -= model["spec"].params["lr"] * (x.T @ error)
        model["b"] -= model["spec"].params["lr"] * error.sum()
        loss = -np.mean(batch.labels * np.log(p + 1e-7) + (1 - batch.labels) * np.log(1 - p + 1e-7))
        return float(loss), int(((p > 0.5) == (batch.labels > 0.5)).sum())

    @hookimpl
    def qa_evaluate(self, model: dict[str, Any], data: EncodedSplit, batch_size: int) -> np.ndarray:
        return _sigmoid(_present(data.tokens, model["spec"].vocab_size) @ model["w"] + model["b"][0])

    @hookimpl
    def qa_save_checkpoint(self, model: dict[str, Any], path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> bool:
        with open(path, "wb") as handle:
            np.savez(handle, w=model["w"], b=model["b"], vocab=np.array(spec.vocab_hash), plugin=np.array(TINY_MODEL))
        return True

    @hookimpl
    def qa_load_checkpoint(self, path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> dict[str, Any]:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from None
        if str(arrays.get("plugin")) != TINY_MODEL or str(arrays.get("vocab")) != spec.vocab_hash:
            raise CheckpointError(f"{path}: not a {TINY_MODEL} checkpoint for this vocabulary")
        return {"w": arrays["w"], "b": arrays["b"], "spec": spec}


class Interrupter:
    """A tracker that raises KeyboardInterrupt once epoch ``after_epoch``'s checkpoint is written
    (the best/top-k summary follows the checkpoint), as Ctrl-C between two epochs would."""

    def __init__(self, after_epoch: int):
        self.after_epoch = after_epoch

    @classmethod
    def install(cls, manager: Any, after_epoch: int) -> None:
        manager.unregister(INTERRUPTER)
        record = manager.register(cls(after_epoch), INTERRUPTER)
        assert record.error is None, record.error

    @hookimpl
    def qa_describe(self) -> PluginInfo:
        # On the training thread, so the interrupt lands there, as a signal's would.
        return PluginInfo(kind="tracker", description="qa.testing: interrupts a run", threaded=False)

    @hookimpl
    def qa_log_summary(self, run: RunContext, values: Mapping[str, Any], step: int) -> None:
        if step == self.after_epoch and run.resumed_after_epoch is None and any(k.startswith("top_epochs/") for k in values):
            raise KeyboardInterrupt


@dataclass(frozen=True)
class HookCall:
    hook: str
    step: int | None
    resumed_after_epoch: int | None
    tracker: str | None


class HookRecorder:
    """Records the tracker hook calls that reach plugin ``name`` (any thread), through pluggy's
    call monitoring; ``fail`` may make one call raise instead, as a broken client would."""

    def __init__(self, manager: Any, name: str, fail: Callable[[HookCall], bool] | None = None):
        from ..plugins import TRACKER_HOOKS

        self.name, self.fail, self.calls = name, fail, []
        self._lock = threading.Lock()
        self._hooks = set(TRACKER_HOOKS)
        self._undo = manager.pm.add_hookcall_monitoring(self._before, lambda *args: None)

    def _before(self, hook_name: str, hook_impls: list, kwargs: Mapping[str, Any]) -> None:
        if hook_name not in self._hooks or not any(impl.plugin_name == self.name for impl in hook_impls):
            return
        run = kwargs.get("run")
        call = HookCall(hook_name, kwargs.get("step"), getattr(run, "resumed_after_epoch", None), getattr(run, "tracker", None))
        with self._lock:
            self.calls.append(call)
        if self.fail is not None and self.fail(call):
            raise ConnectionError(f"{hook_name} failed (injected by qa_core.testing)")

    def close(self) -> None:
        self._undo()

    def hooks(self) -> list[str]:
        return [call.hook for call in self.calls]

    def to_json(self) -> str:
        return json.dumps([call.__dict__ for call in self.calls])
