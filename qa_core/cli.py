"""The ``qa`` command line (typer).

Errors a user can fix (``QAError``) print one line, ``error: ...``, on stderr and exit 2 (a plugin
failure exits 1); ``--traceback`` (or ``QA_TRACEBACK=1``) shows the full traceback instead. Plugins
are loaded only by the commands that need them, so ``qa --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, List, Optional

import typer

from .cli_support import TracebackOption, _csv, _csv_ints, cli_errors, complete_models, complete_trackers, readable_metavars
from .errors import ConfigError

#: -h works wherever --help does (click passes these down to every subcommand).
CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    help="Train and evaluate yes/no question-answering models on stories, across frameworks.",
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)
data_app = typer.Typer(help="Generate, inspect, split and convert datasets.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(data_app, name="data")


def _show_version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"qa {__version__}")
        raise typer.Exit()


@app.callback()
def _app_options(
    version: bool = typer.Option(False, "--version", "-V", callback=_show_version, is_eager=True, help="Print the qa version and exit."),
) -> None:
    """Train and evaluate yes/no question-answering models on stories, across frameworks."""

# -------------------------------------------------------------------------------------------------
# qa run
# -------------------------------------------------------------------------------------------------
# Each option is declared once, as an Annotated alias, so that the command's signature reads as the
# list of what it takes. The order of the signature is the order of `qa run --help`.

# what to train, on what
PluginOpt = Annotated[Optional[str], typer.Option("--plugin", "-p", autocompletion=complete_models, help="Model plugin to train (see `qa plugins`).")]
DataOpt = Annotated[Optional[Path], typer.Option("--data", help="Directory with train/val/test files (JSONL or bAbI). Without any data option, a default dataset is generated.")]
TrainOpt = Annotated[Optional[Path], typer.Option("--train", help="Training file (JSONL or bAbI).")]
ValOpt = Annotated[Optional[Path], typer.Option("--val", help="Validation file; if absent, a stratified slice of --train.")]
TestOpt = Annotated[Optional[Path], typer.Option("--test", help="Test file.")]
FormatOpt = Annotated[Optional[str], typer.Option("--format", help="auto (default), jsonl or babi.")]
# how
EpochsOpt = Annotated[Optional[int], typer.Option("--epochs", "-e", help="Number of epochs [default: 5].")]
BatchSizeOpt = Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Batch size [default: 32].")]
LrOpt = Annotated[Optional[float], typer.Option("--lr", help="Learning rate (sets the plugin's lr parameter).")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Random seed [default: 0].")]
ParamOpt = Annotated[List[str], typer.Option("--param", help="Plugin hyperparameter KEY=VALUE (repeatable).")]
# options from a file or another run
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", metavar="FILE", help="TOML file with run options, or a run's config.json (re-run it); command-line options win.")]
FromOpt = Annotated[Optional[Path], typer.Option("--from", metavar="RUN_DIR", help="Re-run a run's options (RUN_DIR/config.json) under a new run id; command-line options win.")]
PrintConfigOpt = Annotated[bool, typer.Option("--print-config", help="Print the resolved options as TOML (which --config reads back) and exit without training.")]
# trackers, the run directory, checkpoints and early stopping
LoggerOpt = Annotated[List[str], typer.Option("--logger", "-l", autocompletion=complete_trackers, help="Extra tracker plugin (repeatable), e.g. neptune. Local files are always written.")]
LoggerParamOpt = Annotated[List[str], typer.Option("--logger-param", help="Tracker option TRACKER.KEY=VALUE (repeatable).")]
RunsDirOpt = Annotated[Optional[Path], typer.Option("--runs-dir", help="Where run directories go [default: runs].")]
TopKOpt = Annotated[Optional[int], typer.Option("--top-k", help="Keep the k best epochs' checkpoints [default: 3].")]
CheckpointEveryOpt = Annotated[Optional[int], typer.Option("--checkpoint-every", help="Also keep every N-th epoch's checkpoint.")]
PatienceOpt = Annotated[Optional[int], typer.Option("--patience", help="Early stopping: stop after N epochs without a better --monitor value (see --min-delta).")]
ThresholdOpt = Annotated[Optional[float], typer.Option("--threshold", help="Probability above which the answer is yes [default: 0.5].")]
MaxLenOpt = Annotated[Optional[int], typer.Option("--max-len", help="Encoded sequence length (default: the plugin's max_len).")]
ValFractionOpt = Annotated[Optional[float], typer.Option("--val-fraction", help="Share of --train carved out (stratified) as validation when no validation file is given [default: 0.1].")]
NameOpt = Annotated[Optional[str], typer.Option("--name", help="A readable name for the run, kept in config.json and shown by `qa runs`, reports and plots.")]
TagOpt = Annotated[List[str], typer.Option("--tag", help="Tag for the run (repeatable).")]
ProgressOpt = Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bars [default: when stderr is a terminal].")]
ResumeOpt = Annotated[Optional[Path], typer.Option("--resume", help="Continue an interrupted run from its last finished epoch (give its run directory; --epochs may extend it).")]
SeedsOpt = Annotated[Optional[str], typer.Option("--seeds", help="Comma-separated seeds: one run per seed, in a group directory with their aggregate (mean, sd, interval).")]
RepeatsOpt = Annotated[Optional[int], typer.Option("--repeats", help="N runs with seeds --seed, --seed+1, ... as one group (like --seeds).")]
CallbackOpt = Annotated[List[str], typer.Option("--callback", help="Callback plugin (repeatable): sees every epoch, may add metrics or stop the run.")]
CallbackParamOpt = Annotated[List[str], typer.Option("--callback-param", help="Callback option CALLBACK.KEY=VALUE (repeatable).")]
MonitorOpt = Annotated[Optional[str], typer.Option("--monitor", help="Metric that picks best, top-k and early stopping, any metrics.jsonl name [default: metrics/val/accuracy].")]
ModeOpt = Annotated[Optional[str], typer.Option("--mode", help="min or max: which way --monitor improves [default: inferred for loss and accuracy].")]
MinDeltaOpt = Annotated[Optional[float], typer.Option("--min-delta", help="Early stopping: smaller improvements of --monitor count as none [default: 0].")]
# the training loop
LogEveryOpt = Annotated[Optional[int], typer.Option("--log-every-n-steps", help="Also log the training loss (and the plugin's own values) every N optimisation steps, as steps/... series.")]
LimitTrainOpt = Annotated[Optional[int], typer.Option("--limit-train-batches", help="Train on the first N batches of each (shuffled) epoch only.")]
GroupByLengthOpt = Annotated[Optional[bool], typer.Option("--group-by-length/--no-group-by-length", help="Batch rows of similar length together (shuffled pools sorted by length, batches in random order): far less padding for models that trim each batch [default: on].")]
FastDevRunOpt = Annotated[Optional[bool], typer.Option("--fast-dev-run", help="Run 2 batches of train, val and test through every hook, keep nothing: checks a plugin or config in seconds.")]
AllowChangedDataOpt = Annotated[bool, typer.Option("--allow-changed-data", help="With --resume: continue although the data files changed since the run started.")]
NprocOpt = Annotated[Optional[int], typer.Option("--nproc-per-node", help="Data-parallel: start N ranks on this machine through torch.distributed.run (--batch-size is the global batch; see docs/scaling.md).")]

#: RunConfig fields -> (the parameter of `run`, the option) that set them, where the names differ.
_OPTION_OF = {"data_dir": ("data", "--data"), "data_format": ("data_format", "--format"), "tags": ("tag", "--tag"),
              "callbacks": ("callback", "--callback"), "callback_params": ("callback_param", "--callback-param")}
#: What `qa run --resume` may change: the rest is the run's own (its config.json).
_RESUME_MAY_CHANGE = ("epochs", "progress", "loggers", "logger_params")


@app.command()
@cli_errors
def run(
    plugin: PluginOpt = None,
    data: DataOpt = None,
    train: TrainOpt = None,
    val: ValOpt = None,
    test: TestOpt = None,
    data_format: FormatOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    lr: LrOpt = None,
    seed: SeedOpt = None,
    param: ParamOpt = [],
    config_file: ConfigOpt = None,
    from_run: FromOpt = None,
    print_config: PrintConfigOpt = False,
    logger: LoggerOpt = [],
    logger_param: LoggerParamOpt = [],
    runs_dir: RunsDirOpt = None,
    top_k: TopKOpt = None,
    checkpoint_every: CheckpointEveryOpt = None,
    patience: PatienceOpt = None,
    threshold: ThresholdOpt = None,
    max_len: MaxLenOpt = None,
    val_fraction: ValFractionOpt = None,
    name: NameOpt = None,
    tag: TagOpt = [],
    progress: ProgressOpt = None,
    resume: ResumeOpt = None,
    seeds: SeedsOpt = None,
    repeats: RepeatsOpt = None,
    callback: CallbackOpt = [],
    callback_param: CallbackParamOpt = [],
    monitor: MonitorOpt = None,
    mode: ModeOpt = None,
    min_delta: MinDeltaOpt = None,
    log_every_n_steps: LogEveryOpt = None,
    limit_train_batches: LimitTrainOpt = None,
    group_by_length: GroupByLengthOpt = None,
    fast_dev_run: FastDevRunOpt = None,
    allow_changed_data: AllowChangedDataOpt = False,
    nproc_per_node: NprocOpt = None,
    traceback: bool = TracebackOption,
) -> None:
    """Train a model plugin, keep its best checkpoints and score it on the test split."""
    given = SimpleNamespace(**locals())  # the options as given (None or []: not given)
    config_file, values, toml_keys = _starting_values(given)
    stored = dict(values) if resume is not None else None
    _merge_command_line(values, given)
    if stored is not None:
        _refuse_changes_on_resume(resume, stored, values, given)
    if allow_changed_data and resume is None:
        raise ConfigError("--allow-changed-data: only with --resume")
    from .config import RunConfig, check_config

    if print_config:
        _print_config(RunConfig(**values))
        return
    if resume is not None:  # what the run's config.json holds is named by that file and key
        toml_keys, config_file = {k: k for k in values}, resume / "config.json"
    cli_values = _config_values(given)
    config = check_config(RunConfig(**values), {k: v for k, v in toml_keys.items() if cli_values.get(k) is None}, config_file)
    _start(config, given, int(values.get("seed", 0) or 0))


def _config_values(given: SimpleNamespace) -> dict[str, Any]:
    """The RunConfig fields the command line sets one to one (None: not given)."""
    paths = {"data_dir": given.data, "train": given.train, "val": given.val, "test": given.test, "runs_dir": given.runs_dir}
    same_name = ("plugin", "data_format", "epochs", "batch_size", "lr", "seed", "top_k", "checkpoint_every", "patience", "threshold",
                 "max_len", "val_fraction", "name", "progress", "monitor", "mode", "min_delta", "log_every_n_steps",
                 "limit_train_batches", "fast_dev_run", "group_by_length")
    return {**{key: str(path) if path else None for key, path in paths.items()}, **{key: getattr(given, key) for key in same_name}}


def _starting_values(given: SimpleNamespace) -> tuple[Path | None, dict[str, Any], dict[str, str]]:
    """What the command line is laid over: the resumed run's config.json, a --config file or
    --from run's config.json, or nothing. Returns that file, its values and, for a --config file,
    field -> its key there (for messages naming file and key)."""
    from .config import load_config_file
    from .trainer import config_from_run

    config_file = given.config_file
    if given.resume is not None and (config_file or given.from_run or given.plugin or given.data or given.train or given.val
                                     or given.test or given.param or given.group_by_length is not None):
        raise ConfigError("--resume: the run's own config is used; only --epochs, --progress and tracker options may be given")
    if config_file and given.from_run:
        raise ConfigError("--from: give either --from RUN_DIR or --config FILE, not both")
    if given.from_run is not None:
        if not (given.from_run / "config.json").is_file():
            raise ConfigError(f"--from {given.from_run}: not a run directory (no config.json)")
        config_file = given.from_run / "config.json"
    toml_keys: dict[str, str] = {}
    if given.resume is not None:
        return config_file, config_from_run(given.resume), toml_keys
    return config_file, load_config_file(config_file, toml_keys) if config_file else {}, toml_keys


def _merge_command_line(values: dict[str, Any], given: SimpleNamespace) -> None:
    """Lay the command line over ``values``: a given option wins; repeatable options add to the
    file's (--param, --logger-param and --callback-param key by key)."""
    from .config import parse_key_values, parse_logger_params

    if given.data or given.train:  # data given here replaces the file's data, whichever form it took
        for key in ("data_dir", "train", "val", "test"):
            values.pop(key, None)
    values.update({key: value for key, value in _config_values(given).items() if value is not None})
    values["params"] = {**values.get("params", {}), **parse_key_values("--param", given.param)}
    values["loggers"] = list(dict.fromkeys([*values.get("loggers", []), *given.logger]))
    values["tags"] = list(dict.fromkeys([*values.get("tags", []), *given.tag]))
    values["callbacks"] = list(dict.fromkeys([*values.get("callbacks", []), *given.callback]))
    for key, option, items in (("logger_params", "--logger-param", given.logger_param), ("callback_params", "--callback-param", given.callback_param)):
        merged = {k: dict(v) for k, v in values.get(key, {}).items()}
        for plugin_name, options in parse_logger_params(items, option=option).items():
            merged.setdefault(plugin_name, {}).update(options)
        values[key] = merged


