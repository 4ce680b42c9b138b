"""--group-by-length: each epoch's order puts rows of similar length in a batch; a permutation,
a pure function of seed and epoch, resumable, recorded in config.json, off on request."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa_core import hookimpl
from qa_core.batching import group_by_length, padding_fraction
from qa_core.config import RunConfig
from qa_core.errors import RunInterrupted
from qa_core.plugins import load_plugins
from qa_core.resume import config_from_run
from qa_core.testing.data import write_tiny_data
from qa_core.testing.models import INTERRUPTER, Interrupter, TinyModel
from qa_core.trainer import train


def story_lengths(n: int, seed: int = 0) -> np.ndarray:
    """Token counts shaped like the default data's: most rows far shorter than the longest."""
    return np.clip(np.random.default_rng(seed).lognormal(np.log(140), 0.45, n), 30, 356).astype(np.int32)


def batch_widths(order: np.ndarray, lengths: np.ndarray, batch: int) -> np.ndarray:
    return np.maximum.reduceat(lengths[order], np.arange(0, len(order), batch))


@pytest.mark.parametrize("n, batch, pool", [(0, 8, 50), (5, 8, 50), (96, 32, 50), (100, 32, 2), (4500, 32, 50), (4501, 32, 1), (977, 7, 3)])
def test_the_grouped_order_is_a_permutation(n, batch, pool):
    lengths = story_lengths(n)
    shuffled = np.random.default_rng(1).permutation(n)
    order = group_by_length(shuffled, lengths, batch, seed=0, epoch=1, pool_batches=pool)
    assert order.dtype == shuffled.dtype and np.array_equal(np.sort(order), np.arange(n))


def test_the_order_is_a_function_of_seed_epoch_and_the_shuffle_only():
    lengths = story_lengths(1000)
    shuffled = np.random.default_rng(7).permutation(1000)
    first = group_by_length(shuffled, lengths, 32, seed=3, epoch=2)
    assert np.array_equal(first, group_by_length(shuffled.copy(), lengths.copy(), 32, seed=3, epoch=2))
    assert not np.array_equal(first, group_by_length(shuffled, lengths, 32, seed=3, epoch=3))
    assert not np.array_equal(first, group_by_length(shuffled, lengths, 32, seed=4, epoch=2))


