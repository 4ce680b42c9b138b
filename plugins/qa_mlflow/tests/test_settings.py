"""Settings and name mapping: pure Python, checked against MLflow's own validators."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_mlflow.names import artifact_dir, mlflow_key, param_text, split_values
from qa_mlflow.settings import SettingsError, redact_uri, resolve, sqlite_path


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


def test_unknown_and_credential_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"mlflow\.tracking_url: unknown option; known: tracking_uri"):
        resolve({"tracking_url": "x"}, runs_dir=Path("runs"), env={}, cwd=tmp_path)
    with pytest.raises(SettingsError, match="MLFLOW_TRACKING_TOKEN"):
        resolve({"token": "abc"}, runs_dir=Path("runs"), env={}, cwd=tmp_path)
    with pytest.raises(SettingsError, match="expected true/false"):
        resolve({"verbose": "maybe"}, runs_dir=Path("runs"), env={}, cwd=tmp_path)
    assert resolve({"verbose": "yes"}, runs_dir=Path("runs"), env={}, cwd=tmp_path).verbose


def test_passwords_in_uris_are_never_shown(tmp_path: Path) -> None:
    assert redact_uri("https://me:s3cret@mlflow.example/") == "https://me:***@mlflow.example/"
    assert redact_uri("https://tok3n@mlflow.example") == "https://***@mlflow.example"
    assert redact_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    settings = resolve({"tracking_uri": "https://me:s3cret@h/"}, runs_dir=Path("runs"), env={}, cwd=tmp_path)
    assert "s3cret" not in settings.shown_uri
    assert settings.secrets() == ("s3cret",)
    assert resolve({}, runs_dir=Path("runs"), env={}, cwd=tmp_path).secrets() == ()


def test_error_lines_are_short_and_hide_secrets() -> None:
    from qa_mlflow.session import describe

    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise RuntimeError("API request to https://me:s3cret@h/api failed\nwith many\nlines") from inner
    except RuntimeError as exc:
        assert describe(exc, "https://me:***@h/", ("s3cret",)) == "cannot reach https://me:***@h/ (Connection refused)"
    long = ValueError("bad value s3cret " + "x" * 500 + "\nsecond line")
    text = describe(long, "sqlite:///m.db", ("s3cret",))
    assert text.startswith("ValueError: bad value *** x") and text.endswith("...") and len(text) == 300
    # a local OSError (a full disk, a file in the way) is not "cannot reach"
    assert describe(NotADirectoryError(20, "Not a directory"), "sqlite:///m.db").startswith("NotADirectoryError: ")


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


def test_config_artifact_hides_passwords_in_logger_params() -> None:
    from qa_mlflow.settings import redact_config

    config = {"epochs": 3, "logger_params": {"mlflow": {"tracking_uri": "https://me:s3cret@h/", "experiment": "e"}}}
    redacted = redact_config(config)
    assert redacted["logger_params"]["mlflow"] == {"tracking_uri": "https://me:***@h/", "experiment": "e"}
    assert redacted["epochs"] == 3
    assert config["logger_params"]["mlflow"]["tracking_uri"] == "https://me:s3cret@h/"  # the original is untouched