def _refuse_changes_on_resume(run_dir: Path, stored: dict[str, Any], values: dict[str, Any], given: SimpleNamespace) -> None:
    """A resume continues the run as it started (its replay of shuffles, checkpoints and early
    stopping depends on it): an option that would change one of its values is refused in one line
    with the run's value, never applied silently. Repeating the run's own value changes nothing."""
    from .config import RunConfig

    for field in fields(RunConfig):  # in their order, so that the same command line names the same option
        key, default = field.name, field.default if field.default is not MISSING else field.default_factory()  # type: ignore[misc]
        if key in _RESUME_MAY_CHANGE:
            continue
        wanted, kept = values.get(key, default), stored.get(key, default)
        if wanted == kept:
            continue
        if key == "lr" and kept is None:  # started without --lr: the plugin's own lr trained it
            kept = _resolved_params(run_dir).get("model/lr")
            if wanted == kept:
                values[key] = None  # as the run started: without --lr
                continue
        attribute, flag = _OPTION_OF.get(key, (key, "--" + key.replace("_", "-")))
        raw = getattr(given, attribute)
        typed = " ".join(f"{flag} {item}" for item in raw) if isinstance(raw, list) else flag if isinstance(raw, bool) else f"{flag} {raw}"
        raise ConfigError(f"{typed}: the run being resumed has {key}={json.dumps(kept)} (its config.json), which --resume keeps (only "
                          f"--epochs, --progress and tracker options may change); to train with {typed}, start a new run from its "
                          f"options: qa run --from {run_dir} {typed}")


