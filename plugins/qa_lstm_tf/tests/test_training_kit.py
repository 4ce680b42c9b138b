"""The training kit through the hooks: learning-rate schedules, precision, gradient accumulation,
the model's own metrics, and their state across a checkpoint (real TensorFlow/Keras, tiny data)."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
from qa_core import ConfigError, training_kit

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed"),
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]


def planned(make_spec, data, epochs: int, batch_size: int, **overrides):
    """A spec with the training plan the core passes (epochs, batch size, steps per epoch)."""
    spec = make_spec(**overrides)
    return dataclasses.replace(spec, epochs=epochs, batch_size=batch_size, steps_per_epoch=data.num_batches(batch_size))


def run_epochs(model_plugin, model, data, batch_size: int, epochs: int, first: int = 1) -> tuple[list[float], list[float]]:
    """Learning rate of every optimizer step and mean loss of every epoch.

    Keras evaluates the schedule at the step about to run, so the rate read after a batch is
    the next step's; the one read before the first batch is step 0's.
    """
    optimizer = model.model.optimizer
    rates, losses = [float(optimizer.learning_rate)], []
    for epoch in range(first, first + epochs):
        result = model_plugin.train_epoch(model, data, batch_size, epoch, lambda done, loss: rates.append(float(optimizer.learning_rate)))
        losses.append(result["loss"])
    return rates[:-1], losses


def expected_rates(lr: float, total: int, warmup: int, decay: str) -> list[float]:
    """The formula both plugins follow (tests/test_training_kit.py checks it by hand)."""
    return [lr * training_kit.lr_factor(step, total, warmup, decay) for step in range(total)]


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_warmup_then_decay_gives_the_expected_learning_rate_at_every_step(model_plugin, tiny_data, make_spec, decay):
    spec = planned(make_spec, tiny_data.train, epochs=2, batch_size=16, lr=0.01, schedule=decay, warmup_steps=3)
    model = model_plugin.build(spec)
    rates, _ = run_epochs(model_plugin, model, tiny_data.train, 16, epochs=2)
    assert len(rates) == 12  # 96 rows / 16, two epochs
    np.testing.assert_allclose(rates, expected_rates(0.01, 12, 3, decay), rtol=1e-6)
    assert model_plugin.model_metrics(model)["lr"] == pytest.approx(rates[-1], rel=1e-6)


def test_a_resumed_run_continues_the_schedule_the_dropout_stream_and_the_losses_exactly(model_plugin, tiny_data, make_spec, tmp_path):
    spec = planned(make_spec, tiny_data.train, epochs=3, batch_size=16, schedule="cosine", warmup_steps=4, dropout=0.3)
    straight = model_plugin.build(spec)
    rates, losses = run_epochs(model_plugin, straight, tiny_data.train, 16, epochs=3)

    first = model_plugin.build(spec)
    rates_1, losses_1 = run_epochs(model_plugin, first, tiny_data.train, 16, epochs=1)
    path = tmp_path / "e001.weights.h5"
    model_plugin.save(first, path, spec, {"epoch": 1})
    resumed = model_plugin.load(path, spec, {"epoch": 1})
    rates_2, losses_2 = run_epochs(model_plugin, resumed, tiny_data.train, 16, epochs=2, first=2)
    np.testing.assert_array_equal(rates_1 + rates_2, rates)
    np.testing.assert_array_equal(losses_1 + losses_2, losses)
    # and the two models end identical (the same dropout masks all the way)
    np.testing.assert_array_equal(model_plugin.evaluate(resumed, tiny_data.val, 32), model_plugin.evaluate(straight, tiny_data.val, 32))


def test_reduce_on_plateau_lowers_the_rate_after_patience_epochs_and_keeps_its_count_in_the_checkpoint(
    model_plugin, tiny_data, make_spec, tmp_path
):
    spec = planned(make_spec, tiny_data.train, epochs=5, batch_size=16, lr=0.01, schedule="plateau", plateau_patience=2, plateau_factor=0.5)
    model = model_plugin.build(spec)
    lr = lambda m: float(m.model.optimizer.learning_rate)  # noqa: E731
    model_plugin.evaluate(model, tiny_data.val, 32)  # the first validation loss: the best so far
    model_plugin.evaluate(model, tiny_data.val, 32)  # no better (same weights): 1 epoch stalled
    assert lr(model) == pytest.approx(0.01)
    model_plugin.evaluate(model, tiny_data.train, 32)  # not the validation split: not counted
    path = tmp_path / "plateau.weights.h5"
    model_plugin.save(model, path, spec, {"epoch": 2})
    restored = model_plugin.load(path, spec, {})
    for handle in (model, restored):
        model_plugin.evaluate(handle, tiny_data.val, 32)  # the second stalled epoch: lr drops
        assert lr(handle) == pytest.approx(0.005)


def test_bf16_trains_on_the_cpu_with_a_loss_close_to_float32(model_plugin, tiny_data, make_spec):
    losses = {}
    for precision in ("32", "bf16"):
        spec = planned(make_spec, tiny_data.train, epochs=1, batch_size=16, precision=precision)
        model = model_plugin.build(spec)
        compute = {layer.dtype_policy.compute_dtype for layer in model.model.layers if layer.name.startswith("bidirectional")}
        assert compute == {"float32" if precision == "32" else "bfloat16"}
        losses[precision] = run_epochs(model_plugin, model, tiny_data.train, 16, epochs=1)[1][0]
        probs = model_plugin.evaluate(model, tiny_data.val, 32)
        assert probs.dtype == np.float32 and np.all((probs >= 0) & (probs <= 1))
    assert losses["bf16"] == pytest.approx(losses["32"], abs=0.02), losses
    # Building a bf16 model leaves Keras' global policy alone for the next model in the process.
    import keras

    assert keras.config.dtype_policy().name == "float32"


def test_float16_without_a_gpu_is_refused_with_one_clear_line(model_plugin, make_spec):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match=r"^--param precision=16: float16 training needs a GPU .* use precision=bf16"):
        model_plugin.build(make_spec(precision="16"))


def test_accumulating_2_x_16_rows_gives_the_gradient_of_a_batch_of_32(model_plugin, tiny_data, make_spec):
    """Keras' own accumulation, checked where it is exact: Adam's first moment after one step
    is (1 - beta_1) x the step's gradient. (The weights themselves are not compared: Adam's
    first step moves every weight by about lr x sign(gradient), so float rounding in a gradient
    that cancels to ~0 moves a weight by up to 2 lr either way.)"""
    data = tiny_data.train.take(np.arange(32))
    whole = model_plugin.build(planned(make_spec, data, epochs=1, batch_size=32, clipnorm=0))
    accumulated = model_plugin.build(planned(make_spec, data, epochs=1, batch_size=16, clipnorm=0, gradient_accumulation_steps=2))
    run_epochs(model_plugin, whole, data, 32, epochs=1)
    run_epochs(model_plugin, accumulated, data, 16, epochs=1)
    assert int(accumulated.model.optimizer.iterations) == int(whole.model.optimizer.iterations) == 1
    scale = max(float(np.abs(m.numpy()).max()) for m in whole.model.optimizer._momentums)
    assert scale > 0
    for a, b in zip(whole.model.optimizer._momentums, accumulated.model.optimizer._momentums):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-5 * scale)


def test_model_metrics_report_the_rate_and_the_mean_gradient_norm_since_the_last_call(model_plugin, tiny_data, make_spec):
    model = model_plugin.build(planned(make_spec, tiny_data.train, epochs=1, batch_size=16))
    run_epochs(model_plugin, model, tiny_data.train, 16, epochs=1)
    assert float(model.grad_norm.count) == 6  # one norm per batch, summed on the device
    values = model_plugin.model_metrics(model)
    assert values["lr"] == pytest.approx(0.01)
    assert np.isfinite(values["grad_norm"]) and values["grad_norm"] > 0
    assert "grad_norm" not in model_plugin.model_metrics(model)  # nothing new since the last call


def test_the_training_kit_params_are_offered_and_checked(model_plugin):
    assert set(training_kit.NAMES) <= {param.name for param in model_plugin.info.params}
    with pytest.raises(ConfigError, match=r"warmup_steps=10 does not combine with schedule=plateau"):
        model_plugin.resolve_params({"schedule": "plateau", "warmup_steps": "10"})
