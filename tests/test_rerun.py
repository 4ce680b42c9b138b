"""Runs you can re-run: a run's config.json as --config, --from RUN_DIR, --print-config round trips,
and every TOML key a flag (and every flag a TOML key)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qa_core.config import CONFIG_KEYS, KEY_ALIASES, RunConfig, load_toml, to_toml

#: Options of `qa run` that steer the command instead of naming a run option (--seeds and
#: --repeats make a group of runs, each with its own seed).
META_FLAGS = {"config", "from", "print_config", "resume", "traceback", "help", "seeds", "repeats", "allow_changed_data", "nproc_per_node"}


def only_new(runs: Path, before: set[str]) -> Path:
    (path,) = [p for p in runs.iterdir() if p.name not in before and not p.name.startswith("_")]
    return path


def read(run_dir: Path, name: str = "config.json"):
    return json.loads((run_dir / name).read_text())


def comparable(config: dict) -> dict:
    """The options of a run, without what differs between any two runs (id, provenance)."""
    out = {k: v for k, v in config.items() if k in CONFIG_KEYS and k != "params"}
    out["resolved_params"] = {k: v for k, v in config["resolved_params"].items() if not k.startswith(("provenance/", "versions/"))}
    return out


@pytest.fixture(scope="module")
def original(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory, qa) -> Path:
    runs = tmp_path_factory.mktemp("rerun") / "runs"
    result = qa(
        "run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "2", "--seed", "3", "--lr", "0.3",
        "--param", "l2=0.001", "--top-k", "1", "--val-fraction", "0.2", "--name", "baseline", "--tag", "a",
        "--no-progress", "--runs-dir", str(runs),
    )  # fmt: skip
    assert result.code == 0, result.err
    return only_new(runs, set())


def test_config_json_as_config_repeats_the_run(original: Path, qa) -> None:
    runs = original.parent
    before = {p.name for p in runs.iterdir()}
    result = qa("run", "--config", str(original / "config.json"), "--no-progress")
    assert result.code == 0, result.err
    again = only_new(runs, before)
    assert again.name != original.name
    assert comparable(read(again)) == comparable(read(original))
    assert read(again)["resolved_params"]["model/l2"] == 0.001 and read(again)["name"] == "baseline"
    # Same options, same seed, same data: the same numbers, epoch by epoch.
    assert (again / "metrics.jsonl").read_text().replace(again.name, "") == (original / "metrics.jsonl").read_text().replace(original.name, "")


def test_from_run_dir_with_an_override(original: Path, qa) -> None:
    runs = original.parent
    before = {p.name for p in runs.iterdir()}
    result = qa("run", "--from", str(original), "--epochs", "1", "--no-progress")
    assert result.code == 0, result.err
    again = read(only_new(runs, before))
    assert again["epochs"] == 1  # the command line wins
    assert {k: v for k, v in comparable(again).items() if k != "epochs" and k != "resolved_params"} == {
        k: v for k, v in comparable(read(original)).items() if k != "epochs" and k != "resolved_params"
    }
    missing = qa("run", "--from", str(runs / "nope"))
    assert missing.code == 2 and missing.err.strip() == f"error: --from {runs / 'nope'}: not a run directory (no config.json)"


def test_print_config_round_trips_through_a_pipe(original: Path, tiny_data: Path) -> None:
    qa = f"{sys.executable} -m qa_core.cli"
    printed = subprocess.run(
        f"{qa} run --config {original / 'config.json'} --epochs 4 --print-config", shell=True, capture_output=True, text=True, timeout=120
    )
    assert printed.returncode == 0, printed.stderr
    # /dev/stdin is a pipe here: --config must read it (no regular-file check may refuse it).
    again = subprocess.run(
        f"{qa} run --config {original / 'config.json'} --epochs 4 --print-config | {qa} run --config /dev/stdin --print-config",
        shell=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout == printed.stdout
    assert "epochs = 4" in printed.stdout and 'name = "baseline"' in printed.stdout
    assert re.search(r"^\[params\]\nlr = 0\.3\nl2 = 0\.001\nbinary = true$", printed.stdout, re.M), printed.stdout  # every default resolved


def test_print_config_writes_nothing(tmp_path: Path, qa) -> None:
    result = qa("run", "--plugin", "bow", "--runs-dir", str(tmp_path / "runs"), "--print-config")
    assert result.code == 0, result.err
    assert not (tmp_path / "runs").exists()
    assert load_toml_text(tmp_path, result.out)["plugin"] == "bow"


def load_toml_text(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "printed.toml"
    path.write_text(text)
    return load_toml(path)


def test_to_toml_round_trips_every_field(tmp_path: Path) -> None:
    config = RunConfig(
        plugin="bow", train="a b/train.jsonl", test='q"uote.jsonl', lr=1e-3, params={"x.y": 1, "flag": False, "s": "é"},
        loggers=["mlflow"], logger_params={"mlflow": {"experiment": "e", "api_token": "s3cret"}}, tags=["t1", "t 2"],
        name="n", val_fraction=0.25, progress=False,
    )  # fmt: skip
    text = to_toml(config)
    assert "s3cret" not in text
    back = RunConfig(**load_toml_text(tmp_path, text))
    expected = RunConfig(**{**config.__dict__, "logger_params": {"mlflow": {"experiment": "e"}}})  # the secret stays out
    assert back == expected


def _run_flags() -> dict[str, str]:
    """Every option of `qa run`, flag -> parameter name, from the real command."""
    import typer.main

    from qa_core.cli import app

    command = typer.main.get_command(app).commands["run"]
    return {opt: param.name for param in command.params for opt in param.opts if opt.startswith("--")}


def test_every_flag_is_a_toml_key_and_every_key_a_flag(tmp_path: Path) -> None:
    flags = {flag[2:].replace("-", "_"): flag for flag in _run_flags() if flag[2:].replace("-", "_") not in META_FLAGS}
    keys = {KEY_ALIASES.get(name, name): flag for name, flag in flags.items()}
    assert set(keys) == CONFIG_KEYS, (set(keys) ^ CONFIG_KEYS)
    # and a TOML file spelled with the flags' names loads
    lines = [f'{flag[2:]} = "x"' for flag in flags.values() if flag[2:] in ("data", "format", "plugin")]
    path = tmp_path / "flags.toml"
    path.write_text("\n".join(lines + ["tag = ['a']", "logger = ['mlflow']", "val-fraction = 0.3", "name = 'n'", "[param]", "lr = 0.1"]))
    assert load_toml(path) == {"data_dir": "x", "data_format": "x", "plugin": "x", "tags": ["a"], "loggers": ["mlflow"], "val_fraction": 0.3, "name": "n", "params": {"lr": 0.1}}


def _all_flags() -> set[str]:
    """Every --flag of every qa command."""
    import typer.main

    from qa_core.cli import app

    flags: set[str] = set()

    def walk(command) -> None:
        for param in command.params:
            flags.update(opt for opt in [*param.opts, *getattr(param, "secondary_opts", [])] if opt.startswith("--"))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    return flags


def test_every_option_an_error_names_exists() -> None:
    """An error that says `--val-fraction: ...` must point at a flag the user can type."""
    import qa_core

    named: dict[str, set[str]] = {}
    for path in Path(qa_core.__file__).parent.rglob("*.py"):
        for option in re.findall(r'(?:ConfigError|QAError)\(\s*f?"(--[a-z][a-z-]+)', path.read_text(encoding="utf-8")):
            named.setdefault(option, set()).add(path.name)
    assert "--val-fraction" in named and len(named) > 20
    missing = {option: files for option, files in named.items() if option not in _all_flags()}
    assert not missing, missing