def _resolved_params(run_dir: Path) -> dict[str, Any]:
    """The plugin's hyperparameters a run trained with, every default filled in (config.json)."""
    stored = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    return stored.get("resolved_params") or {}


def _start(config: Any, given: SimpleNamespace, seed: int) -> None:
    """Train ``config``: data-parallel through torchrun, as a group of seeds, or one run."""
    from . import distributed
    from .analysis.groups import parse_seeds, run_group
    from .trainer import train as run_training

    if (given.seeds or given.repeats) and (given.nproc_per_node is not None or distributed.from_env().distributed):
        raise ConfigError("--seeds/--repeats: not with data-parallel training (start each seed's run with --nproc-per-node on its own)")
    if given.nproc_per_node is not None:
        from .launch import launch_ranks

        raise typer.Exit(launch_ranks(config, given.nproc_per_node, sys.argv[1:]))
    group_seeds = parse_seeds(given.seeds, given.repeats, seed)
    if group_seeds is not None:
        if given.resume is not None:
            raise ConfigError("--seeds/--repeats: not with --resume (resume each member run on its own)")
        run_group(config, group_seeds)
        return
    run_training(config, resume=given.resume, allow_changed_data=given.allow_changed_data)


def _print_config(config: Any) -> None:
    """The options as TOML, with the plugin's hyperparameters resolved (every default filled in),
    so the file repeats this run even after a plugin changes a default."""
    from .config import to_toml
    from .plugins import load_plugins
    from .trainer import resolve_model_params

    config.check()
    config.params = resolve_model_params(load_plugins().model(config.plugin), config)
    sys.stdout.write(to_toml(config))