def test_grouped_batches_are_length_homogeneous_and_still_random():
    lengths, batch = story_lengths(4500), 32
    shuffled = np.random.default_rng(0).permutation(4500)
    plain = padding_fraction(shuffled, lengths, batch)
    grouped = group_by_length(shuffled, lengths, batch, seed=0, epoch=1)
    best = padding_fraction(np.argsort(lengths, kind="stable"), lengths, batch)  # one global sort: the floor
    assert plain > 0.3 and padding_fraction(grouped, lengths, batch) < min(0.05, plain / 8)
    assert padding_fraction(grouped, lengths, batch) < best + 0.03
    # Not a length ramp: the batches come in random order (sorted pools would rise ~always).
    widths = batch_widths(grouped, lengths, batch)
    assert np.mean(np.diff(widths) >= 0) < 0.7
    # Which rows meet in a batch changes from epoch to epoch (not fixed buckets).
    other = group_by_length(np.random.default_rng(1).permutation(4500), lengths, batch, seed=0, epoch=2)
    first_batches = {frozenset(b) for b in grouped[: len(grouped) // batch * batch].reshape(-1, batch).tolist()}
    assert not first_batches & {frozenset(b) for b in other[: len(other) // batch * batch].reshape(-1, batch).tolist()}


def test_padding_fraction_counts_what_a_trimmed_batch_reads():
    lengths = np.array([1, 2, 3, 4, 5])
    # batches [1, 5] [2, 3] [4]: read 5*2 + 3*2 + 4 = 20 tokens, 15 of them real
    assert padding_fraction(np.array([0, 4, 1, 2, 3]), lengths, 2) == pytest.approx(0.25)
    assert padding_fraction(np.arange(5), lengths, 1) == 0.0
    assert padding_fraction(np.arange(0), lengths, 4) == 0.0


# -- through the loop ---------------------------------------------------------------------------


class RecordingModel(TinyModel):
    """TinyModel that keeps each training batch's row lengths and a checksum of its tokens."""

    def __init__(self) -> None:
        self.batches: list[tuple[tuple[int, ...], int]] = []

    @hookimpl
    def qa_train_step(self, model, batch):
        self.batches.append((tuple(batch.lengths.tolist()), int(batch.tokens.astype(np.int64).sum())))
        return super().qa_train_step(model, batch)


@pytest.fixture(scope="module")
def varied_data(tmp_path_factory) -> Path:
    # Every noun count: stories from ~30 to ~250 tokens.
    return write_tiny_data(tmp_path_factory.mktemp("varied"), {"train": 320, "val": 32, "test": 32}, noun_counts=None)


def run_recorded(data: Path, runs: Path, epochs: int = 3, interrupt_after: int | None = None, resume: Path | None = None, **options) -> tuple[RecordingModel, Path]:
    manager, model = load_plugins(), RecordingModel()
    manager.register(model, "recording")
    loggers = []
    if interrupt_after is not None:
        Interrupter.install(manager, after_epoch=interrupt_after)
        loggers.append(INTERRUPTER)
    if resume is not None:
        values = config_from_run(resume)
        values["loggers"] = []
        config = RunConfig(**{**values, "epochs": epochs})
    else:
        config = RunConfig(plugin="recording", data_dir=str(data), epochs=epochs, batch_size=16, seed=4, runs_dir=str(runs),
                           progress=False, loggers=loggers, **options)
    try:
        result = train(config, pm=manager, resume=resume)
        run_dir = Path(result.run_dir)
    except RunInterrupted:
        (run_dir,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    return model, run_dir


def epoch_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_the_loop_trains_on_grouped_batches_by_default_and_plain_ones_when_asked(varied_data, tmp_path):
    grouped, grouped_dir = run_recorded(varied_data, tmp_path / "on", epochs=1)
    plain, plain_dir = run_recorded(varied_data, tmp_path / "off", epochs=1, group_by_length=False)
    assert json.loads((grouped_dir / "config.json").read_text())["group_by_length"] is True
    assert json.loads((plain_dir / "config.json").read_text())["group_by_length"] is False

    def waste(model: RecordingModel) -> float:
        read = sum(max(lengths) * len(lengths) for lengths, _ in model.batches)
        return 1 - sum(sum(lengths) for lengths, _ in model.batches) / read

    assert len(grouped.batches) == len(plain.batches) == 20
    assert sorted(x for b, _ in grouped.batches for x in b) == sorted(x for b, _ in plain.batches for x in b)  # the same rows
    assert waste(plain) > 0.25 and waste(grouped) < waste(plain) / 2.5  # 20 batches: 4 pools of 5


def test_a_grouped_run_resumed_trains_on_the_batches_of_an_uninterrupted_one(varied_data, tmp_path):
    whole, whole_dir = run_recorded(varied_data, tmp_path / "whole")
    first, run_dir = run_recorded(varied_data, tmp_path / "cut", interrupt_after=1)
    assert len(first.batches) == 20 and first.batches == whole.batches[:20]
    rest, _ = run_recorded(varied_data, tmp_path / "cut", resume=run_dir)
    assert rest.batches == whole.batches[20:]  # epochs 2 and 3: the same rows, in the same batches, in the same order
    assert len({b for b in whole.batches[20:40]} & {b for b in whole.batches[40:]}) < 3  # and each epoch its own
    assert epoch_lines(run_dir) == epoch_lines(whole_dir)


def test_a_run_from_before_the_option_resumes_and_reruns_with_plain_shuffles(varied_data, tmp_path):
    _, run_dir = run_recorded(varied_data, tmp_path / "old", epochs=1, group_by_length=False)
    config = json.loads((run_dir / "config.json").read_text())
    del config["group_by_length"]
    (run_dir / "config.json").write_text(json.dumps(config))
    assert config_from_run(run_dir)["group_by_length"] is False
    from qa_core.config import load_config_file

    assert load_config_file(run_dir / "config.json")["group_by_length"] is False


def test_the_option_on_the_command_line_and_in_toml(qa, tmp_path, tiny_data):
    printed = qa("run", "--plugin", "bow", "--no-group-by-length", "--print-config")
    assert printed.code == 0, printed.err
    assert "group_by_length = false" in printed.out.splitlines()
    toml = tmp_path / "run.toml"
    toml.write_text('plugin = "bow"\ngroup-by-length = "yes"\n')
    bad = qa("run", "--config", str(toml), "--runs-dir", str(tmp_path / "runs"))
    assert bad.code == 2 and bad.err.strip() == f"error: {toml}: group-by-length: expected true or false, got 'yes'"
    assert "Traceback" not in bad.err
    refused = qa("run", "--resume", str(tmp_path / "nowhere"), "--group-by-length")
    assert refused.code == 2 and "--resume: the run's own config is used" in refused.err
