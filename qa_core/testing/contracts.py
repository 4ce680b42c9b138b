"""What every plugin must do, as test classes: subclass one in your plugin's tests.

    class TestMyModel(ModelPluginContract):
        plugin = "mymodel"                        # the entry-point name
        params = {"hidden": 8}                    # tiny settings: the contract trains for real

    class TestMyTracker(TrackerPluginContract):
        tracker = "mytracker"
        options = {"mode": "offline"}             # --logger-param values, as strings

Each class is a set of ordinary pytest tests over the *installed* plugin (found through its entry
point, as ``qa`` finds it), on tiny generated data, through the core's own plugin facade and
training loop. Override an attribute to fit your plugin; override a test only to skip it, saying
why.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import pytest

from ..errors import CheckpointError
from ..plugins import TRACKER_HOOKS, load_plugins
from .data import TinyData, tiny_data, write_tiny_data
from .models import TINY_MODEL, HookRecorder, TinyModel
from .runs import TrainingRun, resume_run, train_run

# -------------------------------------------------------------------------------------------------
# model plugins
# -------------------------------------------------------------------------------------------------


class ModelPluginContract:
    """The contract of a model plugin: describe, build, train, evaluate, save/load, refuse, resume."""

    #: The plugin's entry-point name (``qa run --plugin NAME``).
    plugin: ClassVar[str] = ""
    #: ``--param`` values that make the model tiny (strings or typed values).
    params: ClassVar[Mapping[str, Any]] = {}
    batch_size: ClassVar[int] = 16
    #: How far two predictions that must be the same may differ (float32 arithmetic).
    atol: ClassVar[float] = 1e-5
    #: A run interrupted after epoch 1 and resumed must end with the metrics of an uninterrupted
    #: run within this; None only checks that it resumes and finishes (a plugin that cannot
    #: restore its RNG state exactly, said in its own docs).
    resume_atol: ClassVar[float | None] = 1e-5

    # -- fixtures (class-wide: built once, used by every test) -------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def qa_manager(cls) -> Any:
        manager = load_plugins()
        record = manager.records.get(cls.plugin)
        assert record is not None, f"no plugin {cls.plugin!r} among the qa entry points: is its package installed?"
        assert record.error is None, f"plugin {cls.plugin!r} did not load: {record.error}"
        return manager

    @pytest.fixture(scope="class")
    @classmethod
    def qa_model_plugin(cls, qa_manager: Any) -> Any:
        return qa_manager.model(cls.plugin)

    @pytest.fixture(scope="class")
    @classmethod
    def qa_data(cls, qa_model_plugin: Any) -> TinyData:
        return tiny_data(cls.plugin, qa_model_plugin.resolve_params(dict(cls.params)), batch_size=cls.batch_size)

    @pytest.fixture(scope="class")
    @classmethod
    def qa_trained(cls, qa_model_plugin: Any, qa_data: TinyData) -> Any:
        """A model trained for one epoch; tests must not train it further."""
        model = qa_model_plugin.build(qa_data.spec)
        train_epoch(qa_model_plugin, model, qa_data.splits["train"], cls.batch_size)
        return model

    @pytest.fixture(scope="class")
    @classmethod
    def qa_data_dir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return write_tiny_data(tmp_path_factory.mktemp("qa-contract-data"))

    # -- the contract ------------------------------------------------------------------------

    def test_describes_itself(self, qa_model_plugin: Any) -> None:
        info = qa_model_plugin.info
        assert info.kind == "model"
        assert info.checkpoint_suffix and info.checkpoint_suffix.startswith("."), "checkpoint_suffix must be like '.pt'"
        assert info.framework, "say which framework the plugin uses (PluginInfo.framework)"
        names = [param.name for param in info.params]
        assert len(names) == len(set(names)), f"parameter names repeat: {names}"
        defaults = qa_model_plugin.resolve_params({})  # every default passes the plugin's own checks
        assert set(defaults) == set(names)

    def test_builds_the_same_model_from_the_same_seed(self, qa_model_plugin: Any, qa_data: TinyData) -> None:
        val = qa_data.splits["val"]
        first = predict(qa_model_plugin, qa_model_plugin.build(qa_data.spec), val, self.batch_size)
        again = predict(qa_model_plugin, qa_model_plugin.build(qa_data.spec), val, self.batch_size)
        np.testing.assert_allclose(again, first, rtol=0, atol=self.atol, err_msg="qa_build must seed the framework from spec.seed")

    def test_trains_an_epoch_and_reports_loss_and_accuracy(self, qa_model_plugin: Any, qa_data: TinyData) -> None:
        model = qa_model_plugin.build(qa_data.spec)
        before = predict(qa_model_plugin, model, qa_data.splits["val"], self.batch_size)
        loss, accuracy, progress = train_epoch(qa_model_plugin, model, qa_data.splits["train"], self.batch_size)
        assert math.isfinite(loss) and loss >= 0, f"training loss {loss}"
        assert 0.0 <= accuracy <= 1.0, f"training accuracy {accuracy}"
        batches = qa_data.splits["train"].num_batches(self.batch_size)
        assert progress == list(range(1, batches + 1)), f"progress must reach every batch once, in order: {progress}"
        after = predict(qa_model_plugin, model, qa_data.splits["val"], self.batch_size)
        assert not np.array_equal(after, before), "an epoch of training changed no prediction"

    def test_evaluates_every_row_as_a_probability_in_order(self, qa_model_plugin: Any, qa_trained: Any, qa_data: TinyData) -> None:
        val = qa_data.splits["val"]
        probs = predict(qa_model_plugin, qa_trained, val, self.batch_size)
        assert probs.shape == (len(val),), f"expected {len(val)} probabilities, got shape {probs.shape}"
        assert np.issubdtype(probs.dtype, np.floating) and np.isfinite(probs).all()
        assert ((probs >= 0) & (probs <= 1)).all(), "probabilities must lie in [0, 1]"
        reverse = np.arange(len(val))[::-1]
        flipped = predict(qa_model_plugin, qa_trained, val.take(reverse), 7)
        np.testing.assert_allclose(flipped, probs[reverse], rtol=0, atol=self.atol, err_msg="a row's probability must not depend on its batch or position")

    def test_save_then_load_gives_the_same_predictions(self, qa_model_plugin: Any, qa_trained: Any, qa_data: TinyData, tmp_path: Path) -> None:
        val = qa_data.splits["val"]
        expected = predict(qa_model_plugin, qa_trained, val, self.batch_size)
        path = self._save(qa_model_plugin, qa_trained, qa_data, tmp_path)
        loaded = qa_model_plugin.load(path, qa_data.spec, self._meta(qa_data))
        np.testing.assert_allclose(predict(qa_model_plugin, loaded, val, self.batch_size), expected, rtol=0, atol=self.atol)
        np.testing.assert_allclose(predict(qa_model_plugin, qa_trained, val, self.batch_size), expected, rtol=0, atol=self.atol, err_msg="saving changed the model")

    def test_refuses_a_file_it_did_not_write(self, qa_model_plugin: Any, qa_data: TinyData, tmp_path: Path) -> None:
        junk = tmp_path / f"junk{qa_model_plugin.info.checkpoint_suffix}"
        junk.write_bytes(b"not a checkpoint\x00" * 64)
        with pytest.raises(CheckpointError):
            qa_model_plugin.load(junk, qa_data.spec, self._meta(qa_data))
        other = tmp_path / f"other{qa_model_plugin.info.checkpoint_suffix}"
        tiny = TinyModel()
        tiny.qa_save_checkpoint(tiny.qa_build(qa_data.spec), other, qa_data.spec, {})  # another plugin's file, same suffix
        with pytest.raises(CheckpointError):
            qa_model_plugin.load(other, qa_data.spec, self._meta(qa_data))

    def test_refuses_its_own_checkpoint_for_another_vocabulary(self, qa_model_plugin: Any, qa_trained: Any, qa_data: TinyData, tmp_path: Path) -> None:
        path = self._save(qa_model_plugin, qa_trained, qa_data, tmp_path)
        other = qa_data.with_spec(vocab_size=qa_data.spec.vocab_size + 5, vocab_hash="0" * 64)
        with pytest.raises(CheckpointError):
            qa_model_plugin.load(path, other.spec, self._meta(other))

    def test_a_resumed_run_ends_as_an_uninterrupted_one(self, qa_manager: Any, qa_data_dir: Path, tmp_path: Path) -> None:
        straight = train_run(qa_manager, self.plugin, qa_data_dir, tmp_path / "a", params=self.params, epochs=2, batch_size=self.batch_size)
        straight.record.assert_complete(2)
        stopped = train_run(qa_manager, self.plugin, qa_data_dir, tmp_path / "b", params=self.params, epochs=2, batch_size=self.batch_size, interrupt_after=1)
        assert stopped.interrupted and stopped.record.epochs == [1], stopped.stderr
        resumed = resume_run(qa_manager, stopped.run_dir)
        resumed.record.assert_complete(2)
        if self.resume_atol is None:
            return
        for name in ("metrics/train/loss", "metrics/val/loss", "metrics/val/accuracy"):
            got, want = resumed.record.metric(name), straight.record.metric(name)
            assert got.keys() == want.keys() and all(abs(got[e] - want[e]) <= self.resume_atol for e in want), f"{name}: resumed {got}, uninterrupted {want}"

    # -- helpers -----------------------------------------------------------------------------

    def _meta(self, data: TinyData) -> dict[str, Any]:
        """The facts the core puts in a checkpoint's meta (see docs/plugins.md)."""
        return {"plugin": self.plugin, "vocab_sha256": data.spec.vocab_hash, "vocab_size": data.spec.vocab_size, "max_len": data.spec.max_len, "params": dict(data.spec.params), "epoch": 1}

    def _save(self, plugin: Any, model: Any, data: TinyData, directory: Path) -> Path:
        path = directory / f"model{plugin.info.checkpoint_suffix}"
        assert plugin.save(model, path, data.spec, self._meta(data)), "qa_save_checkpoint must return True (or its own meta)"
        assert path.is_file() and path.stat().st_size > 0, f"qa_save_checkpoint wrote nothing at {path}"
        return path