# -------------------------------------------------------------------------------------------------
# qa evaluate
# -------------------------------------------------------------------------------------------------


@app.command()
@cli_errors
def evaluate(
    target: Path = typer.Argument(..., help="A run directory (its best checkpoint is used) or a checkpoint file."),
    data: Path = typer.Option(..., "--data", help="JSONL or bAbI file to score."),
    data_format: str = typer.Option("auto", "--format", help="auto, jsonl or babi."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where eval files go [default: a new RUN_DIR/eval/<data file name>-<sha256 prefix>]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Let --out replace the files of a folder that holds some."),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    threshold: float = typer.Option(0.5, "--threshold"),
    vocab: Optional[Path] = typer.Option(None, "--vocab", help="Vocabulary file, when the checkpoint is outside its run directory."),
    traceback: bool = TracebackOption,
) -> None:
    """Score a saved model on a data file: the results block, and eval/ files."""
    from . import console
    from .config import check_batch_size, check_output_dir, check_threshold
    from .evaluation import evaluate_saved
    from .plugins import load_plugins

    check_batch_size("--batch-size", batch_size)
    check_threshold("--threshold", threshold)
    if out is not None:
        check_output_dir("--out", out)
    report, out_dir, meta = evaluate_saved(target, data, load_plugins(), out, batch_size, threshold, data_format, vocab, overwrite=overwrite)
    console.say(f"model: {meta['plugin']} {meta.get('plugin_version', '?')}, epoch {meta.get('epoch', '?')} of run {meta.get('run_id', '?')}")
    console.say(console.results_block(report))
    console.say(f"eval files: {out_dir}")


# -------------------------------------------------------------------------------------------------
# qa plugins
# -------------------------------------------------------------------------------------------------


@app.command()
@cli_errors
def plugins(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    traceback: bool = TracebackOption,
) -> None:
    """List installed plugins: name, kind, distribution, version, hooks, parameters and load errors."""
    from .plugins import PluginManager

    manager = PluginManager()
    manager.load_builtins()
    # Load errors are shown in the listing itself, not as warning lines.
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):
        manager.load_entrypoints(strict=False)
    records = [record.to_json() for record in manager.records.values()]
    if as_json:
        print(json.dumps(records, indent=2, default=str))
        return
    for record in records:
        origin = "built-in" if record["builtin"] else record["distribution"]
        if record["error"]:
            print(f"{record['name']}  (not loaded)  {origin} {record['version']}\n    error: {record['error']}")
            continue
        print(f"{record['name']}  [{record['kind']}]  {origin} {record['version']}" + (f"  framework={record['framework']}" if record["framework"] else ""))
        if record["description"]:
            print(f"    {record['description']}")
        print(f"    hooks: {', '.join(record['hooks'])}")
        option = {"model": "--param ", "callback": f"--callback-param {record['name']}."}.get(record["kind"], f"--logger-param {record['name']}.")
        for p in record["params"]:
            extra = f" choices={p['choices']}" if "choices" in p else ""
            print(f"    {option}{p['name']}={p['default']!r}  ({p['type']}{extra})  {p['help']}")


