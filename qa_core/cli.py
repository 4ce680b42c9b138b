"""The ``qa`` command line (typer).

Errors a user can fix (``QAError``) print one line, ``error: ...``, on stderr and exit 2 (a plugin
failure exits 1); ``--traceback`` (or ``QA_TRACEBACK=1``) shows the full traceback instead. Plugins
are loaded only by the commands that need them, so ``qa --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, List, Optional

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


@app.command()
@cli_errors
def run(
    plugin: Optional[str] = typer.Option(None, "--plugin", "-p", autocompletion=complete_models, help="Model plugin to train (see `qa plugins`)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Directory with train/val/test files (JSONL or bAbI). Without any data option, a default dataset is generated."),
    train: Optional[Path] = typer.Option(None, "--train", help="Training file (JSONL or bAbI)."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation file; if absent, a stratified slice of --train."),
    test: Optional[Path] = typer.Option(None, "--test", help="Test file."),
    data_format: Optional[str] = typer.Option(None, "--format", help="auto (default), jsonl or babi."),
    epochs: Optional[int] = typer.Option(None, "--epochs", "-e", help="Number of epochs [default: 5]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Batch size [default: 32]."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (sets the plugin's lr parameter)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed [default: 0]."),
    param: List[str] = typer.Option([], "--param", help="Plugin hyperparameter KEY=VALUE (repeatable)."),
    config_file: Optional[Path] = typer.Option(None, "--config", metavar="FILE", help="TOML file with run options, or a run's config.json (re-run it); command-line options win."),
    from_run: Optional[Path] = typer.Option(None, "--from", metavar="RUN_DIR", help="Re-run a run's options (RUN_DIR/config.json) under a new run id; command-line options win."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved options as TOML (which --config reads back) and exit without training."),
    logger: List[str] = typer.Option([], "--logger", "-l", autocompletion=complete_trackers, help="Extra tracker plugin (repeatable), e.g. neptune. Local files are always written."),
    logger_param: List[str] = typer.Option([], "--logger-param", help="Tracker option TRACKER.KEY=VALUE (repeatable)."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Where run directories go [default: runs]."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Keep the k best epochs' checkpoints [default: 3]."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Also keep every N-th epoch's checkpoint."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Early stopping: stop after N epochs without a better --monitor value (see --min-delta)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Probability above which the answer is yes [default: 0.5]."),
    max_len: Optional[int] = typer.Option(None, "--max-len", help="Encoded sequence length (default: the plugin's max_len)."),
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help="Share of --train carved out (stratified) as validation when no validation file is given [default: 0.1]."),
    name: Optional[str] = typer.Option(None, "--name", help="A readable name for the run, kept in config.json and shown by `qa runs`, reports and plots."),
    tag: List[str] = typer.Option([], "--tag", help="Tag for the run (repeatable)."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bars [default: when stderr is a terminal]."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted run from its last finished epoch (give its run directory; --epochs may extend it)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated seeds: one run per seed, in a group directory with their aggregate (mean, sd, interval)."),
    repeats: Optional[int] = typer.Option(None, "--repeats", help="N runs with seeds --seed, --seed+1, ... as one group (like --seeds)."),
    callback: List[str] = typer.Option([], "--callback", help="Callback plugin (repeatable): sees every epoch, may add metrics or stop the run."),
    callback_param: List[str] = typer.Option([], "--callback-param", help="Callback option CALLBACK.KEY=VALUE (repeatable)."),
    monitor: Optional[str] = typer.Option(None, "--monitor", help="Metric that picks best, top-k and early stopping, any metrics.jsonl name [default: metrics/val/accuracy]."),
    mode: Optional[str] = typer.Option(None, "--mode", help="min or max: which way --monitor improves [default: inferred for loss and accuracy]."),
    min_delta: Optional[float] = typer.Option(None, "--min-delta", help="Early stopping: smaller improvements of --monitor count as none [default: 0]."),
    log_every_n_steps: Optional[int] = typer.Option(None, "--log-every-n-steps", help="Also log the training loss (and the plugin's own values) every N optimisation steps, as steps/... series."),
    limit_train_batches: Optional[int] = typer.Option(None, "--limit-train-batches", help="Train on the first N batches of each (shuffled) epoch only."),
    group_by_length: Optional[bool] = typer.Option(None, "--group-by-length/--no-group-by-length", help="Batch rows of similar length together (shuffled pools sorted by length, batches in random order): far less padding for models that trim each batch [default: on]."),
    fast_dev_run: Optional[bool] = typer.Option(None, "--fast-dev-run", help="Run 2 batches of train, val and test through every hook, keep nothing: checks a plugin or config in seconds."),
    allow_changed_data: bool = typer.Option(False, "--allow-changed-data", help="With --resume: continue although the data files changed since the run started."),
    nproc_per_node: Optional[int] = typer.Option(None, "--nproc-per-node", help="Data-parallel: start N ranks on this machine through torch.distributed.run (--batch-size is the global batch; see docs/scaling.md)."),
    traceback: bool = TracebackOption,
) -> None:
    """Train a model plugin, keep its best checkpoints and score it on the test split."""
    from .config import RunConfig, check_config, load_config_file, parse_key_values, parse_logger_params
    from .trainer import config_from_run
    from .trainer import train as run_training

    if resume is not None and (config_file or from_run or plugin or data or train or val or test or param or group_by_length is not None):
        raise ConfigError("--resume: the run's own config is used; only --epochs, --progress and tracker options may be given")
    if config_file and from_run:
        raise ConfigError("--from: give either --from RUN_DIR or --config FILE, not both")
    if from_run is not None:
        if not (from_run / "config.json").is_file():
            raise ConfigError(f"--from {from_run}: not a run directory (no config.json)")
        config_file = from_run / "config.json"
    toml_keys: dict[str, str] = {}  # field -> its key in --config, for messages naming file and key
    values: dict[str, Any] = config_from_run(resume) if resume else load_config_file(config_file, toml_keys) if config_file else {}
    cli_values = {
        "plugin": plugin,
        "data_dir": str(data) if data else None,
        "train": str(train) if train else None,
        "val": str(val) if val else None,
        "test": str(test) if test else None,
        "data_format": data_format,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "runs_dir": str(runs_dir) if runs_dir else None,
        "top_k": top_k,
        "checkpoint_every": checkpoint_every,
        "patience": patience,
        "threshold": threshold,
        "max_len": max_len,
        "val_fraction": val_fraction,
        "name": name,
        "progress": progress,
        "monitor": monitor,
        "mode": mode,
        "min_delta": min_delta,
        "log_every_n_steps": log_every_n_steps,
        "limit_train_batches": limit_train_batches,
        "fast_dev_run": fast_dev_run,
        "group_by_length": group_by_length,
    }
    if data or train:  # data given here replaces the file's data, whichever form it took
        for key in ("data_dir", "train", "val", "test"):
            values.pop(key, None)
    values.update({key: value for key, value in cli_values.items() if value is not None})
    values["params"] = {**values.get("params", {}), **parse_key_values("--param", param)}
    values["loggers"] = list(dict.fromkeys([*values.get("loggers", []), *logger]))
    merged_logger_params = {k: dict(v) for k, v in values.get("logger_params", {}).items()}
    for tracker, options in parse_logger_params(logger_param).items():
        merged_logger_params.setdefault(tracker, {}).update(options)
    values["logger_params"] = merged_logger_params
    values["tags"] = list(dict.fromkeys([*values.get("tags", []), *tag]))
    values["callbacks"] = list(dict.fromkeys([*values.get("callbacks", []), *callback]))
    merged_callback_params = {k: dict(v) for k, v in values.get("callback_params", {}).items()}
    for name, options in parse_logger_params(callback_param, option="--callback-param").items():
        merged_callback_params.setdefault(name, {}).update(options)
    values["callback_params"] = merged_callback_params
    if allow_changed_data and resume is None:
        raise ConfigError("--allow-changed-data: only with --resume")
    if print_config:
        _print_config(RunConfig(**values))
        return
    if resume is not None:  # what the run's config.json holds is named by that file and key
        toml_keys, config_file = {k: k for k in values}, resume / "config.json"
    config = check_config(RunConfig(**values), {k: v for k, v in toml_keys.items() if cli_values.get(k) is None}, config_file)
    from . import distributed

    if (seeds or repeats) and (nproc_per_node is not None or distributed.from_env().distributed):
        raise ConfigError("--seeds/--repeats: not with data-parallel training (start each seed's run with --nproc-per-node on its own)")
    if nproc_per_node is not None:
        from .launch import launch_ranks

        raise typer.Exit(launch_ranks(config, nproc_per_node, sys.argv[1:]))
    from .analysis.groups import parse_seeds, run_group

    group_seeds = parse_seeds(seeds, repeats, int(values.get("seed", 0) or 0))
    if group_seeds is not None:
        if resume is not None:
            raise ConfigError("--seeds/--repeats: not with --resume (resume each member run on its own)")
        run_group(config, group_seeds)
        return
    run_training(config, resume=resume, allow_changed_data=allow_changed_data)


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
