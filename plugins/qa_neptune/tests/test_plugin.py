"""The entry point: found by the core, described without importing neptune, and the sync shim."""

from __future__ import annotations

import json
import subprocess
import sys

from qa_core.plugins import load_plugins


def test_the_entry_point_registers_a_threaded_tracker_named_neptune() -> None:
    record = load_plugins().tracker("neptune")
    assert record.distribution == "qa-neptune"
    assert record.info.kind == "tracker" and record.info.threaded
    assert set(record.hooks) >= {"qa_log_run_start", "qa_log_params", "qa_log_metrics", "qa_log_summary", "qa_log_artifact", "qa_log_run_end"}
    assert {param.name for param in record.info.params} >= {"project", "mode", "name", "tags", "data_dir"}
    assert "api_token" not in {param.name for param in record.info.params}


def test_describing_the_plugin_never_imports_neptune() -> None:
    code = (
        "import sys; from qa_core.plugins import load_plugins; "
        "load_plugins().tracker('neptune'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('neptune', 'qa_neptune')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout.replace("'", '"'))
    assert "qa_neptune.plugin" in loaded
    assert not [name for name in loaded if name.split(".")[0] == "neptune" or name == "qa_neptune.session"]


def test_qa_plugins_lists_it() -> None:
    done = subprocess.run([sys.executable, "-m", "qa_core.cli", "plugins", "--json"], capture_output=True, text=True, check=True)
    neptune = next(p for p in json.loads(done.stdout) if p["name"] == "neptune")
    assert (neptune["kind"], neptune["distribution"], neptune["error"]) == ("tracker", "qa-neptune", None)


def test_the_sync_shim_runs_neptunes_commands_without_pkg_resources() -> None:
    from click.testing import CliRunner

    from qa_neptune.__main__ import main

    listed = CliRunner().invoke(main, ["--help"])
    assert listed.exit_code == 0 and {"sync", "status", "clear"} <= set(listed.output.split())
    sync_help = CliRunner().invoke(main, ["sync", "--help"])
    assert sync_help.exit_code == 0 and "--offline-only" in sync_help.output and "--project" in sync_help.output
