"""The training kit in the transformer: qa_core.testing's contract (schedules, resume, plateau,
bf16, metrics), and what is torch's own: real bfloat16 compute, float16 refused off CUDA,
accumulation exact to 5 decimals, the gradient norm's mean (real torch, tiny data)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from qa_core import ConfigError
from qa_core.testing.training_kit import TrainingKitContract


class TestTrainingKit(TrainingKitContract):
    plugin = "transformer"
    params = {"d_model": "16", "heads": "2", "layers": "1", "ff_dim": "32", "max_len": "64", "dropout": "0", "lr": "0.003", "device": "cpu"}

    def train(self, plugin, model, split, batch_size, first_epoch, epochs):
        rates, losses = [], []
        for _ in range(epochs):
            epoch_losses = []
            for batch in split.batches(batch_size):
                epoch_losses.append(float(plugin.train_step(model, batch)[0]))
                rates.append(model.last_lr)
            losses.append(float(np.mean(epoch_losses)))
        return rates, losses

    def current_lr(self, model):
        return model.optimizer.param_groups[0]["lr"]

    def test_bf16_really_computes_in_bfloat16(self, kit_plugin, kit_data):
        seen: set[torch.dtype] = set()
        for precision in ("32", "bf16"):
            model = kit_plugin.build(self.spec(kit_plugin, kit_data, 1, precision=precision))
            hook = model.network.head.register_forward_hook(lambda module, args, out: seen.add(out.dtype))
            kit_plugin.train_step(model, next(kit_data.splits["train"].batches(16)))
            hook.remove()
        assert seen == {torch.float32, torch.bfloat16}

    @pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
    def test_float16_without_cuda_is_refused_with_one_clear_line(self, kit_plugin, kit_data):
        with pytest.raises(ConfigError, match=r"^--param precision=16: float16 training needs a CUDA device .* use precision=bf16"):
            # when the params are resolved, before qa run writes or encodes anything
            kit_plugin.resolve_params({**self.params, "precision": "16"})

    def test_accumulating_2_x_16_rows_steps_exactly_as_a_batch_of_32(self, kit_plugin, kit_data):
        # 88 rows: two full groups of 32 and a short one of 24 (16 + 8), rescaled to a mean of its rows.
        data = kit_data.splits["train"].take(np.arange(88))
        models = {}
        for batch_size, accumulation in ((32, 1), (16, 2)):
            # The plain encoder: its kernels give the same float sums for 16- and 32-row batches.
            # The memory network's batch-wide grids do not (last bits), which Adam's normalised
            # steps magnify; its half-batch gradients are checked in test_memory.py instead.
            spec = self.spec(kit_plugin, kit_data, 2, grad_clip=0, gradient_accumulation_steps=accumulation, architecture="plain")
            spec = dataclasses.replace(spec, batch_size=batch_size, steps_per_epoch=data.num_batches(batch_size))
            models[accumulation] = kit_plugin.build(spec)
            self.train(kit_plugin, models[accumulation], data, batch_size, 1, 2)
        whole, accumulated = models[1], models[2]
        assert accumulated.optimizer.state_dict()["state"][0]["step"] == whole.optimizer.state_dict()["state"][0]["step"] == 6
        for a, b in zip(whole.network.parameters(), accumulated.network.parameters()):
            np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=0, atol=1e-5)
        val = kit_data.splits["val"]
        np.testing.assert_allclose(kit_plugin.evaluate(accumulated, val, 32), kit_plugin.evaluate(whole, val, 32), rtol=0, atol=1e-5)

    def test_grad_norm_is_the_mean_pre_clip_norm_of_the_steps_since_the_last_report(self, kit_plugin, kit_data):
        model = kit_plugin.build(self.spec(kit_plugin, kit_data, 1, grad_clip=0.001))
        norms = []
        for batch in list(kit_data.splits["train"].batches(16))[:3]:
            kit_plugin.train_step(model, batch)
            norms.append(float(model.norm_sum) - sum(norms))  # summed on the device, step by step
        values = kit_plugin.model_metrics(model)
        assert values["grad_norm"] == pytest.approx(np.mean(norms)) and values["grad_norm"] > 0.001  # before clipping
