"""qa_core.testing itself: its fixtures work, and its contracts fail the plugins that break them.

The contracts run in a pytest subprocess (the point: a plugin author's own pytest session, the
plugin found through a real entry point), against the broken plugins of tests/fake_plugins/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qa_core.testing import RunDirectory, TrainingRun


def run_contract(plugin_site, tmp_path: Path, source: str, *select: str) -> tuple[set[str], set[str], str]:
    """Run a test file subclassing a contract; returns the (passed, failed) test names and output."""
    test_file = tmp_path / "test_plugin_contract.py"
    test_file.write_text(textwrap.dedent(source), encoding="utf-8")
    args = [sys.executable, "-m", "pytest", str(test_file), "-p", "no:cacheprovider", "-rA", "-q", "--rootdir", str(tmp_path)]
    if select:
        args += ["-k", " or ".join(select)]
    env = {**os.environ, **plugin_site.env}
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    passed = set(re.findall(r"^PASSED \S+::(test_\w+)", out, re.M))
    failed = set(re.findall(r"^FAILED \S+::(test_\w+)", out, re.M))
    return passed, failed, out


def test_the_fixtures_give_tiny_data_a_run_and_its_record(qa_tiny_data: Path, qa_train, qa_read_run, tmp_path: Path) -> None:
    assert sorted(p.name for p in qa_tiny_data.iterdir()) == ["test.jsonl", "train.jsonl", "val.jsonl"]
    run = qa_train("bow", tmp_path / "runs", epochs=2)
    assert isinstance(run, TrainingRun) and not run.interrupted
    record = qa_read_run(run.run_dir)
    assert isinstance(record, RunDirectory) and record.epochs == [1, 2]
    record.assert_complete(2)
    assert record.metric("metrics/val/accuracy") == {line["epoch"]: line["metrics/val/accuracy"] for line in record.lines}


def test_an_interrupted_run_is_resumable_in_process(qa_plugin_manager, qa_tiny_data: Path, tmp_path: Path) -> None:
    from qa_core.testing import resume_run, train_run

    stopped = train_run(qa_plugin_manager, "bow", qa_tiny_data, tmp_path / "runs", epochs=3, interrupt_after=2)
    assert stopped.interrupted and stopped.record.epochs == [1, 2] and stopped.record.status == "interrupted"
    resumed = resume_run(qa_plugin_manager, stopped.run_dir)
    resumed.record.assert_complete(3)
    with pytest.raises(AssertionError, match="holds epochs"):
        stopped.record.assert_complete(3)


def test_the_model_contract_fails_an_unseeded_model(plugin_site, tmp_path: Path) -> None:
    plugin_site.add("qa-unseeded", "0.1", "unseeded_bow", entry_point="unseeded")
    passed, failed, out = run_contract(
        plugin_site, tmp_path,
        """
        from qa_core.testing import ModelPluginContract

        class TestUnseeded(ModelPluginContract):
            plugin = "unseeded"
        """,
        "same_seed", "resumed", "describes",
    )  # fmt: skip
    assert failed == {"test_builds_the_same_model_from_the_same_seed", "test_a_resumed_run_ends_as_an_uninterrupted_one"}, out
    assert passed == {"test_describes_itself"}, out
    assert "qa_build must seed the framework from spec.seed" in out


def test_the_model_contract_fails_a_loader_that_takes_any_file(plugin_site, tmp_path: Path) -> None:
    plugin_site.add("qa-credulous", "0.1", "credulous_bow", entry_point="credulous")
    passed, failed, out = run_contract(
        plugin_site, tmp_path,
        """
        from qa_core.testing import ModelPluginContract

        class TestCredulous(ModelPluginContract):
            plugin = "credulous"
        """,
        "refuses", "save_then_load",
    )  # fmt: skip
    assert failed == {"test_refuses_a_file_it_did_not_write", "test_refuses_its_own_checkpoint_for_another_vocabulary"}, out
    assert passed == {"test_save_then_load_gives_the_same_predictions"}, out


def test_the_tracker_contract_fails_a_tracker_that_forgets_and_breaks(plugin_site, tmp_path: Path) -> None:
    plugin_site.add("qa-forgetful", "0.1", "forgetful_tracker", entry_point="forgetful", module="qa_forgetful")
    passed, failed, out = run_contract(
        plugin_site, tmp_path,
        """
        from qa_core.testing import TrackerPluginContract

        class TestForgetful(TrackerPluginContract):
            tracker = "forgetful"

            def recorded_metrics(self, run, name):
                import qa_forgetful
                return qa_forgetful.RECORDED[run.run_dir.name].get(name, {})
        """,
    )  # fmt: skip
    assert {"test_gets_every_hook_in_order_and_records_every_epoch", "test_a_resumed_run_goes_on_from_the_next_epoch"} <= failed, out
    assert {"test_describes_itself", "test_a_failing_call_switches_it_off_and_the_run_goes_on"} <= passed, out
    assert "failed in qa_log_run_end (closing the run: RuntimeError: lost the connection at the end)" in out
