"""The training kit in the LSTM: qa_core.testing's contract (schedules, resume, plateau, bf16,
metrics), and what is Keras' own: the dtype policy, float16 refused without a GPU, Keras'
gradient accumulation, one gradient norm per batch (real TensorFlow/Keras, tiny data)."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
from qa_core import ConfigError
from qa_core.testing.training_kit import TrainingKitContract

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed"),
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]


class TestTrainingKit(TrainingKitContract):
    plugin = "lstm"
    params = {"embedding_dim": "16", "units": "16", "max_len": "48", "lr": "0.01", "dropout": "0"}

    def train(self, plugin, model, split, batch_size, first_epoch, epochs):
        # Keras evaluates the schedule at the step about to run: the rate read after a batch is
        # the next step's, the one read before the first batch is step 0's.
        optimizer = model.model.optimizer
        rates, losses = [float(optimizer.learning_rate)], []
        for epoch in range(first_epoch, first_epoch + epochs):
            result = plugin.train_epoch(model, split, batch_size, epoch, lambda done, loss: rates.append(float(optimizer.learning_rate)))
            losses.append(result["loss"])
        return rates[:-1], losses

    def current_lr(self, model):
        return float(model.model.optimizer.learning_rate)

    def test_bf16_is_keras_mixed_bfloat16_policy_and_leaves_the_global_one_alone(self, kit_plugin, kit_data):
        import keras

        for precision, compute in (("32", "float32"), ("bf16", "bfloat16")):
            model = kit_plugin.build(self.spec(kit_plugin, kit_data, 1, precision=precision)).model
            # Every recurrent layer, nested ones too (the memory network's BiLSTMs live inside its hops layer).
            recurrent = [layer for layer in model._flatten_layers() if "lstm" in layer.name or layer.name.startswith("bidirectional")]
            assert recurrent and {layer.dtype_policy.compute_dtype for layer in recurrent} == {compute}
            assert model.get_layer("answer").dtype_policy.compute_dtype == "float32"  # the output stays float32
        assert keras.config.dtype_policy().name == "float32"

    def test_float16_without_a_gpu_is_refused_with_one_clear_line(self, kit_plugin, kit_data):
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            pytest.skip("this machine has a GPU")
        with pytest.raises(ConfigError, match=r"^--param precision=16: float16 training needs a GPU .* use precision=bf16"):
            # when the params are resolved, before qa run writes or encodes anything
            kit_plugin.resolve_params({**self.params, "precision": "16"})

    def test_accumulating_2_x_16_rows_gives_the_gradient_of_a_batch_of_32(self, kit_plugin, kit_data):
        """Keras' own accumulation, checked where it is exact: Adam's first moment after one step
        is (1 - beta_1) x the step's gradient. (The weights themselves are not compared: Adam's
        first step moves every weight by about lr x sign(gradient), so float rounding in a
        gradient that cancels to ~0 moves a weight by up to 2 lr either way.)"""
        data = kit_data.splits["train"].take(np.arange(32))
        optimizers = []
        for batch_size, accumulation in ((32, 1), (16, 2)):
            spec = self.spec(kit_plugin, kit_data, 1, clipnorm=0, gradient_accumulation_steps=accumulation)
            model = kit_plugin.build(dataclasses.replace(spec, batch_size=batch_size, steps_per_epoch=data.num_batches(batch_size)))
            self.train(kit_plugin, model, data, batch_size, 1, 1)
            optimizers.append(model.model.optimizer)
        whole, accumulated = optimizers
        assert int(accumulated.iterations) == int(whole.iterations) == 1
        scale = max(float(np.abs(m.numpy()).max()) for m in whole._momentums)
        assert scale > 0
        for a, b in zip(whole._momentums, accumulated._momentums):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-5 * scale)

    def test_one_gradient_norm_per_batch_is_summed_on_the_device(self, kit_plugin, kit_data):
        model = kit_plugin.build(self.spec(kit_plugin, kit_data, 1))
        self.train(kit_plugin, model, kit_data.splits["train"], 16, 1, 1)
        assert float(model.grad_norm.count) == kit_data.splits["train"].num_batches(16) and float(model.grad_norm.total) > 0
