"""The plugin as the core sees it: discovered, described, light to import, quiet once imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

#: Variables by which MLflow decides it runs in CI or under pytest (and sends no telemetry anyway);
#: the telemetry check clears them so it shows what a user's machine gets.
CI_VARIABLES = ("CI", "PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "TF_BUILD")


def python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_listed_by_qa_plugins_as_a_tracker(helpers: SimpleNamespace) -> None:
    result = helpers.run_qa("plugins", "--json")
    assert result.code == 0, result.err
    (record,) = [p for p in json.loads(result.out) if p["name"] == "mlflow"]
    assert (record["kind"], record["distribution"], record["error"]) == ("tracker", "qa-mlflow", None)
    assert {p["name"] for p in record["params"]} == {"tracking_uri", "experiment", "run_name", "artifact_location", "verbose"}
    assert "qa_log_metrics" in record["hooks"] and "qa_log_artifact" in record["hooks"]


def test_entry_point_does_not_import_mlflow() -> None:
    code = (
        "import sys, qa_mlflow.plugin as p\n"
        "info = p.qa_describe()\n"
        "assert info.kind == 'tracker' and info.threaded\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'sqlalchemy', 'alembic')))"
    )
    result = python(code, dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_importing_through_the_plugin_turns_telemetry_off() -> None:
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES and not k.startswith("MLFLOW_") and k != "DO_NOT_TRACK"}
    code = (
        "import os\n"
        "from qa_mlflow.session import import_mlflow\n"
        "import_mlflow()\n"
        "from mlflow.telemetry import get_telemetry_client\n"
        "print(get_telemetry_client() is None, os.environ['MLFLOW_DISABLE_TELEMETRY'], os.environ['MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT'])"
    )
    result = python(code, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "true", "true"]


def test_qa_refuses_an_unknown_option_before_the_run(helpers: SimpleNamespace, tiny_data, tmp_path) -> None:
    # The declared options (PluginInfo.params) are what the core checks --logger-param against.
    result = helpers.run_qa(
        "run", "--plugin", "bow", "--data", str(tiny_data), "--runs-dir", str(tmp_path / "runs"),
        "--logger", "mlflow", "--logger-param", "mlflow.experimnt=x",
    )  # fmt: skip
    assert result.code != 0
    assert "--logger-param mlflow.experimnt: unknown parameter for plugin 'mlflow'; its parameters: " in result.err
    assert "experiment" in result.err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
