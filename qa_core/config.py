"""The run configuration: one dataclass, filled from a TOML file and then from CLI options.

Every field is checked once, here, before any data is read or any file is written; a bad value is
a ConfigError naming the option (or the file and key).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Records per split of the default dataset generated when ``qa run`` is given no data.
DEFAULT_DATA_SIZES = {"train": 4500, "val": 900, "test": 900}

_SECRET_KEY = re.compile(r"token|secret|password|api[_-]?key|credential", re.IGNORECASE)
#: The userinfo of a URL: ``user:password@`` (password hidden) or a lone ``token@`` (hidden whole,
#: as servers take a token in the user slot).
_URL_USERINFO = re.compile(r"(://)([^/@\s]+)(@)")
REDACTED = "<redacted>"


@dataclass
class RunConfig:
    plugin: str = ""
    data_dir: str | None = None
    train: str | None = None
    val: str | None = None
    test: str | None = None
    data_format: str = "auto"
    epochs: int = 5
    batch_size: int = 32
    lr: float | None = None
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    loggers: list[str] = field(default_factory=list)
    logger_params: dict[str, dict[str, str]] = field(default_factory=dict)
    runs_dir: str = "runs"
    progress: bool | None = None  # None: show bars when stderr is a terminal
    top_k: int = 3
    checkpoint_every: int = 0
    patience: int = 0
    threshold: float = 0.5
    max_len: int | None = None
    val_fraction: float = 0.1
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    # the training kit (checked by check_training_kit below)
    callbacks: list[str] = field(default_factory=list)
    callback_params: dict[str, dict[str, str]] = field(default_factory=dict)
    monitor: str = "metrics/val/accuracy"
    mode: str | None = None  # None: inferred from the monitor's name (loss: min, accuracy: max)
    min_delta: float = 0.0
    log_every_n_steps: int = 0
    limit_train_batches: int = 0
    fast_dev_run: bool = False
    #: Batches of rows of similar length (qa_core/batching.py); a run's config.json without the
    #: key is from before it existed, when epochs were plainly shuffled: read back as False.
    group_by_length: bool = True

    def check(self) -> "RunConfig":
        if not self.plugin:
            raise ConfigError("--plugin: required (see `qa plugins` for the installed model plugins)")
        _positive_int("--epochs", self.epochs)
        _positive_int("--batch-size", self.batch_size)
        _non_negative_int("--top-k", self.top_k)
        _non_negative_int("--checkpoint-every", self.checkpoint_every)
        _non_negative_int("--patience", self.patience)
        check_seed("--seed", self.seed)
        if self.lr is not None:
            if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) or self.lr <= 0:
                raise ConfigError(f"--lr: expected a positive number, got {self.lr!r}")
            self.lr = float(self.lr)
        if not isinstance(self.threshold, (int, float)) or not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"--threshold: expected a number between 0 and 1, got {self.threshold!r}")
        if not isinstance(self.val_fraction, (int, float)) or not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction: expected a number between 0 and 1, got {self.val_fraction!r}")
        if self.max_len is not None:
            _positive_int("--max-len", self.max_len)
            if self.max_len < 4:
                raise ConfigError(f"--max-len: must be at least 4, got {self.max_len}")
        if self.data_format not in ("auto", "jsonl", "babi"):
            raise ConfigError(f"--format: expected auto, jsonl or babi, got {self.data_format!r}")
        if self.data_dir and (self.train or self.val or self.test):
            raise ConfigError("--data: give either --data DIR or --train/--val/--test files, not both")
        if (self.train is None) != (self.test is None) and not self.data_dir:
            raise ConfigError("--train/--test: give both (and optionally --val), or --data DIR")
        if self.val and not self.train:
            raise ConfigError("--val: needs --train and --test too")
        check_training_kit(self)
        if not isinstance(self.runs_dir, (str, Path)):
            raise ConfigError(f"--runs-dir: expected a path, got {self.runs_dir!r}")
        check_output_dir("--runs-dir", self.runs_dir)
        return self

    def public(self) -> dict[str, Any]:
        """The config as JSON, secrets replaced: this is what config.json and trackers get."""
        data = asdict(self)
        data["logger_params"] = redact_logger_params(self.logger_params)
        data["callback_params"] = redact_logger_params(self.callback_params)
        return data


def looks_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact_url(text: str) -> str:
    """``https://me:secret@host`` -> ``https://me:<redacted>@host`` and ``https://token@host`` ->
    ``https://<redacted>@host``, anywhere in ``text``."""

    def hide(match: re.Match[str]) -> str:
        user, colon, _password = match.group(2).partition(":")
        return f"{match.group(1)}{user + ':' if colon else ''}{REDACTED}{match.group(3)}"

    return _URL_USERINFO.sub(hide, text)


