"""The ``lstm`` plugin through the core's public API: parameters, training, prediction, checkpoints.

Everything is real (TensorFlow, Keras, h5py, files in tmp_path) and tiny: 96 generated stories,
16-wide layers, 48 tokens. TensorFlow is imported once for the module; the model builds that the
tests share are module-scoped fixtures.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qa_core import CheckpointError, ConfigError, ModelSpec
from qa_core.plugins import load_plugins

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed"),
    # Keras' own h5 writer under numpy 2 (the plugin silences it in its save hook; one test
    # calls Keras directly to make a foreign weights file).
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]


#: Small enough to train in well under a second per epoch on a 2-core CPU.
TINY = {"embedding_dim": "16", "units": "16", "max_len": "48", "lr": "0.01", "dropout": "0"}  # conftest.MAX_LEN


def bce(labels: np.ndarray, probs: np.ndarray) -> float:
    probs = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(probs) + (1 - labels) * np.log(1 - probs)))


def make_spec(lstm, vocab, seed: int = 0, **overrides: str) -> ModelSpec:
    params = lstm.resolve_params({**TINY, **overrides})
    return ModelSpec("lstm", params, len(vocab), params["max_len"], seed, vocab_hash=vocab.sha256)


def train(lstm, spec: ModelSpec, split, epochs: int, batch_size: int = 16):
    model = lstm.build(spec)
    for epoch in range(1, epochs + 1):
        lstm.train_epoch(model, split, batch_size, epoch, lambda done, loss: None)
    return model


@pytest.fixture(scope="module")
def trained(lstm, data):
    """One model trained for two epochs, shared by the prediction and checkpoint tests."""
    vocab, train_split, _ = data
    spec = make_spec(lstm, vocab, seed=3)
    return spec, train(lstm, spec, train_split, epochs=2)


# -------------------------------------------------------------------------------------------------
# parameters
# -------------------------------------------------------------------------------------------------


def test_describe_and_params_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from qa_core.plugins import load_plugins\n"
        "lstm = load_plugins().model('lstm')\n"
        "params = lstm.resolve_params({'units': '8', 'bidirectional': 'false'})\n"
        "assert params['units'] == 8 and params['bidirectional'] is False, params\n"
        "assert lstm.info.framework == 'tensorflow' and lstm.info.checkpoint_suffix == '.weights.h5'\n"
        "heavy = sorted({'tensorflow', 'keras', 'h5py'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_issue_params_have_defaults_types_and_checks(lstm):
    declared = {param.name: param for param in lstm.info.params}
    issue = {"embedding_dim": int, "units": int, "layers": int, "bidirectional": bool, "dropout": float, "recurrent_dropout": float, "lr": float, "max_len": int}
    for name, kind in issue.items():
        assert declared[name].type is kind
        assert isinstance(declared[name].default, kind) and declared[name].help
    # Every default passes the checks it is subject to.
    assert lstm.resolve_params({}) == {name: param.default for name, param in declared.items()}


@pytest.mark.parametrize(
    "name, value",
    [("units", "0"), ("units", "many"), ("layers", "17"), ("bidirectional", "maybe"), ("dropout", "1.5"), ("recurrent_dropout", "-0.1"), ("lr", "0"), ("lr", "nan"), ("max_len", "2"), ("embedding_dim", "3.5"), ("question_match", "fuzzy"), ("conv_width", "-1"), ("clipnorm", "inf")],
)
def test_bad_param_is_refused_naming_it(lstm, name, value):
    with pytest.raises(ConfigError, match=name):
        lstm.resolve_params({name: value})


def test_unknown_param_is_refused_listing_the_known_ones(lstm):
    with pytest.raises(ConfigError, match="unit.*embedding_dim"):
        lstm.resolve_params({"unit": "8"})


# -------------------------------------------------------------------------------------------------
# training and prediction
# -------------------------------------------------------------------------------------------------


def test_train_epoch_moves_the_bar_per_batch_and_returns_the_epoch_logs(lstm, data):
    vocab, train_split, _ = data
    model = lstm.build(make_spec(lstm, vocab))
    calls: list[tuple[int, float]] = []
    result = lstm.train_epoch(model, train_split, 20, 1, lambda done, loss: calls.append((done, float(loss))))
    batches = train_split.num_batches(20)  # 96 rows: 4 full batches and one of 16
    assert [done for done, _ in calls] == list(range(1, batches + 1))
    assert set(result) == {"loss", "accuracy"}
    # The epoch's loss is the running mean the bar last showed, over every row.
    assert result["loss"] == pytest.approx(calls[-1][1], rel=1e-6)
    assert 0.0 <= result["accuracy"] <= 1.0 and np.isfinite(result["loss"])


def test_loss_decreases_on_a_tiny_dataset(lstm, data):
    vocab, train_split, _ = data
    spec = make_spec(lstm, vocab, seed=1)
    model = lstm.build(spec)
    before = bce(train_split.labels, lstm.evaluate(model, train_split, 64))
    for epoch in range(1, 7):
        lstm.train_epoch(model, train_split, 16, epoch, lambda done, loss: None)
    after = bce(train_split.labels, lstm.evaluate(model, train_split, 64))
    assert after < before - 0.05, (before, after)


def test_evaluate_returns_one_probability_per_row_in_order(lstm, data, trained):
    _, _, val = data
    _, model = trained
    probs = lstm.evaluate(model, val, 7)  # a batch size that leaves a partial last batch
    assert isinstance(probs, np.ndarray) and probs.shape == (len(val),)
    assert np.all((probs >= 0) & (probs <= 1))
    # Row order is kept: scoring the rows reversed gives the reversed probabilities.
    reversed_probs = lstm.evaluate(model, val.take(np.arange(len(val))[::-1]), 64)
    np.testing.assert_allclose(reversed_probs[::-1], probs, rtol=1e-5, atol=1e-6)


def test_same_seed_gives_the_same_predictions(lstm, data):
    vocab, train_split, val = data
    # Dropout on, so the seed must also fix every dropout mask, not only the initial weights.
    runs = [
        lstm.evaluate(train(lstm, make_spec(lstm, vocab, seed=seed, dropout="0.2"), train_split, epochs=1), val, 64)
        for seed in (7, 7, 8)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_question_view_reads_the_question_first_and_marks_its_words_in_the_story(data):
    from qa_core.data.tokenizer import SEP as SEP_ID
    from qa_lstm_tf.network import QuestionView

    _, train_split, _ = data
    tokens, lengths = train_split.tokens[:8], train_split.lengths[:8]
    reordered, slots = (np.asarray(t) for t in QuestionView(SEP_ID)(tokens))
    for row, new, new_slots, length in zip(tokens, reordered, slots, lengths):
        sep = int(np.flatnonzero(row == SEP_ID)[0])
        question, story = row[sep + 1 : length], row[:sep]
        np.testing.assert_array_equal(new, np.concatenate([question, story, [SEP_ID], row[length:]]))
        # Each story token carries the 1-based position of its first match in the question.
        first_match = {}
        for position, token in enumerate(question, 1):
            first_match.setdefault(token, position)
        expected = [first_match.get(token, 0) for token in story]
        np.testing.assert_array_equal(new_slots, np.concatenate([np.zeros(len(question)), expected, np.zeros(1 + len(row) - length)]))
        assert 0 < np.count_nonzero(expected) < len(story)  # the asked name and place occur in the story


# -------------------------------------------------------------------------------------------------
# checkpoints
# -------------------------------------------------------------------------------------------------


def test_save_then_load_gives_identical_predictions_and_optimizer_state(lstm, data, trained, tmp_path):
    _, _, val = data
    spec, model = trained
    path = tmp_path / "e002.weights.h5"
    assert lstm.save(model, path, spec, {"epoch": 2, "metrics": {"val_accuracy": 0.5}}) is True
    loaded = lstm.load(path, spec, {"epoch": 2})
    np.testing.assert_array_equal(lstm.evaluate(loaded, val, 64), lstm.evaluate(model, val, 64))
    # Adam's step count and moments come back too, so a resumed run continues where it stopped.
    saved_state = [v.numpy() for v in model.model.optimizer.variables]
    loaded_state = [v.numpy() for v in loaded.model.optimizer.variables]
    assert int(loaded.model.optimizer.iterations.numpy()) == int(model.model.optimizer.iterations.numpy()) > 0
    assert len(saved_state) == len(loaded_state)
    for saved, restored in zip(saved_state, loaded_state):
        np.testing.assert_array_equal(saved, restored)


def test_a_lone_checkpoint_file_names_its_plugin_vocabulary_and_params(lstm, trained, tmp_path):
    from qa_lstm_tf import checkpoint

    spec, model = trained
    path = tmp_path / "lone.weights.h5"
    lstm.save(model, path, spec, {"epoch": 2})
    header = checkpoint.read_header(path)
    assert (header.plugin, header.package) == ("lstm", "qa-lstm-tf")
    assert header.vocab_hash == spec.vocab_hash and header.vocab_size == spec.vocab_size
    assert header.max_len == spec.max_len and header.params == dict(spec.params)


@pytest.fixture(scope="module")
def saved(lstm, trained, tmp_path_factory) -> Path:
    spec, model = trained
    path = tmp_path_factory.mktemp("ckpt") / "best.weights.h5"
    lstm.save(model, path, spec, {"epoch": 2})
    return path


def test_checkpoint_of_another_plugin_is_refused(lstm, trained, saved):
    spec, _ = trained
    with pytest.raises(CheckpointError, match="written by plugin 'lstm'.*'transformer'"):
        lstm.load(saved, dataclasses.replace(spec, plugin="transformer"), {})


def test_checkpoint_for_another_vocabulary_is_refused(lstm, trained, saved):
    spec, _ = trained
    with pytest.raises(CheckpointError, match="vocabulary"):
        lstm.load(saved, dataclasses.replace(spec, vocab_hash="0" * 64), {})


def test_checkpoint_with_other_shapes_is_refused(lstm, trained, saved):
    spec, _ = trained
    with pytest.raises(CheckpointError, match="units=16"):
        lstm.load(saved, dataclasses.replace(spec, params={**spec.params, "units": 32}), {})
    with pytest.raises(CheckpointError, match="vocab_size"):
        lstm.load(saved, dataclasses.replace(spec, vocab_size=spec.vocab_size + 1), {})


def test_files_that_are_not_lstm_checkpoints_are_refused(lstm, trained, tmp_path):
    spec, model = trained
    # A torch checkpoint is a zip archive, not HDF5.
    not_hdf5 = tmp_path / "model.weights.h5"
    not_hdf5.write_bytes(b"PK\x03\x04" + bytes(64))
    with pytest.raises(CheckpointError, match="not a Keras weights file"):
        lstm.load(not_hdf5, spec, {})
    # A genuine Keras weights file written by someone else (no qa header).
    plain = tmp_path / "plain.weights.h5"
    model.model.save_weights(str(plain))
    with pytest.raises(CheckpointError, match="without the qa LSTM header"):
        lstm.load(plain, spec, {})


def test_a_run_with_a_schedule_loads_where_the_training_plan_is_unknown(lstm, data, tmp_path):
    """qa evaluate builds the model with no plan (epochs 0): the optimizer must still take the
    checkpoint's state (a schedule holds no learning-rate variable; a constant rate does)."""
    import dataclasses

    vocab, train_split, val = data
    planned = dataclasses.replace(make_spec(lstm, vocab, schedule="cosine", warmup_steps="2"), epochs=1, batch_size=16, steps_per_epoch=train_split.num_batches(16))
    model = train(lstm, planned, train_split, epochs=1)
    path = tmp_path / "e001.weights.h5"
    assert lstm.save(model, path, planned, {"epoch": 1, "metrics": {}}) is True
    unplanned = dataclasses.replace(planned, epochs=0, batch_size=0, steps_per_epoch=0)
    loaded = lstm.load(path, unplanned, {"epoch": 1})
    np.testing.assert_array_equal(lstm.evaluate(loaded, val, 64), lstm.evaluate(model, val, 64))