# -------------------------------------------------------------------------------------------------
# qa data ...
# -------------------------------------------------------------------------------------------------


@data_app.command("generate")
@cli_errors
def data_generate(
    out: Path = typer.Option(..., "--out", help="Directory to write train.jsonl, val.jsonl and test.jsonl into."),
    train: int = typer.Option(4500, "--train", help="Training records (total over all cells)."),
    val: int = typer.Option(900, "--val", help="Validation records."),
    test: int = typer.Option(900, "--test", help="Test records."),
    categories: Optional[str] = typer.Option(None, "--categories", help="Comma-separated categories [default: simple,dense,superdense]."),
    noun_counts: Optional[str] = typer.Option(None, "--noun-counts", help="Comma-separated noun counts [default: 8,15,30]."),
    seed: int = typer.Option(0, "--seed"),
    per_cell: bool = typer.Option(False, "--per-cell", help="Sizes are records per category x noun-count cell (stratified sets)."),
    sentences: Optional[str] = typer.Option(None, "--sentences", help="Comma-separated story lengths in sentences: every story of a cell gets exactly that many (one length holds length fixed across noun counts, several vary it) [default: as the nouns need]."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress"),
    traceback: bool = TracebackOption,
) -> None:
    """Generate stories with exact yes/no labels from a simulated world."""
    from tqdm import tqdm

    from . import console
    from .config import check_output_dir, check_seed
    from .data.generator import CATEGORIES, DEFAULT_NOUN_COUNTS, generate_splits
    from .data.records import write_jsonl
    from .fsutil import directory_lock

    check_output_dir("--out", out)
    check_seed("--seed", seed)
    for option, size in (("--train", train), ("--val", val), ("--test", test)):
        if size < 0:
            raise ConfigError(f"{option}: expected a non-negative number of records, got {size}")
    sizes = {name: size for name, size in (("train", train), ("val", val), ("test", test)) if size > 0}
    if not sizes:
        raise ConfigError("--train/--val/--test: at least one split must have records")
    cats = _csv(categories) or list(CATEGORIES)
    nouns = _csv_ints("--noun-counts", noun_counts) or list(DEFAULT_NOUN_COUNTS)
    lengths = _csv_ints("--sentences", sentences) or None
    total = sum(sizes.values()) * (len(cats) * len(nouns) * len(lengths or [0]) if per_cell else 1)
    with tqdm(total=total, unit="story", desc="generating", disable=(not progress) if progress is not None else None) as bar:
        splits = generate_splits(sizes, categories=cats, noun_counts=nouns, seed=seed, per_cell=per_cell, progress=bar.update, sentences=lengths)
    with directory_lock(out):  # a concurrent generate into --out writes its whole set before or after
        for name, examples in splits.items():
            write_jsonl(out / f"{name}.jsonl", examples)
            console.say(f"wrote {len(examples)} records to {out / (name + '.jsonl')}")


@data_app.command("stats")
@cli_errors
def data_stats(
    files: List[Path] = typer.Argument(..., help="JSONL or bAbI files."),
    data_format: str = typer.Option("auto", "--format"),
    traceback: bool = TracebackOption,
) -> None:
    """Counts per category x noun-count cell and the yes/no balance."""
    from .data.generator import cell_stats
    from .data.loading import read_examples

    for path in files:
        examples = read_examples(path, data_format)
        rows = cell_stats(examples)
        print(f"{path}: {len(examples)} records")
        print(f"  {'category':<20} {'nouns':>5} {'count':>7} {'yes':>6} {'no':>6} {'yes%':>6}")
        for row in rows:
            share = row["yes"] / row["count"] if row["count"] else 0.0
            print(f"  {row['category']:<20} {row['noun_count']:>5} {row['count']:>7} {row['yes']:>6} {row['no']:>6} {share:>6.1%}")
        yes = sum(e.answer for e in examples)
        print(f"  {'all':<20} {'':>5} {len(examples):>7} {yes:>6} {len(examples) - yes:>6} {yes / max(1, len(examples)):>6.1%}")


@data_app.command("audit")
@cli_errors
def data_audit(
    path: Path = typer.Argument(..., help="A data file (fit on its first half, scored on the second) or a data directory (fit on train, scored on test)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any cue beats chance in any cell."),
    data_format: str = typer.Option("auto", "--format"),
    traceback: bool = TracebackOption,
) -> None:
    """Can a cheap cue (last place named, counts, question words, bag of words, a small learned
    model) answer the questions? Cue accuracy per cell with a 95% interval and a verdict."""
    from .data.audit import audit, format_report
    from .data.loading import read_dir, read_examples

    if path.is_dir():
        splits = read_dir(path)
        report = audit(splits["test"], fit_on=splits["train"])
        print(f"{path}: cues fitted on train ({len(splits['train'])} records), scored on test ({len(splits['test'])})")
    else:
        examples = read_examples(path, data_format)
        report = audit(examples)
        print(f"{path}: cues fitted on the first half of each cell, scored on the second ({len(examples)} records)")
    for line in format_report(report):
        print(line)
    if strict and report.shortcuts:
        raise typer.Exit(1)


@data_app.command("import-babi")
@cli_errors
def data_import_babi(
    files: List[Path] = typer.Argument(..., help="bAbI task files (yes/no tasks 6, 17, 18)."),
    out: Path = typer.Option(..., "--out", help="JSONL file to write."),
    category: Optional[str] = typer.Option(None, "--category", help="Category for every record [default: the task name]."),
    traceback: bool = TracebackOption,
) -> None:
    """Convert bAbI task files to JSONL records."""
    from .config import check_output_file
    from .data.babi import read_babi
    from .data.records import write_jsonl

    check_output_file("--out", out)
    examples = []
    for path in files:
        examples += read_babi(path, category)
    count = write_jsonl(out, examples)
    print(f"wrote {count} records to {out}")


@data_app.command("split")
@cli_errors
def data_split(
    file: Path = typer.Argument(..., help="JSONL or bAbI file to split."),
    out: Path = typer.Option(..., "--out", help="Directory for the two parts."),
    fraction: float = typer.Option(0.2, "--fraction", help="Share of every cell that goes to the held-out part."),
    names: str = typer.Option("train,val", "--names", help="File names (without .jsonl) of the two parts."),
    seed: int = typer.Option(0, "--seed"),
    data_format: str = typer.Option("auto", "--format"),
    traceback: bool = TracebackOption,
) -> None:
    """Split a file in two, stratified by category x noun count x answer."""
    from .data.loading import read_examples
    from .data.records import write_jsonl
    from .data.splits import stratified_split
    from .fsutil import directory_lock

    from .config import check_output_dir, check_seed

    parts = _csv(names) or []
    if len(parts) != 2:
        raise ConfigError(f"--names: expected two comma-separated names, got {names!r}")
    if parts[0] == parts[1]:
        raise ConfigError(f"--names: the two parts need different names, got {names!r} (the second would overwrite the first)")
    check_output_dir("--out", out)
    check_seed("--seed", seed)
    for name in parts:
        target = out / f"{name}.jsonl"
        if target.exists() and file.exists() and os.path.samefile(target, file):
            raise ConfigError(f"--out {out}: writing {target.name} there would overwrite the input {file}; choose another --out or --names")
    rest, held = stratified_split(read_examples(file, data_format), fraction, seed)
    with directory_lock(out):
        for name, examples in zip(parts, (rest, held)):
            write_jsonl(out / f"{name}.jsonl", examples)
            print(f"wrote {len(examples)} records to {out / (name + '.jsonl')}")


from .analysis.commands import register as _register_analysis  # noqa: E402 - after the core commands

_register_analysis(app, data_app)

from .sweep.commands import register as _register_sweep  # noqa: E402 - `qa sweep`

_register_sweep(app)


def main() -> None:
    """Entry point of the `qa` script."""
    try:
        _main()
    except BrokenPipeError:  # `qa plugins | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def _main() -> None:
    """Usage errors (a bad option value, a missing argument) are one line too, instead of
    click's usage block."""
    # click's UsageError; reached through BadParameter because newer typer vendors its own click.
    usage_error = typer.BadParameter.__mro__[1]
    try:
        code = readable_metavars(typer.main.get_command(app))(prog_name="qa", standalone_mode=False)
    except usage_error as exc:  # type: ignore[misc]
        if type(exc).__name__ == "NoArgsIsHelpError":  # `qa` or `qa data` alone: the help text
            print(exc.format_message())
            sys.exit(0)
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
