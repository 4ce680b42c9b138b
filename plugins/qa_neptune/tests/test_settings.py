"""Connection settings: options over environment, refused tokens, the data directory."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from qa_neptune.settings import DEFAULT_STOP_TIMEOUT, SettingsError, resolve

TOKEN = base64.b64encode(
    json.dumps({"api_address": "http://127.0.0.1:9", "api_url": "http://127.0.0.1:9", "api_key": "key-3c1f9a"}).encode()
).decode()


def test_offline_by_default_without_a_token(tmp_path: Path) -> None:
    settings = resolve({}, env={}, cwd=tmp_path)
    assert settings.mode == "offline"
    assert settings.neptune_dir == tmp_path / ".neptune"
    assert settings.sync_path == tmp_path
    assert not settings.set_data_dir
    assert settings.stop_timeout == DEFAULT_STOP_TIMEOUT


def test_async_when_a_token_and_a_project_are_set(tmp_path: Path) -> None:
    settings = resolve({}, env={"NEPTUNE_API_TOKEN": TOKEN, "NEPTUNE_PROJECT": "ws/proj"}, cwd=tmp_path)
    assert (settings.mode, settings.project, settings.api_token) == ("async", "ws/proj", TOKEN)


def test_options_win_over_the_environment(tmp_path: Path) -> None:
    env = {"NEPTUNE_MODE": "offline", "NEPTUNE_PROJECT": "env/proj", "NEPTUNE_DATA_DIRECTORY": "/elsewhere/.neptune"}
    options = {"mode": "debug", "project": "opt/proj", "name": "my run", "tags": "a, b,,c", "data_dir": "nep"}
    settings = resolve(options, env=env, cwd=tmp_path)
    assert (settings.mode, settings.project, settings.name, settings.tags) == ("debug", "opt/proj", "my run", ("a", "b", "c"))
    assert settings.neptune_dir == tmp_path / "nep" / ".neptune"
    assert settings.sync_path == tmp_path / "nep"
    assert settings.set_data_dir


def test_the_environment_data_directory_is_used_as_is(tmp_path: Path) -> None:
    settings = resolve({}, env={"NEPTUNE_DATA_DIRECTORY": str(tmp_path / "x" / ".neptune")}, cwd=tmp_path)
    assert settings.neptune_dir == tmp_path / "x" / ".neptune"
    assert settings.sync_path == tmp_path / "x"
    assert not settings.set_data_dir


@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        ({}, {"NEPTUNE_MODE": "bogus"}, "NEPTUNE_MODE"),
        ({"mode": "async", "project": "a/b"}, {}, "NEPTUNE_API_TOKEN"),
        ({"mode": "sync"}, {"NEPTUNE_API_TOKEN": TOKEN}, "needs a project"),
    ],
)
def test_unusable_settings_name_the_problem(options: dict, env: dict, expected: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=expected):
        resolve(options, env=env, cwd=tmp_path)


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("neptune.projet=a/b", "neptune.projet: unknown parameter for plugin 'neptune'"),
        ("neptune.mode=read-only", "neptune.mode: expected one of async, sync, offline, debug"),
        ("neptune.stop_timeout=soon", "neptune.stop_timeout: expected float"),
        ("neptune.stop_timeout=-1", "neptune.stop_timeout: must be >= 0.0"),
        ("neptune.hardware=maybe", "neptune.hardware: expected true/false"),
    ],
)
def test_the_core_checks_the_options_before_they_reach_the_plugin(option: str, expected: str) -> None:
    # The core converts and checks --logger-param values against PARAMS: the plugin has no parser.
    from qa_core.errors import ConfigError
    from qa_core.plugins import load_plugins
    from qa_core.config import parse_logger_params
    from qa_core.tracking.options import resolve_tracker_options

    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        resolve_tracker_options(load_plugins(), ["neptune"], parse_logger_params([option]))


def test_the_plugin_gets_typed_options_with_every_default() -> None:
    from qa_core.config import parse_logger_params
    from qa_core.plugins import load_plugins
    from qa_core.tracking.options import resolve_tracker_options

    options = resolve_tracker_options(load_plugins(), ["neptune"], parse_logger_params(["neptune.hardware=yes", "neptune.stop_timeout=5"]))
    assert options["neptune"] == {
        "project": "", "mode": "", "name": "", "tags": "", "data_dir": "", "stop_timeout": 5.0, "hardware": True, "verbose": False,
    }


@pytest.mark.parametrize("key", ["api_token", "API_TOKEN", "token", "api-key", "password"])
def test_a_token_option_is_refused_by_the_core_without_echoing_it(key: str) -> None:
    from qa_core.errors import ConfigError
    from qa_core.plugins import load_plugins
    from qa_core.tracking.options import resolve_tracker_options

    with pytest.raises(ConfigError) as caught:
        resolve_tracker_options(load_plugins(), ["neptune"], {"neptune": {key: TOKEN}})
    assert "secrets are not taken on the command line" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_stop_timeout_stays_below_the_core_tracker_timeout(tmp_path: Path) -> None:
    assert resolve({"stop_timeout": 15.0}, env={}, cwd=tmp_path, tracker_timeout=30).stop_timeout == 15
    assert resolve({"stop_timeout": 15.0}, env={}, cwd=tmp_path, tracker_timeout=4).stop_timeout == 2


def test_secrets_cover_the_token_and_the_key_inside_it(tmp_path: Path) -> None:
    settings = resolve({}, env={"NEPTUNE_API_TOKEN": TOKEN, "NEPTUNE_PROJECT": "ws/p"}, cwd=tmp_path)
    assert settings.secrets() == [TOKEN, "key-3c1f9a"]
    assert TOKEN not in repr(settings)
    assert resolve({}, env={"NEPTUNE_API_TOKEN": "not base64!", "NEPTUNE_PROJECT": "ws/p"}, cwd=tmp_path).secrets() == ["not base64!"]
