"""Run configuration: TOML files, CLI precedence, checks, secrets."""

from __future__ import annotations

import json

import pytest

from qa_core.config import RunConfig, load_toml, parse_logger_params
from qa_core.errors import ConfigError


def test_toml_keys_map_to_fields_and_unknown_keys_are_named(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('plugin = "bow"\nbatch-size = 16\nepochs = 2\n[params]\nlr = 0.1\n')
    assert load_toml(path) == {"plugin": "bow", "batch_size": 16, "epochs": 2, "params": {"lr": 0.1}}
    path.write_text('plugin = "bow"\nepoch = 2\n')
    with pytest.raises(ConfigError, match=r"run.toml: epoch: unknown key"):
        load_toml(path)
    path.write_text("plugin = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_toml(path)


@pytest.mark.parametrize(
    "field, value, message",
    [("epochs", -1, "--epochs"), ("batch_size", 0, "--batch-size"), ("lr", "fast", "--lr"), ("lr", float("nan"), "--lr"), ("threshold", 1.5, "--threshold")],
)
def test_bad_values_name_the_option(field, value, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(plugin="bow", **{field: value}).check()


def test_secrets_are_redacted_from_the_public_config():
    config = RunConfig(plugin="bow", logger_params=parse_logger_params(["neptune.api_token=SECRET123", "neptune.project=me/qa"]))
    text = json.dumps(config.public())
    assert "SECRET123" not in text and "me/qa" in text


def test_cli_options_override_the_config_file(qa, tmp_path, tiny_data):
    path = tmp_path / "run.toml"
    path.write_text(f'plugin = "bow"\nepochs = 3\ndata_dir = "{tiny_data}"\nruns_dir = "{tmp_path / "runs"}"\nprogress = false\n')
    result = qa("run", "--config", str(path), "--epochs", "1")
    assert result.code == 0, result.err
    run_dir = next(p for p in (tmp_path / "runs").iterdir())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["epochs"] == 1 and config["plugin"] == "bow"
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1


def test_a_bad_config_file_is_one_line_and_nothing_is_written(qa, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('plugin = "bow"\nbatch_size = 0\n')
    result = qa("run", "--config", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert result.code == 2 and result.err.strip() == f"error: {path}: batch_size: expected a positive integer, got 0"  # the file and key, not the option
    assert not (tmp_path / "runs").exists()
