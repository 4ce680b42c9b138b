"""What a run is made of, before any model exists: its records, the plugin's resolved
hyperparameters, the encoded length, and the tracker options, each checked once.

Nothing here writes into a run directory; the one file written is the default dataset (under
``<runs_dir>/_data/``), generated once and reused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from . import __version__, console
from .config import DEFAULT_DATA_SIZES, RunConfig
from .data.loading import find_split_files, read_dir, read_examples
from .data.records import Example, write_jsonl
from .data.splits import stratified_split
from .data.tokenizer import sequence_lengths
from .errors import ConfigError
from .fsutil import directory_lock
from .plugins import ModelPlugin

#: Encoded length when neither --max-len nor a plugin ``max_len`` parameter says otherwise:
#: the longest training record, capped here.
MAX_AUTO_LEN = 512


@dataclass
class Data:
    splits: dict[str, list[Example]]
    dataset: str
    sources: dict[str, str] = field(default_factory=dict)
    #: Every file the records came from (absolute), so a resume can check they are unchanged.
    files: list[Path] = field(default_factory=list)


#: --fast-dev-run without data: a small generated set instead of the full default dataset.
FAST_DEV_DATA_SIZES = {"train": 128, "val": 64, "test": 64}


def load_data(config: RunConfig, runs_dir: Path) -> Data:
    """The train/val/test records the config names, or the default generated dataset."""
    if config.data_dir:
        directory = Path(config.data_dir)
        splits = read_dir(directory)
        files = [p for paths in find_split_files(directory).values() for p in paths]
        data = Data(splits, directory.resolve().name, {"data_dir": str(config.data_dir)}, files)
    elif config.train:
        splits = {"train": read_examples(config.train, config.data_format)}
        if config.val:
            splits["val"] = read_examples(config.val, config.data_format)
        splits["test"] = read_examples(config.test, config.data_format)  # type: ignore[arg-type]
        sources = {k: str(getattr(config, k)) for k in ("train", "val", "test") if getattr(config, k)}
        files = [Path(getattr(config, k)) for k in ("train", "val", "test") if getattr(config, k)]
        data = Data(splits, Path(config.train).resolve().parent.name or Path(config.train).stem, sources, files)
    else:
        data = default_dataset(runs_dir, config.seed, FAST_DEV_DATA_SIZES if config.fast_dev_run else DEFAULT_DATA_SIZES)
    data.files = [p.resolve() for p in data.files]
    if "val" not in data.splits:
        train, val = stratified_split(data.splits["train"], config.val_fraction, config.seed)
        if not train or not val:
            raise ConfigError(f"--train: too few records ({len(data.splits['train'])}) to carve a validation split")
        data.splits["train"], data.splits["val"] = train, val
        data.sources["val"] = f"stratified {config.val_fraction:g} of train"
    return data


def default_dataset(runs_dir: Path, seed: int, sizes: dict[str, int] = DEFAULT_DATA_SIZES) -> Data:
    """Generate (once, then reuse) the default dataset under ``<runs_dir>/_data/``."""
    from .data.generator import GENERATOR_VERSION, generate_splits

    # Named by everything that decides its content, so stale data is never silently reused.
    size = "" if sizes == DEFAULT_DATA_SIZES else "-" + "-".join(str(n) for n in sizes.values())
    directory = runs_dir.absolute() / "_data" / f"default-seed{seed}-gen{GENERATOR_VERSION}-qa{__version__}{size}"
    # Locked: a second run started meanwhile waits, then reuses the set instead of writing it again.
    with directory_lock(directory):
        if not all((directory / f"{split}.jsonl").is_file() for split in sizes):
            console.say(f"no data given: generating the default dataset into {directory}")
            splits = generate_splits(sizes, seed=seed)
            for split, examples in splits.items():
                write_jsonl(directory / f"{split}.jsonl", examples)
    splits = read_dir(directory)
    return Data(splits, "generated", {"data_dir": str(directory)}, [directory / f"{s}.jsonl" for s in sizes])


def file_digests(paths: Sequence[Path]) -> dict[str, str]:
    """``{absolute path: sha256}`` of the data files, recorded at the start of a run."""
    out = {}
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        out[str(path)] = digest.hexdigest()
    return out


def category_order(splits: dict[str, list[Example]]) -> tuple[str, ...]:
    """Generator categories in difficulty order first, then any others alphabetically."""
    from .data.generator import CATEGORIES

    seen = {e.category for examples in splits.values() for e in examples}
    return tuple(c for c in CATEGORIES if c in seen) + tuple(sorted(seen - set(CATEGORIES)))


def resolve_model_params(model_plugin: ModelPlugin, config: RunConfig) -> dict[str, Any]:
    """The plugin's hyperparameters: --param values, plus the core options that a plugin may
    declare as parameters of its own (--lr sets ``lr``, --max-len sets ``max_len``), so the model
    and the encoding never disagree. An explicit --param wins."""
    declared = {p.name for p in model_plugin.info.params}
    given = dict(config.params)
    if config.lr is not None:
        if "lr" not in declared:
            raise ConfigError(f"--lr: plugin '{model_plugin.name}' has no lr parameter")
        given.setdefault("lr", config.lr)
    if config.max_len is not None and "max_len" in declared:
        given.setdefault("max_len", config.max_len)
    return model_plugin.resolve_params(given)


def resolve_max_len(config: RunConfig, params: dict[str, Any], splits: dict[str, list[Example]]) -> int:
    """The encoded length: the plugin's ``max_len`` parameter (which --max-len sets), else
    --max-len; 0 or unset means "cover the data", the longest record of any split (capped at
    MAX_AUTO_LEN), so that no record loses text unless the user asked for a shorter window."""
    asked = params.get("max_len") if "max_len" in params else config.max_len
    if asked:
        if int(asked) < 4:
            raise ConfigError(f"max_len: 0 (cover the data) or at least 4, got {asked}")
        return int(asked)
    longest = max(int(sequence_lengths(examples).max()) for examples in splits.values() if examples)
    return int(min(MAX_AUTO_LEN, max(4, longest)))


def check_plugin_options(option: str, name: str, info: Any, options: dict[str, str]) -> dict[str, Any] | None:
    """A callback that declares its options has them converted and checked before the run
    starts, like a model plugin's --param (returned, typed, defaults filled; None when it declares
    none); secrets are never taken on the command line."""
    from .config import looks_secret
    from .plugins import resolve_params

    declared = {param.name for param in info.params}
    secret = next((key for key in options if key not in declared and looks_secret(key)), None)
    if secret:
        raise ConfigError(
            f"{option} {name}.{secret}: secrets are not taken on the command line (shell history, "
            f"process lists); set the plugin's environment variable instead (see its README)"
        )
    return resolve_params(name, info, options, option=f"{option} {name}.") if declared else None
