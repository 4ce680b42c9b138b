"""The training kit through the hooks: learning-rate schedules, precision, gradient accumulation,
the model's own metrics, and their state across a checkpoint (real torch, tiny data)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from qa_core import ConfigError, training_kit


def planned(make_spec, data, epochs: int, batch_size: int, **overrides):
    """A spec with the training plan the core passes (epochs, batch size, steps per epoch)."""
    spec = make_spec(**overrides)
    return dataclasses.replace(spec, epochs=epochs, batch_size=batch_size, steps_per_epoch=data.num_batches(batch_size))


def run_epochs(model_plugin, model, data, batch_size: int, epochs: int) -> tuple[list[float], list[float]]:
    """Learning rate of every optimizer step and mean loss of every epoch."""
    rates, losses = [], []
    for _ in range(epochs):
        epoch_losses = []
        for batch in data.batches(batch_size):
            epoch_losses.append(float(model_plugin.train_step(model, batch)[0]))
            rates.append(model.last_lr)
        losses.append(float(np.mean(epoch_losses)))
    return rates, losses


def expected_rates(lr: float, total: int, warmup: int, decay: str) -> list[float]:
    """The formula both plugins follow (tests/test_training_kit.py checks it by hand)."""
    return [lr * training_kit.lr_factor(step, total, warmup, decay) for step in range(total)]


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_warmup_then_decay_gives_the_expected_learning_rate_at_every_step(model_plugin, tiny_data, make_spec, decay):
    spec = planned(make_spec, tiny_data.train, epochs=2, batch_size=16, lr=0.01, schedule=decay, warmup_steps=3)
    model = model_plugin.build(spec)
    rates, _ = run_epochs(model_plugin, model, tiny_data.train, 16, epochs=2)
    assert len(rates) == 12  # 96 rows / 16, two epochs
    np.testing.assert_allclose(rates, expected_rates(0.01, 12, 3, decay), rtol=1e-12)
    assert model_plugin.model_metrics(model)["lr"] == pytest.approx(rates[-1])


def test_a_resumed_run_continues_the_schedule_and_the_losses_exactly(model_plugin, tiny_data, make_spec, tmp_path):
    spec = planned(make_spec, tiny_data.train, epochs=3, batch_size=16, schedule="cosine", warmup_steps=4, dropout=0.2)
    straight = model_plugin.build(spec)
    rates, losses = run_epochs(model_plugin, straight, tiny_data.train, 16, epochs=3)

    first = model_plugin.build(spec)
    rates_1, losses_1 = run_epochs(model_plugin, first, tiny_data.train, 16, epochs=1)
    path = tmp_path / "e001.pt"
    model_plugin.save(first, path, spec, {"epoch": 1})
    torch.manual_seed(999)  # the process moves on; the checkpoint must bring the stream back
    resumed = model_plugin.load(path, spec, {"epoch": 1})
    rates_2, losses_2 = run_epochs(model_plugin, resumed, tiny_data.train, 16, epochs=2)
    assert rates_1 + rates_2 == rates
    assert losses_1 + losses_2 == losses


def test_reduce_on_plateau_lowers_the_rate_after_patience_epochs_and_keeps_its_count_in_the_checkpoint(
    model_plugin, tiny_data, make_spec, tmp_path
):
    spec = planned(make_spec, tiny_data.train, epochs=5, batch_size=16, lr=0.01, schedule="plateau", plateau_patience=2, plateau_factor=0.5)
    model = model_plugin.build(spec)
    lr = lambda m: m.optimizer.param_groups[0]["lr"]  # noqa: E731
    model_plugin.evaluate(model, tiny_data.val, 32)  # the first validation loss: the best so far
    model_plugin.evaluate(model, tiny_data.val, 32)  # no better (same weights): 1 epoch stalled
    assert lr(model) == 0.01
    model_plugin.evaluate(model, tiny_data.train, 32)  # not the validation split: not counted
    path = tmp_path / "plateau.pt"
    model_plugin.save(model, path, spec, {"epoch": 2})
    restored = model_plugin.load(path, spec, {})
    for handle in (model, restored):
        model_plugin.evaluate(handle, tiny_data.val, 32)  # the second stalled epoch: lr drops
        assert lr(handle) == pytest.approx(0.005)


def test_bf16_trains_on_the_cpu_with_a_loss_close_to_float32(model_plugin, tiny_data, make_spec):
    losses = {}
    seen: set[torch.dtype] = set()
    for precision in ("32", "bf16"):
        spec = planned(make_spec, tiny_data.train, epochs=1, batch_size=16, precision=precision, dropout=0.0)
        model = model_plugin.build(spec)
        hook = model.network.head.register_forward_hook(lambda module, args, out: seen.add(out.dtype))
        losses[precision] = run_epochs(model_plugin, model, tiny_data.train, 16, epochs=1)[1][0]
        hook.remove()
        probs = model_plugin.evaluate(model, tiny_data.val, 32)
        assert probs.dtype == np.float32 and np.all((probs >= 0) & (probs <= 1))
    assert seen == {torch.float32, torch.bfloat16}  # bf16 really ran in bfloat16
    assert losses["bf16"] == pytest.approx(losses["32"], abs=0.02), losses


def test_float16_without_cuda_is_refused_with_one_clear_line(model_plugin, make_spec):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match=r"^--param precision=16: float16 training needs a CUDA device .* use precision=bf16"):
        model_plugin.build(make_spec(precision="16"))


def test_accumulating_2_x_16_rows_steps_exactly_as_a_batch_of_32(model_plugin, tiny_data, make_spec):
    # 88 rows: two full groups of 32 and a short one of 24 (16 + 8), rescaled to a mean of its rows.
    data = tiny_data.train.take(np.arange(88))
    whole = model_plugin.build(planned(make_spec, data, epochs=2, batch_size=32, dropout=0.0, grad_clip=0.0))
    accumulated = model_plugin.build(planned(make_spec, data, epochs=2, batch_size=16, dropout=0.0, grad_clip=0.0, gradient_accumulation_steps=2))
    run_epochs(model_plugin, whole, data, 32, epochs=2)
    run_epochs(model_plugin, accumulated, data, 16, epochs=2)
    assert accumulated.optimizer.state_dict()["state"][0]["step"] == whole.optimizer.state_dict()["state"][0]["step"] == 6
    for a, b in zip(whole.network.parameters(), accumulated.network.parameters()):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(model_plugin.evaluate(accumulated, tiny_data.val, 32), model_plugin.evaluate(whole, tiny_data.val, 32), rtol=0, atol=1e-5)


def test_model_metrics_report_the_rate_and_the_mean_gradient_norm_since_the_last_call(model_plugin, tiny_data, make_spec):
    model = model_plugin.build(planned(make_spec, tiny_data.train, epochs=1, batch_size=16, grad_clip=0.5))
    batches = list(tiny_data.train.batches(16))
    norms = []
    for batch in batches[:3]:
        model_plugin.train_step(model, batch)
        norms.append(float(model.norm_sum) - sum(norms))
    values = model_plugin.model_metrics(model)
    assert values["lr"] == pytest.approx(0.003)
    assert values["grad_norm"] == pytest.approx(np.mean(norms)) and values["grad_norm"] > 0.5  # before clipping
    assert "grad_norm" not in model_plugin.model_metrics(model)  # nothing new since the last call


def test_the_training_kit_params_are_offered_and_checked(model_plugin):
    assert set(training_kit.NAMES) <= {param.name for param in model_plugin.info.params}
    with pytest.raises(ConfigError, match=r"warmup_steps=10 does not combine with schedule=plateau"):
        model_plugin.resolve_params({"schedule": "plateau", "warmup_steps": "10"})
