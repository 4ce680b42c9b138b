"""The transformer plugin through its hooks: training, evaluation, checkpoints, parameters.

Everything is real: the plugin is found through its entry point, trained with torch on tiny
generated stories, and its checkpoints are real files in ``tmp_path``.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from qa_core import CheckpointError, ConfigError, ModelSpec
from qa_core.plugins import ModelPlugin


def train_epochs(model_plugin: ModelPlugin, model, data, epochs: int, batch_size: int = 16) -> list[float]:
    """Mean training loss of each epoch (the same fixed order every epoch)."""
    means = []
    for _ in range(epochs):
        losses = [float(model_plugin.train_step(model, batch)[0]) for batch in data.batches(batch_size)]
        means.append(float(np.mean(losses)))
    return means


# -------------------------------------------------------------------------------------------------
# training and evaluation
# -------------------------------------------------------------------------------------------------


def test_loss_decreases_on_a_tiny_dataset(model_plugin, tiny_data, make_spec):
    model = model_plugin.build(make_spec(dropout=0.0, lr=0.01))
    losses = train_epochs(model_plugin, model, tiny_data.train, epochs=12)
    # 96 stories and a model of a few thousand weights: it must at least memorise them.
    assert losses[-1] < 0.8 * losses[0], losses


def test_train_step_returns_device_tensors_not_python_floats(model_plugin, tiny_data, make_spec):
    model = model_plugin.build(make_spec())
    batch = next(tiny_data.train.batches(16))
    loss, correct = model_plugin.train_step(model, batch)
    # Detached 0-d tensors: the core float()s them only when it needs the number.
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0 and not loss.requires_grad
    assert isinstance(correct, torch.Tensor) and 0 <= int(correct) <= len(batch)
    assert 0.0 < float(loss) < 5.0


def test_evaluate_returns_probabilities_in_the_stored_order(model_plugin, tiny_data, make_spec):
    model = model_plugin.build(make_spec())
    train_epochs(model_plugin, model, tiny_data.train, epochs=2)
    probs = model_plugin.evaluate(model, tiny_data.val, 7)  # an odd batch size: a ragged last batch
    assert isinstance(probs, np.ndarray) and probs.shape == (len(tiny_data.val),)
    assert np.all((probs >= 0) & (probs <= 1))
    assert np.unique(probs).size > 1  # not a constant
    # Evaluation sorts rows by length internally; the answer must still follow the split's order.
    reverse = np.arange(len(tiny_data.val))[::-1]
    probs_reversed = model_plugin.evaluate(model, tiny_data.val.take(reverse), 16)
    np.testing.assert_allclose(probs_reversed, probs[reverse], rtol=0, atol=1e-6)


def test_trimming_trailing_padding_changes_no_prediction(model_plugin, tiny_data, make_spec):
    """Batches are cut to their longest row; the full padded width must give the same logits."""
    model = model_plugin.build(make_spec())
    train_epochs(model_plugin, model, tiny_data.train, epochs=1)
    model.network.eval()
    short_rows = np.flatnonzero(tiny_data.val.lengths < tiny_data.val.max_len)
    assert short_rows.size >= 2
    batch = tiny_data.val.take(short_rows)
    width = int(batch.lengths.max())
    tokens = torch.from_numpy(batch.tokens).long()
    lengths = torch.from_numpy(batch.lengths).long()
    with torch.inference_mode():
        full = model.network(tokens, lengths)
        trimmed = model.network(tokens[:, :width], lengths)
    torch.testing.assert_close(trimmed, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"pooling": "mean", "question_match": "false", "conv_kernel": "0", "distance_bias": "0"}, {"pooling": "cls"}],
    ids=["defaults", "plain-transformer", "cls"],
)
def test_padding_never_changes_a_row(model_plugin, tiny_data, make_spec, overrides):
    """A row scored alone and inside a batch padded by a longer row gives the same probability:
    the mask, the pooling, the match ids and the convolution all ignore padding."""
    model = model_plugin.build(make_spec(**overrides))
    order = np.argsort(tiny_data.val.lengths)
    short, long = order[:1], order[-1:]
    pair = tiny_data.val.take(np.concatenate([short, long]))
    alone = model_plugin.evaluate(model, tiny_data.val.take(short), 1)
    together = model_plugin.evaluate(model, pair, 2)
    assert pair.lengths[0] < pair.lengths[1]
    np.testing.assert_allclose(together[0], alone[0], rtol=0, atol=1e-5)


def test_match_ids_mark_story_words_that_the_question_repeats():
    from qa_transformer_torch.network import MATCH_WORDS, QATransformer

    # story: 5 mary 6 kitchen 7 | SEP | question: 8 mary 9 kitchen 10, then padding
    tokens = torch.tensor([[5, 11, 6, 7, 2, 8, 11, 9, 6, 10, 0, 0]])
    lengths = torch.tensor([10])
    padding = torch.arange(12) >= lengths.unsqueeze(1)
    ids = QATransformer.match_ids(tokens, lengths, padding)[0].tolist()
    # "mary" (11) is the question's 4th word from the end -> id 4; "kitchen" (6) the 2nd -> id 2.
    assert ids[:4] == [0, 4, 2, 0]
    assert ids[4:10] == [MATCH_WORDS + 1] * 6  # SEP and the question: one id of their own
    assert ids[10:] == [0, 0]  # padding
    # Without SEP there is no question: nothing is marked.
    assert QATransformer.match_ids(tokens.masked_fill(tokens == 2, 3), lengths, padding).sum() == 0


def test_evaluation_leaves_training_mode_to_the_next_step(model_plugin, tiny_data, make_spec):
    model = model_plugin.build(make_spec())
    batch = next(tiny_data.train.batches(16))
    model_plugin.evaluate(model, tiny_data.val, 32)
    assert not model.network.training
    model_plugin.train_step(model, batch)
    assert model.network.training  # dropout is back on


def test_the_same_seed_gives_the_same_predictions(model_plugin, tiny_data, make_spec):
    def run(seed: int) -> np.ndarray:
        model = model_plugin.build(make_spec(seed=seed))
        train_epochs(model_plugin, model, tiny_data.train, epochs=2)  # dropout draws from the seed too
        return model_plugin.evaluate(model, tiny_data.val, 16)

    first, again, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.parametrize("weight_decay, optimizer", [(0.0, "Adam"), (0.01, "AdamW")])
def test_weight_decay_selects_adamw(model_plugin, make_spec, weight_decay, optimizer):
    model = model_plugin.build(make_spec(weight_decay=weight_decay))
    assert type(model.optimizer).__name__ == optimizer
    assert model.optimizer.param_groups[0]["weight_decay"] == weight_decay


def test_device_auto_resolves_to_an_available_device(model_plugin, make_spec):
    model = model_plugin.build(make_spec(device="auto"))
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert model.device.type == expected
    assert next(model.network.parameters()).device.type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_an_unavailable_device_is_a_clear_config_error(model_plugin, make_spec):
    with pytest.raises(ConfigError, match=r"device=cuda: CUDA is not available"):
        model_plugin.build(make_spec(device="cuda"))


# -------------------------------------------------------------------------------------------------
# checkpoints
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def saved(model_plugin, tiny_data, make_spec, tmp_path):
    """A model trained for one epoch and its checkpoint file (written through the hook)."""
    spec = make_spec()
    model = model_plugin.build(spec)
    train_epochs(model_plugin, model, tiny_data.train, epochs=1)
    path = tmp_path / "model.pt"
    meta = {"epoch": 1, "metrics": {"val_accuracy": np.float64(0.5)}}  # numpy values must not poison the file
    assert model_plugin.save(model, path, spec, meta) is True
    return model, spec, path


def test_save_then_load_gives_identical_predictions(model_plugin, tiny_data, saved):
    model, spec, path = saved
    loaded = model_plugin.load(path, spec, {})
    np.testing.assert_array_equal(model_plugin.evaluate(loaded, tiny_data.val, 16), model_plugin.evaluate(model, tiny_data.val, 16))
    assert loaded.epoch == 1
    # The optimizer state comes back too (Adam's moments), so training can resume where it was.
    original, restored = model.optimizer.state_dict()["state"], loaded.optimizer.state_dict()["state"]
    assert original.keys() == restored.keys() and original
    for key in original:
        torch.testing.assert_close(restored[key]["exp_avg"], original[key]["exp_avg"])


def test_checkpoint_holds_everything_a_resume_needs_and_loads_safely(saved):
    _, spec, path = saved
    state = torch.load(path, weights_only=True)  # plain values and tensors only
    assert state["plugin"] == "transformer" and state["vocab_hash"] == spec.vocab_hash
    assert state["epoch"] == 1 and state["params"] == dict(spec.params)
    assert {"model", "optimizer", "rng"} <= state.keys()
    assert isinstance(state["rng"]["torch"], torch.Tensor)


def test_loading_restores_the_rng_so_a_resumed_run_continues_the_same_stream(model_plugin, saved):
    _, spec, path = saved
    expected = torch.rand(4)  # what the stream gives right after the save...
    torch.manual_seed(12345)  # ...then the process moves on
    model_plugin.load(path, spec, {})
    torch.testing.assert_close(torch.rand(4), expected)  # loading rewinds it to the save point


def test_a_checkpoint_of_another_plugin_is_refused(model_plugin, saved, tmp_path):
    _, spec, path = saved
    with pytest.raises(CheckpointError, match=r"written by plugin 'transformer'.*not by 'lstm'"):
        model_plugin.load(path, ModelSpec(**{**vars(spec), "plugin": "lstm"}), {})
    # The same file relabelled as another plugin's: the plugin checks what is inside the file.
    state = torch.load(path, weights_only=True)
    state["plugin"] = "lstm"
    other = tmp_path / "other.pt"
    torch.save(state, other)
    with pytest.raises(CheckpointError, match=r"written by plugin 'lstm'"):
        model_plugin.load(other, spec, {})


def test_a_checkpoint_for_another_vocabulary_is_refused(model_plugin, saved):
    _, spec, path = saved
    with pytest.raises(CheckpointError, match="vocabulary mismatch"):
        model_plugin.load(path, ModelSpec(**{**vars(spec), "vocab_hash": "0" * 64}), {})


def test_a_checkpoint_of_another_shape_is_refused(model_plugin, saved, make_spec):
    _, _, path = saved
    with pytest.raises(CheckpointError, match=r"shape mismatch: checkpoint has d_model=16 \(expected 32\)"):
        model_plugin.load(path, make_spec(d_model=32), {})


def test_files_that_are_not_our_checkpoints_are_refused(model_plugin, saved, tmp_path):
    model, spec, path = saved
    bare = tmp_path / "bare.pt"
    torch.save(model.network.state_dict(), bare)
    with pytest.raises(CheckpointError, match="not a qa checkpoint"):
        model_plugin.load(bare, spec, {})

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="unreadable"):
        model_plugin.load(truncated, spec, {})

    # A pickled object that is not plain data: weights_only refuses it, and so do we, clearly.
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": 1, "plugin": "transformer", "payload": subprocess.CompletedProcess(["x"], 0)}, unsafe)
    with pytest.raises(CheckpointError, match="refused: holds Python objects"):
        model_plugin.load(unsafe, spec, {})


# -------------------------------------------------------------------------------------------------
# parameters and the entry point
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, message",
    [
        ({"d_model": "64", "heads": "3"}, r"heads=3 must divide d_model=64"),
        ({"dropout": "-0.1"}, r"--param dropout: must be >= 0.0, got -0.1"),
        ({"lr": "0"}, r"--param lr: must be > 0, got 0.0"),
        ({"lr": "nan"}, r"--param lr: must be a finite number"),
        ({"device": "gpu"}, r"--param device: expected auto, cpu, mps, cuda or cuda:<index>, got 'gpu'"),
        ({"pooling": "max"}, r"--param pooling: expected one of"),
        ({"conv_kernel": "4"}, r"--param conv_kernel: must be odd"),
        ({"distance_bias": "-1"}, r"--param distance_bias: must be >= 0.0"),
        ({"question_match": "maybe"}, r"--param question_match: expected true/false"),
        ({"layers": "two"}, r"--param layers: expected int, got 'two'"),
        ({"max_len": "2"}, r"--param max_len: must be >= 4"),
        ({"dim": "64"}, r"--param dim: unknown parameter for plugin 'transformer'"),
    ],
)
def test_bad_parameters_are_refused_with_one_clear_message(model_plugin, given, message):
    with pytest.raises(ConfigError, match=message):
        model_plugin.resolve_params(given)


def test_every_parameter_has_a_default_that_passes_its_own_checks(model_plugin):
    params = model_plugin.resolve_params({})
    assert set(params) >= {"d_model", "heads", "layers", "ff_dim", "dropout", "max_len", "lr", "weight_decay", "grad_clip", "device"}
    # Re-submitting every default as a string (as --param would) must be accepted unchanged.
    assert model_plugin.resolve_params({k: str(v) for k, v in params.items()}) == params
    assert model_plugin.info.checkpoint_suffix == ".pt" and model_plugin.info.framework == "torch"


def test_the_entry_point_does_not_import_torch():
    code = (
        "import sys; import qa_transformer_torch.plugin as p; info = p.qa_describe(); "
        "assert info.kind == 'model' and info.params; "
        "assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
