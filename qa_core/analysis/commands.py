"""CLI commands of the analysis room, registered on the main `qa` app by qa_core.cli.

    qa plot RUN_DIR                  training curves and test plots as PNG files
    qa report RUN_DIR                one self-contained HTML page
    qa probe RUN_DIR                 fresh stories of growing noun count: accuracy curve, boundary
    qa compare RUN_DIR RUN_DIR ...   runs side by side, the better run marked per cell
    qa runs                          the runs of a runs directory, one row each

Only typer is imported here: the analysis modules (and numpy, matplotlib) are imported inside
the command functions, so ``qa --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    """Add the analysis commands to ``app`` (``data_app`` has none of ours)."""
    # qa_core.cli calls this while it is being imported, after cli_errors is defined.
    from ..cli_support import TracebackOption, _csv, _csv_ints, cli_errors
    from ..errors import ConfigError

    @app.command("plot")
    @cli_errors
    def plot(
        run_dir: Path = typer.Argument(..., help="A run directory made by `qa run` (or a seed group, `qa run --seeds`)."),
        out: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Directory for the figure files [default: RUN_DIR/eval]."),
        fmt: str = typer.Option("png", "--format", metavar="png|pdf|svg", help="File format: png, or pdf / svg (vector, for papers)."),
        dpi: int = typer.Option(100, "--dpi", metavar="N", help="Pixels per inch of PNG files (and of raster parts of PDF/SVG)."),
        traceback: bool = TracebackOption,
    ) -> None:
        """Training curves and test plots of a run as PNG, PDF or SVG files (needs matplotlib)."""
        from ..config import check_output_dir
        from . import plots
        from .groups import load_run_or_group

        plots.check_format(fmt, dpi)
        if out is not None:
            check_output_dir("--out", out)
        run = load_run_or_group(run_dir)
        figures = plots.run_figures(run)  # PlottingUnavailable is a QAError: one line, exit 2
        if not figures:
            raise ConfigError(f"{run_dir}: nothing to plot yet (no finished epoch and no test results)")
        for path in plots.write_figures(figures, out or run.path / "eval", fmt, dpi):
            print(f"wrote {path}")

    @app.command("report")
    @cli_errors
    def report(
        run_dir: Path = typer.Argument(..., help="A run directory made by `qa run`."),
        out: Optional[Path] = typer.Option(None, "--out", metavar="FILE", help="HTML file to write [default: RUN_DIR/report.html]."),
        fmt: str = typer.Option("png", "--format", metavar="png|svg", help="How the plots are embedded: png, or svg (vector, sharp at any zoom)."),
        dpi: int = typer.Option(100, "--dpi", metavar="N", help="Pixels per inch of embedded PNG plots."),
        traceback: bool = TracebackOption,
    ) -> None:
        """One self-contained HTML report: tables, config, best and top-k epochs, embedded plots."""
        from ..config import check_output_file
        from .report import write_report

        if out is not None:
            check_output_file("--out", out)
        path, images, missing = write_report(run_dir, out, fmt, dpi)
        if missing:
            print(f"plots left out: {missing}")
        print(f"wrote {path} ({len(images)} plots embedded)")

    @app.command("probe")
    @cli_errors
    def probe(
        run_dir: Path = typer.Argument(..., help="A run directory made by `qa run`; its best checkpoint is scored."),
        noun_counts: Optional[str] = typer.Option(None, "--noun-counts", help="Comma-separated noun counts [default: 4,8,15,30,50]."),
        categories: Optional[str] = typer.Option(None, "--categories", help="Comma-separated categories [default: the generator's categories the run was tested on]."),
        per_cell: int = typer.Option(100, "--per-cell", help="Fresh stories per category x noun-count cell."),
        threshold: float = typer.Option(0.75, "--threshold", help="Accuracy below which a cell is past the performance boundary."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Generator seed [default: the run's seed + 1000003]."),
        batch_size: int = typer.Option(64, "--batch-size", "-b"),
        as_json: bool = typer.Option(False, "--json", help="Print probe.json instead of the table."),
        axis: str = typer.Option("noun_count", "--axis", help="What grows: noun_count, or length (story sentences at one noun count)."),
        lengths: Optional[str] = typer.Option(None, "--lengths", help="With --axis length: comma-separated sentence counts, one per length bucket [default: 8,16,32,64]."),
        length_nouns: int = typer.Option(8, "--length-nouns", help="With --axis length: the noun count every story has."),
        traceback: bool = TracebackOption,
    ) -> None:
        """Score the best model on fresh stratified sets of growing noun count (or length); name the boundary."""
        from ..config import check_batch_size, check_seed, check_threshold
        from . import probe as probing

        check_threshold("--threshold", threshold)
        check_batch_size("--batch-size", batch_size)
        check_batch_size("--per-cell", per_cell)
        if seed is not None:
            check_seed("--seed", seed)
        result = probing.probe(
            run_dir,
            _csv_ints("--noun-counts", noun_counts) or probing.DEFAULT_NOUN_COUNTS,
            _csv(categories),
            per_cell,
            threshold,
            seed,
            batch_size,
            axis=axis,
            lengths=_csv_ints("--lengths", lengths) or probing.DEFAULT_LENGTHS,
            length_nouns=length_nouns,
        )
        if as_json:
            print(json.dumps(result.to_json(), indent=2))
            return
        print(probing.format_probe(result))
        if result.plot_note:
            print(result.plot_note)
        print(f"probe files: {result.directory}")

    @app.command("runs")
    @cli_errors
    def runs(
        runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", metavar="DIR", help="The runs directory to list."),
        plugin: Optional[str] = typer.Option(None, "--plugin", "-p", metavar="NAME", help="Only runs of this model plugin."),
        status: Optional[str] = typer.Option(None, "--status", metavar="STATUS", help="Only runs with this status: finished, interrupted, failed, running, died (killed: resume it)."),
        tag: List[str] = typer.Option([], "--tag", metavar="TAG", help="Only runs with this tag (repeatable: every tag given)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per run) instead of the table."),
        traceback: bool = TracebackOption,
    ) -> None:
        """List runs: id, name, plugin, status, epochs, best validation and test accuracy, start time."""
        from .listing import format_rows, list_runs

        rows = list_runs(runs_dir, plugin, status, tag)
        if as_json:
            print(json.dumps([row.to_json() for row in rows], indent=2))
        elif rows:
            print(format_rows(rows))
        else:
            print(f"no runs in {runs_dir}" + (" match" if plugin or status or tag else ""), file=sys.stderr)

    @app.command("compare")
    @cli_errors
    def compare(
        run_dirs: List[Path] = typer.Argument(..., help="Two or more run directories (or seed groups, `qa run --seeds`)."),
        plot: bool = typer.Option(False, "--plot", help="Also save a grouped bar chart (compare.png) with the numbers (compare.csv, compare.json)."),
        out: Optional[Path] = typer.Option(None, "--out", help="Directory for compare.png/.csv/.json [default: the current directory, with --plot]."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the table."),
        traceback: bool = TracebackOption,
    ) -> None:
        """Runs side by side: accuracy with 95% intervals overall and per cell, best epoch, time; a run marked only where a paired (McNemar, Holm-corrected) test says it is better."""
        from .compare import compare_runs, dumps, format_table, write_outputs

        comparison = compare_runs(run_dirs)
        print(dumps(comparison) if as_json else format_table(comparison))
        if plot or out is not None:
            written, missing = write_outputs(comparison, out or Path.cwd(), plot)
            status = sys.stderr if as_json else sys.stdout  # keep --json output parseable
            if missing:
                print(f"plot left out: {missing}", file=status)
            for path in written:
                print(f"wrote {path}", file=status)
