"""Settings and name mapping: pure Python, checked against MLflow's own validators."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_mlflow.names import artifact_dir, mlflow_key, param_text, split_values
from qa_mlflow.settings import resolve, sqlite_path


def test_default_store_is_sqlite_under_the_runs_directory(tmp_path: Path) -> None:
    settings = resolve({}, runs_dir=Path("runs"), env={}, cwd=tmp_path)
    store = tmp_path / "runs" / "_mlflow"
    assert settings.tracking_uri == f"sqlite:///{store / 'mlflow.db'}"
    assert settings.store_dir == store
    assert settings.artifact_location == (store / "mlartifacts").as_uri()
    assert settings.experiment == "qa"
    assert settings.run_name is None
    assert not settings.is_http


def test_option_beats_environment_beats_default(tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "MLFLOW_EXPERIMENT_NAME": "from-env"}
    from_env = resolve({}, runs_dir=Path("runs"), env=env, cwd=tmp_path)
    assert (from_env.tracking_uri, from_env.experiment) == ("http://127.0.0.1:5000", "from-env")
    assert from_env.is_http
    # a server chooses where its artifacts go; no folder is created for it here
    assert from_env.artifact_location is None and from_env.store_dir is None

    options = {"tracking_uri": "sqlite:///elsewhere/x.db", "experiment": "mine", "run_name": "r1"}
    chosen = resolve(options, runs_dir=Path("runs"), env=env, cwd=tmp_path)
    assert (chosen.tracking_uri, chosen.experiment, chosen.run_name) == ("sqlite:///elsewhere/x.db", "mine", "r1")
    # a relative SQLite path is read against the working directory; artifacts go beside it
    assert chosen.store_dir == tmp_path / "elsewhere"
    assert chosen.artifact_location == (tmp_path / "elsewhere" / "mlartifacts").as_uri()


def test_artifact_location_option_is_made_absolute(tmp_path: Path) -> None:
    settings = resolve({"artifact_location": "art"}, runs_dir=Path("runs"), env={}, cwd=tmp_path)
    assert settings.artifact_location == (tmp_path / "art").as_uri()
    remote = resolve({"artifact_location": "s3://bucket/qa"}, runs_dir=Path("runs"), env={}, cwd=tmp_path)
    assert remote.artifact_location == "s3://bucket/qa"


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("sqlite:///mlflow.db", Path("mlflow.db")),
        ("sqlite:////abs/dir/m.db", Path("/abs/dir/m.db")),
        ("sqlite:///m.db?timeout=20", Path("m.db")),
        ("sqlite:///:memory:", None),
        ("postgresql://u@host/db", None),
        ("http://127.0.0.1:5000", None),
    ],
)
def test_sqlite_path(uri: str, path: Path | None) -> None:
    assert sqlite_path(uri) == path


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("mlflow.tracking_url=x", "--logger-param mlflow.tracking_url: unknown parameter for plugin 'mlflow'; its parameters: tracking_uri"),
        ("mlflow.token=abc", "--logger-param mlflow.token: secrets are not taken on the command line"),
        ("mlflow.password=abc", "--logger-param mlflow.password: secrets are not taken on the command line"),
        ("mlflow.verbose=maybe", "--logger-param mlflow.verbose: expected true/false"),
    ],
)
def test_the_core_refuses_unknown_credential_and_bad_options(option: str, expected: str) -> None:
    # One parser and one secret test, the core's, for every tracker: the plugin has neither.
    from qa_core.config import parse_logger_params
    from qa_core.errors import ConfigError
    from qa_core.plugins import load_plugins
    from qa_core.tracking.options import resolve_tracker_options

    with pytest.raises(ConfigError) as caught:
        resolve_tracker_options(load_plugins(), ["mlflow"], parse_logger_params([option]))
    assert str(caught.value).startswith(expected)


def test_the_plugin_gets_typed_options_with_every_default(tmp_path: Path) -> None:
    from qa_core.config import parse_logger_params
    from qa_core.plugins import load_plugins
    from qa_core.tracking.options import resolve_tracker_options

    options = resolve_tracker_options(load_plugins(), ["mlflow"], parse_logger_params(["mlflow.verbose=yes"]))["mlflow"]
    assert options == {"tracking_uri": "", "experiment": "", "run_name": "", "artifact_location": "", "verbose": True}
    assert resolve(options, runs_dir=Path("runs"), env={}, cwd=tmp_path).verbose


def test_passwords_in_uris_are_never_shown(tmp_path: Path) -> None:
    settings = resolve({"tracking_uri": "https://me:s3cret@h/"}, runs_dir=Path("runs"), env={}, cwd=tmp_path)
    assert settings.shown_uri == "https://me:<redacted>@h/"  # the core's mask, as in config.json
    assert settings.secrets() == ("s3cret",)
    lone = resolve({"tracking_uri": "https://tok3n@mlflow.example"}, runs_dir=Path("runs"), env={}, cwd=tmp_path)
    assert lone.shown_uri == "https://<redacted>@mlflow.example" and lone.secrets() == ("tok3n",)
    assert resolve({"tracking_uri": "http://127.0.0.1:5000"}, runs_dir=Path("runs"), env={}, cwd=tmp_path).shown_uri == "http://127.0.0.1:5000"
    assert resolve({}, runs_dir=Path("runs"), env={}, cwd=tmp_path).secrets() == ()


def test_error_lines_are_short_and_hide_secrets(tmp_path: Path) -> None:
    from qa_core import RunContext
    from qa_core.tracking.sessions import SessionHooks, TrackingError
    from qa_mlflow.session import MlflowSession

    context = RunContext("r1", tmp_path, "bow", "0.1", "numpy", "d", {}, tracker="mlflow")
    session = MlflowSession(context, resolve({"tracking_uri": "https://me:s3cret@h/"}, runs_dir=tmp_path, env={}, cwd=tmp_path))
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise RuntimeError("API request to https://me:s3cret@h/api failed\nwith many\nlines") from inner
    except RuntimeError as exc:
        assert session.describe(exc) == "cannot reach https://me:<redacted>@h/ (Connection refused)"
    # what the core prints: the hook's step, the one-line reason, secrets redacted, at most 300 characters
    failure = SessionHooks._failure(session, "logging epoch 2", ValueError("bad value s3cret " + "x" * 500 + "\nsecond line"))
    assert isinstance(failure, TrackingError)
    text = str(failure)
    assert text.startswith("logging epoch 2: ValueError: bad value <redacted> x") and text.endswith("...") and len(text) == 300
    # a local OSError (a full disk, a file in the way) is not "cannot reach"
    assert session.describe(NotADirectoryError(20, "Not a directory")).startswith("NotADirectoryError: ")


# -- names -------------------------------------------------------------------------------------

CORE_NAMES = [
    "metrics/val/accuracy",
    "val/by_group/superdense/noun_30/loss",
    "val/confusion/tn",
    "top_epochs/2/checkpoint",
    "model/lr",
]


@pytest.mark.parametrize("name", CORE_NAMES)
def test_core_names_pass_unchanged(name: str) -> None:
    assert mlflow_key(name) == name


@pytest.mark.parametrize("name", ["val/by_category/a+b/accuracy", "val/by_category//accuracy", "x/../y", "/lead", "trail/", ".", "ünï/cødé?"])
def test_odd_names_become_keys_mlflow_accepts(name: str) -> None:
    from mlflow.utils.validation import _validate_metric_name, _validate_param_name, _validate_tag_name

    key = mlflow_key(name)
    for validate in (_validate_metric_name, _validate_param_name, _validate_tag_name):
        validate(key)  # raises MlflowException on a bad key
    # the same odd name always maps to the same key, so a series stays one series
    assert mlflow_key(name) == key


def test_summary_values_split_into_metrics_and_tags() -> None:
    import numpy as np

    metrics, tags = split_values(
        {"best/epoch": 3, "best/accuracy": np.float32(0.5), "best/checkpoint": "x-e003.npz", "gone": None, "flag": True}
    )
    assert metrics == {"best/epoch": 3.0, "best/accuracy": 0.5, "flag": 1.0}
    assert all(type(v) is float for v in metrics.values())
    assert tags == {"best/checkpoint": "x-e003.npz"}


def test_param_text_and_artifact_folders() -> None:
    import numpy as np

    assert param_text(np.int64(32)) == "32"
    assert param_text(None) == ""
    assert param_text("x" * 7000) == "x" * 6000
    assert artifact_dir("model/best") == "model"
    assert artifact_dir("eval/groups.csv") == "eval"
    assert artifact_dir("vocab") is None
    assert artifact_dir("../../etc/passwd") == "etc"  # never above the run's artifact root


def test_the_config_the_plugin_logs_hides_passwords_and_tokens_in_logger_params() -> None:
    # The plugin logs RunContext.config as is: the core's RunConfig.public() has redacted it.
    from qa_core.config import RunConfig

    config = RunConfig(plugin="bow", logger_params={"mlflow": {"tracking_uri": "https://me:s3cret@h/", "experiment": "e"}, "x": {"uri": "https://t0ken@h"}})
    public = config.public()
    assert public["logger_params"]["mlflow"] == {"tracking_uri": "https://me:<redacted>@h/", "experiment": "e"}
    assert public["logger_params"]["x"] == {"uri": "https://<redacted>@h"}
    assert config.logger_params["mlflow"]["tracking_uri"] == "https://me:s3cret@h/"  # the original is untouched
