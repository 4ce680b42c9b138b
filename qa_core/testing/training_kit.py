"""The training kit's contract (:mod:`qa_core.training_kit`: schedules, precision, accumulation,
the model's own metrics) for a framework plugin that offers it, as a test class::

    from qa_core.testing.training_kit import TrainingKitContract

    class TestTrainingKit(TrainingKitContract):
        plugin = "mymodel"
        params = {"hidden": "8", "lr": "0.01"}

        def train(self, plugin, model, split, batch_size, first_epoch, epochs):
            ...  # -> (learning rate of every optimizer step, mean loss of every epoch)

        def current_lr(self, model):
            ...  # the rate the optimizer would use now

The tests build the plugin through its entry point on :func:`~qa_core.testing.tiny_data` with a
training plan in the spec (``epochs``, ``batch_size``, ``steps_per_epoch``), as ``qa run`` does.
What differs per framework (how a rate is read, fp16 without a GPU, how accumulation is checked)
stays in the plugin's own tests.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import pytest

from .. import training_kit
from ..errors import ConfigError
from ..plugins import load_plugins
from ..types import ModelSpec
from .data import TinyData, tiny_data


class TrainingKitContract:
    """Schedules give the expected rate at every step and survive a checkpoint exactly; the
    plateau rule counts only validation losses, across a checkpoint; bf16 trains close to
    float32; the model reports its learning rate and gradient norm."""

    plugin: ClassVar[str] = ""
    #: ``--param`` values that make the model tiny; ``lr`` is set by the tests that need it.
    params: ClassVar[Mapping[str, Any]] = {}
    batch_size: ClassVar[int] = 16
    #: How far bf16's mean training loss after one epoch may be from float32's.
    bf16_loss_atol: ClassVar[float] = 0.02

    def train(self, plugin: Any, model: Any, split: Any, batch_size: int, first_epoch: int, epochs: int) -> tuple[list[float], list[float]]:
        """Train ``epochs`` epochs from ``first_epoch``: (the rate of every optimizer step, the
        mean loss of every epoch)."""
        raise NotImplementedError

    def current_lr(self, model: Any) -> float:
        raise NotImplementedError

    # -- fixtures and helpers -----------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def kit_plugin(cls) -> Any:
        return load_plugins().model(cls.plugin)

    @pytest.fixture(scope="class")
    @classmethod
    def kit_data(cls, kit_plugin: Any) -> TinyData:
        return tiny_data(cls.plugin, kit_plugin.resolve_params(dict(cls.params)), batch_size=cls.batch_size)

    def spec(self, plugin: Any, data: TinyData, epochs: int, **overrides: Any) -> ModelSpec:
        """The spec ``qa run --epochs epochs`` would pass, with ``overrides`` as ``--param``s."""
        params = plugin.resolve_params({**{k: str(v) for k, v in self.params.items()}, **{k: str(v) for k, v in overrides.items()}})
        steps = data.splits["train"].num_batches(self.batch_size)
        return dataclasses.replace(data.spec, params=params, epochs=epochs, batch_size=self.batch_size, steps_per_epoch=steps)

    # -- the contract --------------------------------------------------------------------------

    def test_the_kit_params_are_offered_and_checked(self, kit_plugin: Any) -> None:
        assert set(training_kit.NAMES) <= {param.name for param in kit_plugin.info.params}
        with pytest.raises(ConfigError, match=r"warmup_steps=10 does not combine with schedule=plateau"):
            kit_plugin.resolve_params({"schedule": "plateau", "warmup_steps": "10"})

    @pytest.mark.parametrize("decay", ["cosine", "linear"])
    def test_warmup_then_decay_gives_the_expected_rate_at_every_step(self, kit_plugin: Any, kit_data: TinyData, decay: str) -> None:
        spec = self.spec(kit_plugin, kit_data, 2, lr=0.01, schedule=decay, warmup_steps=3)
        model = kit_plugin.build(spec)
        rates, _ = self.train(kit_plugin, model, kit_data.splits["train"], self.batch_size, 1, 2)
        total = 2 * spec.steps_per_epoch
        # The formula itself is checked by hand in qa-core's tests/test_training_kit.py.
        expected = [0.01 * training_kit.lr_factor(step, total, 3, decay) for step in range(total)]
        np.testing.assert_allclose(rates, expected, rtol=1e-6)
        assert rates[0] == pytest.approx(0.01 / 3) and max(rates) == pytest.approx(0.01)
        assert kit_plugin.model_metrics(model)["lr"] == pytest.approx(rates[-1], rel=1e-6)

    def test_a_resumed_run_continues_the_schedule_and_the_losses_exactly(self, kit_plugin: Any, kit_data: TinyData, tmp_path: Path) -> None:
        # Mid-warm-up at the checkpoint, dropout on: the schedule and the random state both matter.
        spec = self.spec(kit_plugin, kit_data, 3, schedule="cosine", warmup_steps=8, dropout=0.3)
        train = kit_data.splits["train"]
        straight = self.train(kit_plugin, kit_plugin.build(spec), train, self.batch_size, 1, 3)
        first = kit_plugin.build(spec)
        rates_1, losses_1 = self.train(kit_plugin, first, train, self.batch_size, 1, 1)
        path = tmp_path / f"e001{kit_plugin.info.checkpoint_suffix}"
        kit_plugin.save(first, path, spec, {"epoch": 1})
        resumed = kit_plugin.load(path, spec, {"epoch": 1})
        rates_2, losses_2 = self.train(kit_plugin, resumed, train, self.batch_size, 2, 2)
        assert (rates_1 + rates_2, losses_1 + losses_2) == straight

    def test_reduce_on_plateau_counts_validation_losses_across_a_checkpoint(self, kit_plugin: Any, kit_data: TinyData, tmp_path: Path) -> None:
        spec = self.spec(kit_plugin, kit_data, 5, lr=0.01, schedule="plateau", plateau_patience=2, plateau_factor=0.5)
        model = kit_plugin.build(spec)
        val = kit_data.splits["val"]
        kit_plugin.evaluate(model, val, 32)  # the first validation loss: the best so far
        kit_plugin.evaluate(model, val, 32)  # no lower (same weights): 1 epoch stalled
        assert self.current_lr(model) == pytest.approx(0.01)
        kit_plugin.evaluate(model, kit_data.splits["train"], 32)  # not the validation split: not counted
        path = tmp_path / f"plateau{kit_plugin.info.checkpoint_suffix}"
        kit_plugin.save(model, path, spec, {"epoch": 2})
        restored = kit_plugin.load(path, spec, {})
        for handle in (model, restored):
            kit_plugin.evaluate(handle, val, 32)  # the second stalled epoch: the rate halves
            assert self.current_lr(handle) == pytest.approx(0.005)

    def test_bf16_trains_on_the_cpu_with_a_loss_close_to_float32(self, kit_plugin: Any, kit_data: TinyData) -> None:
        losses = {}
        for precision in ("32", "bf16"):
            model = kit_plugin.build(self.spec(kit_plugin, kit_data, 1, precision=precision, dropout=0))
            losses[precision] = self.train(kit_plugin, model, kit_data.splits["train"], self.batch_size, 1, 1)[1][0]
            probs = kit_plugin.evaluate(model, kit_data.splits["val"], 32)
            assert probs.dtype == np.float32 and np.all((probs >= 0) & (probs <= 1))
        assert losses["bf16"] == pytest.approx(losses["32"], abs=self.bf16_loss_atol), losses

    def test_model_metrics_report_the_rate_and_a_gradient_norm_once_per_report(self, kit_plugin: Any, kit_data: TinyData) -> None:
        model = kit_plugin.build(self.spec(kit_plugin, kit_data, 1, lr=0.01))
        self.train(kit_plugin, model, kit_data.splits["train"], self.batch_size, 1, 1)
        values = kit_plugin.model_metrics(model)
        assert values["lr"] == pytest.approx(0.01)
        assert np.isfinite(values["grad_norm"]) and values["grad_norm"] > 0
        assert "grad_norm" not in kit_plugin.model_metrics(model)  # nothing new since the last report
