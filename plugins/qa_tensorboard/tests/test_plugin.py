"""The plugin as the core sees it: discovered, described, light to import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace


def test_listed_by_qa_plugins_as_a_tracker(helpers: SimpleNamespace) -> None:
    result = helpers.run_qa("plugins", "--json")
    assert result.code == 0, result.err
    (record,) = [p for p in json.loads(result.out) if p["name"] == "tensorboard"]
    assert (record["kind"], record["distribution"], record["error"]) == ("tracker", "qa-tensorboard", None)
    assert {p["name"] for p in record["params"]} == {"logdir"}


def test_entry_point_imports_no_writer_and_a_run_no_tensorflow(tiny_data, tmp_path) -> None:
    code = (
        "import sys, qa_tensorboard.plugin as p\n"
        "assert p.qa_describe().threaded\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorboardX', 'tensorboard', 'tensorflow', 'torch')))\n"
        "from qa_core.config import RunConfig\n"
        "from qa_core.trainer import train\n"
        f"train(RunConfig(plugin='bow', data_dir={str(tiny_data)!r}, runs_dir={str(tmp_path)!r}, epochs=1, progress=False, loggers=['tensorboard']))\n"
        "print('qa_tensorboard.events' in sys.modules, sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'torch', 'keras')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "[]"
    assert lines[-1] == "True []"  # the writer ran, and neither TensorFlow nor torch came with it


def test_unknown_option_is_refused_before_the_run(helpers: SimpleNamespace, tiny_data, tmp_path) -> None:
    result = helpers.run_qa(
        "run", "--plugin", "bow", "--data", str(tiny_data), "--runs-dir", str(tmp_path / "runs"),
        "--logger", "tensorboard", "--logger-param", "tensorboard.log_dir=x",
    )  # fmt: skip
    assert result.code == 2
    assert "--logger-param tensorboard.log_dir: unknown parameter for plugin 'tensorboard'; its parameters: logdir" in result.err