def redact_logger_params(logger_params: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    return {
        tracker: {key: (REDACTED if _SECRET_KEY.search(key) else redact_url(value) if isinstance(value, str) else value) for key, value in options.items()}
        for tracker, options in logger_params.items()
    }


def _positive_int(option: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{option}: expected a positive integer, got {value!r}")


def _non_negative_int(option: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{option}: expected a non-negative integer, got {value!r}")


def infer_mode(monitor: str) -> str | None:
    """"min" for a loss, "max" for an accuracy; None when the name does not tell."""
    last = monitor.rsplit("/", 1)[-1]
    if last == "loss" or last.endswith("_loss"):
        return "min"
    if last == "accuracy" or last.endswith("_accuracy"):
        return "max"
    return None


def check_training_kit(config: RunConfig) -> None:
    """--monitor/--mode/--min-delta, step logging, quick runs and callbacks."""
    if not isinstance(config.monitor, str) or not config.monitor.strip():
        raise ConfigError(f"--monitor: expected a metric name such as metrics/val/loss, got {config.monitor!r}")
    if config.mode is not None and config.mode not in ("min", "max"):
        raise ConfigError(f"--mode: expected min or max, got {config.mode!r}")
    inferred = infer_mode(config.monitor)
    if config.mode is None and inferred is None:
        raise ConfigError(f"--monitor {config.monitor}: cannot tell whether higher or lower is better; add --mode max or --mode min")
    config.mode = config.mode or inferred
    if isinstance(config.min_delta, bool) or not isinstance(config.min_delta, (int, float)) or not math.isfinite(config.min_delta) or config.min_delta < 0:
        raise ConfigError(f"--min-delta: expected a non-negative number, got {config.min_delta!r}")
    config.min_delta = float(config.min_delta)
    _non_negative_int("--log-every-n-steps", config.log_every_n_steps)
    _non_negative_int("--limit-train-batches", config.limit_train_batches)
    if not isinstance(config.fast_dev_run, bool):
        raise ConfigError(f"--fast-dev-run: expected true or false, got {config.fast_dev_run!r}")
    if not isinstance(config.group_by_length, bool):
        raise ConfigError(f"--group-by-length: expected true or false, got {config.group_by_length!r}")
    if not isinstance(config.callbacks, list) or not all(isinstance(name, str) for name in config.callbacks):
        raise ConfigError(f"--callback: expected plugin names, got {config.callbacks!r}")


CONFIG_KEYS = {f.name for f in fields(RunConfig)}
#: TOML keys that are spelled like their command-line flag (``--data``, ``--format``, ``--tag`` ...).
KEY_ALIASES = {"data": "data_dir", "format": "data_format", "param": "params", "logger": "loggers", "logger_param": "logger_params", "tag": "tags", "callback": "callbacks", "callback_param": "callback_params"}

#: Seeds every framework takes (numpy's legacy seed, torch, TensorFlow): 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1


def check_seed(option: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{option}: expected an integer from 0 to {MAX_SEED}, got {value!r}")


def check_batch_size(option: str, value: Any) -> None:
    _positive_int(option, value)


def check_threshold(option: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ConfigError(f"{option}: expected a number between 0 and 1, got {value!r}")


def check_output_dir(option: str, path: str | Path) -> None:
    """A folder qa will create files in: refused up front when it is a file, lies under a file, or
    is on a read-only or unwritable place (nothing is created here)."""
    from .fsutil import output_dir_problem

    problem = output_dir_problem(path)
    if problem:
        raise ConfigError(f"{option} {path}: {problem}")


def check_output_file(option: str, path: str | Path) -> None:
    """A file qa will write: refused up front when it is a directory or its folder cannot be made."""
    from .fsutil import output_dir_problem

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory, expected a file name")
    problem = output_dir_problem(path.parent)
    if problem:
        raise ConfigError(f"{option} {path}: {problem}")


#: Bytes per encoded token per record (int32), times the copies the loop holds (the split and
#: each epoch's shuffled gather of it).
_ENCODED_BYTES_PER_TOKEN = 4 * 2


def check_encoding_fits(option: str, max_len: int, records: int) -> None:
    """Refuse a max_len whose encoded arrays this machine cannot hold, before allocating them."""
    from .fsutil import available_memory

    need = records * max_len * _ENCODED_BYTES_PER_TOKEN
    have = available_memory()
    if have is not None and need > have:
        raise ConfigError(
            f"{option} {max_len}: the encoded data would need {_size(need)} ({records:,} records x {max_len:,} tokens), "
            f"more than the {_size(have)} of memory available; use a smaller --max-len"
        )


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} PiB"  # pragma: no cover


# -------------------------------------------------------------------------------------------------
# run.toml
# -------------------------------------------------------------------------------------------------

#: The CLI option of each RunConfig field: the checks' messages start with it.
OPTIONS = {
    "plugin": "--plugin", "data_dir": "--data", "train": "--train", "val": "--val", "test": "--test",
    "data_format": "--format", "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "seed": "--seed",
    "runs_dir": "--runs-dir", "top_k": "--top-k", "checkpoint_every": "--checkpoint-every", "patience": "--patience",
    "threshold": "--threshold", "max_len": "--max-len", "val_fraction": "--val-fraction",
    "group_by_length": "--group-by-length",
}
#: What a TOML value must be, for the keys whose checks do not already say (numbers are checked
#: by RunConfig.check, and named by file and key through check_config).
_TOML_TEXT = ("plugin", "data_dir", "train", "val", "test", "data_format", "runs_dir", "name")
_TOML_LISTS = {"loggers": 'loggers = ["neptune"]', "tags": 'tags = ["baseline"]'}
_MAX_TOML_BYTES = 1 << 20


def check_config(config: RunConfig, from_file: Mapping[str, str], path: str | Path | None) -> RunConfig:
    """``config.check()``, but a bad value that came from the TOML file (``from_file``: field ->
    the key as written there) is named as ``FILE: key: ...``, not as the CLI option."""
    try:
        return config.check()
    except ConfigError as exc:
        message = str(exc)
        for name, key in from_file.items():
            option = OPTIONS.get(name)
            if option and (message.startswith(option + ":") or message.startswith(option + " ")):
                raise ConfigError(f"{path}: {key}{message[len(option):]}") from None
        raise


def check_stored_values(path: Path, values: dict[str, Any]) -> dict[str, Any]:
    """The options read back from a run's config.json, each checked for its kind like a TOML
    value (a ConfigError names the file and key): a hand-edited file never crashes a resume."""
    return {name: _check_toml_value(path, name, name, value) for name, value in values.items()}


def _check_toml_value(path: Path, key: str, name: str, value: Any) -> Any:
    """The value a TOML key holds, checked for its kind; a ConfigError names the file and key."""
    where = f"{path}: {key}"
    if name in _TOML_TEXT and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if name in ("progress", "group_by_length") and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if name in _TOML_LISTS:
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            raise ConfigError(f"{where}: expected a list of names, e.g. {_TOML_LISTS[name]}, got {value!r}")
    if name == "params" and not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table ([params])")
    if name == "logger_params":
        return _toml_logger_params(where, value)
    return value


def _toml_logger_params(where: str, value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict) or not all(isinstance(options, dict) for options in value.values()):
        raise ConfigError(f"{where}: expected tables of tracker options ([logger_params.TRACKER]), got {value!r}")
    out: dict[str, dict[str, str]] = {}
    for tracker, options in value.items():
        for key, option in options.items():
            if isinstance(option, (dict, list)):
                raise ConfigError(f"{where}.{tracker}.{key}: expected a single value, got {option!r}")
            text = ("true" if option else "false") if isinstance(option, bool) else str(option)
            out.setdefault(tracker, {})[key] = text
    return out



def load_config_file(path: str | Path, keys: dict[str, str] | None = None) -> dict[str, Any]:
    """A run.toml, or a run's config.json (what ``qa run`` wrote: its options are read back, so
    ``qa run --config RUN/config.json`` repeats the run under a new id). ``keys``: see load_toml."""
    path = Path(path)
    raw = _read_config_bytes(path)
    if path.suffix.lower() == ".json" or raw.lstrip()[:1] == b"{":
        return run_json_options(path, raw)
    return load_toml(path, raw, keys)


def _read_config_bytes(path: Path) -> bytes:
    # A pipe is read (`qa run --print-config | qa run --config /dev/stdin`), but a FIFO with no
    # writer is not waited for, a device is refused, and no more than _MAX_TOML_BYTES are held.
    from .fsutil import NotAFile, read_bytes_bounded

    try:
        return read_bytes_bounded(path, _MAX_TOML_BYTES)
    except NotAFile as exc:
        raise ConfigError(f"{path}: config file {exc.reason}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None


#: Options added after runs were already on disk, and the value such a run's config.json (which
#: lacks the key) had in effect: a resume or a re-run of an old run behaves as that run did.
LEGACY_DEFAULTS = {"group_by_length": False}


def with_legacy_defaults(stored: Mapping[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (read from a run's config.json ``stored``) plus LEGACY_DEFAULTS for the keys
    ``stored`` lacks."""
    return {**{k: v for k, v in LEGACY_DEFAULTS.items() if k not in stored}, **values}


def run_json_options(path: Path, raw: bytes | None = None) -> dict[str, Any]:
    """The options stored in a run's config.json: the RunConfig fields, with the plugin's
    hyperparameters as they were resolved (every default filled in), and without redacted secrets."""
    import json

    try:
        stored = json.loads((raw if raw is not None else path.read_bytes()).decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: config: not a JSON config ({exc})") from None
    if not isinstance(stored, dict) or "plugin" not in stored:
        raise ConfigError(f"{path}: config: not a run's config.json (no plugin)")
    values = with_legacy_defaults(stored, {k: v for k, v in stored.items() if k in CONFIG_KEYS})
    resolved = stored.get("resolved_params") or {}
    values["params"] = {**values.get("params", {}), **{k[len("model/"):]: v for k, v in resolved.items() if k.startswith("model/")}}
    for table in ("logger_params", "callback_params"):
        values[table] = {plugin: {k: v for k, v in options.items() if v != REDACTED} for plugin, options in (values.get(table) or {}).items()}
    return values


def load_toml(path: str | Path, raw: bytes | None = None, keys: dict[str, str] | None = None) -> dict[str, Any]:
    """Read a run.toml. Keys are RunConfig fields (``batch_size`` or ``batch-size``) or their flag's
    name (``data``, ``format``, ``tag`` ...); a ``[params]`` table holds hyperparameters and
    ``[logger_params.NAME]`` tracker options. A value of the wrong kind is a ConfigError naming
    the file and key; ``keys``, when given, is filled with field -> the key as the file spells it."""
    path = Path(path)
    raw = _read_config_bytes(path) if raw is None else raw
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: config: invalid TOML ({exc})") from None
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        name = KEY_ALIASES.get(name, name)
        if name not in CONFIG_KEYS:
            raise ConfigError(f"{path}: {key}: unknown key (known: {', '.join(sorted(CONFIG_KEYS))})")
        out[name] = _check_toml_value(path, key, name, value)
        if keys is not None:
            keys[name] = key
    if "logger_params" in out:  # what --print-config redacted is not a value to use
        out["logger_params"] = {t: {k: v for k, v in o.items() if v != REDACTED} for t, o in out["logger_params"].items()}
    return out


def to_toml(config: RunConfig) -> str:
    """The config as TOML that :func:`load_toml` reads back; None values (the defaults that mean
    "decide later") are left out, and secrets are redacted."""
    data = config.public()
    lines = ["# qa run options: qa run --config FILE (command-line options win)"]
    tables = {"params": data.pop("params"), "logger_params": data.pop("logger_params"), "callback_params": data.pop("callback_params")}
    lines += [f"{key} = {_toml_value(value)}" for key, value in data.items() if value is not None]
    if tables["params"]:
        lines += ["", "[params]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in tables["params"].items() if v is not None)]
    for table in ("logger_params", "callback_params"):
        for plugin, options in tables[table].items():
            lines += ["", f"[{table}.{_toml_key(plugin)}]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in options.items())]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    import json

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def parse_key_values(option: str, items: list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a malformed item is a ConfigError."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def parse_logger_params(items: list[str], option: str = "--logger-param") -> dict[str, dict[str, str]]:
    """``["neptune.mode=offline"]`` -> ``{"neptune": {"mode": "offline"}}`` (also for --callback-param)."""
    out: dict[str, dict[str, str]] = {}
    what = "CALLBACK" if option == "--callback-param" else "TRACKER"
    for key, value in parse_key_values(option, items).items():
        tracker, dot, name = key.partition(".")
        if not dot or not name:
            raise ConfigError(f"{option} {key}={value}: expected {what}.KEY=VALUE")
        out.setdefault(tracker, {})[name] = value
    return out
