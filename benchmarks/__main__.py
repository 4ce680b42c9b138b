"""``python -m benchmarks [--quick] [--out DIR] [--only NAME ...]``: run, print a table, write JSON.

Writes ``DIR/<benchmark>.json`` for each benchmark and ``DIR/summary.json`` with every headline
figure, its target and whether it was met, and the machine it was measured on.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

from .common import Result, machine

#: Run order: the cheap, model-free benchmarks first.
BENCHMARKS = ("grouped_metrics", "data_pipeline", "scaling", "data_audit", "tracking", "evaluation", "transformer_epoch", "lightning_epoch", "full_length", "lstm_epoch", "time_to_accuracy", "hops_to_accuracy", "sweep")


def format_value(value: object) -> str:
    if value is None:
        return "not reached"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def table(results: list[Result]) -> str:
    rows = [("benchmark", "figure", "value", "target", "met")]
    for result in results:
        if result.skipped:
            rows.append((result.name, "skipped", result.skipped, "", ""))
            continue
        for key, value in result.figures.items():
            target = result.targets.get(key)
            met = result.target_met(key)
            rows.append((result.name, key, format_value(value), f"{target[0]} {target[1]:g}" if target else "", "" if met is None else ("yes" if met else "NO")))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: about ten minutes on a 2-core machine")
    parser.add_argument("--out", type=Path, default=Path("bench-out"), help="directory for the JSON files")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    results: list[Result] = []
    started = time.perf_counter()
    for name in args.only or BENCHMARKS:
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        begin = time.perf_counter()
        try:
            result = importlib.import_module(f"benchmarks.{name}").run(args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            result = Result(name, name, skipped=f"failed: {type(exc).__name__}: {exc}")
            result.details["traceback"] = traceback.format_exc()
        result.details["wall_seconds"] = round(time.perf_counter() - begin, 2)
        (args.out / f"{name}.json").write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n", encoding="utf-8")
        results.append(result)
        print(f"[benchmarks] {name}: {result.details['wall_seconds']} s", file=sys.stderr, flush=True)

    summary = {
        "quick": args.quick,
        "machine": machine(),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "figures": {k: v for r in results for k, v in r.figures.items()},
        "targets": {k: t for r in results for k, t in r.to_json()["targets"].items()},
        "skipped": {r.name: r.skipped for r in results if r.skipped},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    print(table(results))
    print(f"\n{len(results)} benchmarks in {summary['wall_seconds']:.0f} s; JSON in {args.out}/ (machine load {summary['machine']['load_average']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