def predict(plugin: Any, model: Any, split: Any, batch_size: int) -> np.ndarray:
    return np.asarray(plugin.evaluate(model, split, batch_size))


def train_epoch(plugin: Any, model: Any, split: Any, batch_size: int) -> tuple[float, float, list[int]]:
    """One epoch as the core trains it: ``qa_train_epoch`` when the plugin has it, else step by
    step. Returns (loss, accuracy, the batch counts progress was reported at)."""
    progress: list[int] = []
    if plugin.trains_whole_epochs:
        result = plugin.train_epoch(model, split, batch_size, 1, lambda done, loss: progress.append(int(done)))
        if result is not None:
            return float(result["loss"]), float(result["accuracy"]), progress
    total_loss = total_correct = 0.0
    for batch in split.batches(batch_size):
        loss, correct = plugin.train_step(model, batch)
        assert 0 <= float(correct) <= len(batch), f"correct = {float(correct)} for a batch of {len(batch)}"
        total_loss += float(loss) * len(batch)
        total_correct += float(correct)
        progress.append(len(progress) + 1)
    return total_loss / len(split), total_correct / len(split), progress


# -------------------------------------------------------------------------------------------------
# tracker plugins
# -------------------------------------------------------------------------------------------------


class TrackerPluginContract:
    """The contract of a tracker plugin: every hook in order, failures never stop a run, resume."""

    #: The tracker's entry-point name (``qa run --logger NAME``).
    tracker: ClassVar[str] = ""
    #: ``--logger-param NAME.KEY=VALUE`` options for the contract's runs (strings, as typed).
    options: ClassVar[Mapping[str, str]] = {}
    #: Options with which the tracker fails for real at run start (an unreachable server, a
    #: folder it cannot write), or None when it has no such case.
    failing_options: ClassVar[Mapping[str, str] | None] = None
    #: True when a resumed run goes on in the same record (one series per metric, epochs 1..N).
    continues_on_resume: ClassVar[bool] = True
    epochs: ClassVar[int] = 2

    def recorded_metrics(self, run: TrainingRun, name: str) -> dict[int, float] | None:
        """``{step: value}`` of series ``name`` as the tracker recorded it, read back from its
        store; None when it cannot be read back (the read-back checks are then skipped)."""
        return None

    # -- fixtures ----------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def qa_manager(cls) -> Any:
        manager = load_plugins()
        record = manager.records.get(cls.tracker)
        assert record is not None, f"no plugin {cls.tracker!r} among the qa entry points: is its package installed?"
        assert record.error is None, f"plugin {cls.tracker!r} did not load: {record.error}"
        manager.register(TinyModel(), TINY_MODEL)
        return manager

    @pytest.fixture(scope="class")
    @classmethod
    def qa_data_dir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return write_tiny_data(tmp_path_factory.mktemp("qa-contract-data"))

    def _run(self, manager: Any, data_dir: Path, runs_dir: Path, options: Mapping[str, str] | None = None, **kwargs: Any) -> TrainingRun:
        return train_run(
            manager, TINY_MODEL, data_dir, runs_dir, loggers=[self.tracker],
            logger_params={self.tracker: dict(self.options if options is None else options)}, **kwargs,
        )  # fmt: skip

    # -- the contract ------------------------------------------------------------------------

    def test_describes_itself(self, qa_manager: Any) -> None:
        from ..plugins import resolve_params

        record = qa_manager.tracker(self.tracker)
        assert record.info.kind == "tracker"
        assert set(record.hooks) & set(TRACKER_HOOKS), "a tracker implements at least one qa_log_* hook"
        resolve_params(self.tracker, record.info, dict(self.options))  # the contract's options are valid

    def test_gets_every_hook_in_order_and_records_every_epoch(self, qa_manager: Any, qa_data_dir: Path, tmp_path: Path) -> None:
        recorder = HookRecorder(qa_manager, self.tracker)
        try:
            run = self._run(qa_manager, qa_data_dir, tmp_path / "runs", epochs=self.epochs)
        finally:
            recorder.close()
        assert not run.failures_of(self.tracker), run.stderr
        run.record.assert_complete(self.epochs)
        implemented = set(qa_manager.tracker(self.tracker).hooks) & set(TRACKER_HOOKS)
        hooks = recorder.hooks()
        assert set(hooks) == implemented, f"hooks called {sorted(set(hooks))}, implemented {sorted(implemented)}"
        assert all(call.tracker == self.tracker for call in recorder.calls), "run.tracker must name the tracker"
        order = {hook: i for i, hook in enumerate(TRACKER_HOOKS)}
        assert hooks[0] == min(implemented, key=order.get) and hooks[-1] == max(implemented, key=order.get)
        assert hooks.count("qa_log_run_start") <= 1 and hooks.count("qa_log_run_end") <= 1
        if "qa_log_metrics" in implemented:
            assert [c.step for c in recorder.calls if c.hook == "qa_log_metrics"] == list(range(1, self.epochs + 1))
        self._check_recorded(run, list(range(1, self.epochs + 1)))

    def test_a_failing_call_switches_it_off_and_the_run_goes_on(self, qa_manager: Any, qa_data_dir: Path, tmp_path: Path) -> None:
        implemented = [hook for hook in TRACKER_HOOKS if hook in qa_manager.tracker(self.tracker).hooks and hook != "qa_log_run_end"]
        failing = implemented[len(implemented) // 2]
        recorder = HookRecorder(qa_manager, self.tracker, fail=lambda call: call.hook == failing)
        try:
            run = self._run(qa_manager, qa_data_dir, tmp_path / "runs", epochs=self.epochs)
        finally:
            recorder.close()
        run.record.assert_complete(self.epochs)
        lines = run.failures_of(self.tracker)
        assert len(lines) == 1 and f"failed in {failing}" in lines[0], run.stderr
        assert recorder.hooks().count(failing) == 1 and recorder.hooks()[-1] == failing, "nothing may reach a tracker after it failed"

    def test_a_real_failure_is_one_line_and_the_run_goes_on(self, qa_manager: Any, qa_data_dir: Path, tmp_path: Path) -> None:
        if self.failing_options is None:
            pytest.skip("the tracker names no options that make it fail (failing_options)")
        run = self._run(qa_manager, qa_data_dir, tmp_path / "runs", options=self.failing_options, epochs=self.epochs)
        run.record.assert_complete(self.epochs)
        lines = run.failures_of(self.tracker)
        assert len(lines) == 1 and "failed in" in lines[0] and "Traceback" not in run.stderr, run.stderr

    def test_a_resumed_run_goes_on_from_the_next_epoch(self, qa_manager: Any, qa_data_dir: Path, tmp_path: Path) -> None:
        stopped = self._run(qa_manager, qa_data_dir, tmp_path / "runs", epochs=self.epochs, interrupt_after=1)
        assert stopped.interrupted, stopped.stderr
        recorder = HookRecorder(qa_manager, self.tracker)
        try:
            resumed = resume_run(qa_manager, stopped.run_dir)
        finally:
            recorder.close()
        resumed.record.assert_complete(self.epochs)
        assert not resumed.failures_of(self.tracker), resumed.stderr
        assert {call.resumed_after_epoch for call in recorder.calls} == {1}
        if "qa_log_metrics" in recorder.hooks():
            assert [c.step for c in recorder.calls if c.hook == "qa_log_metrics"] == list(range(2, self.epochs + 1))
        self._check_recorded(resumed, list(range(1 if self.continues_on_resume else 2, self.epochs + 1)))

    def _check_recorded(self, run: TrainingRun, steps: list[int]) -> None:
        for name in ("metrics/val/accuracy", "metrics/val/loss"):
            recorded = self.recorded_metrics(run, name)
            if recorded is None:
                return
            local = run.record.metric(name)
            assert sorted(recorded) == steps, f"{name}: the tracker holds steps {sorted(recorded)}, expected {steps}"
            assert all(math.isclose(recorded[s], local[s], rel_tol=1e-6, abs_tol=1e-7) for s in steps), f"{name}: {recorded} != metrics.jsonl {local}"

