"""8. The generator passes its own audit: ``qa data audit`` on fresh data, 2,000 stories per cell.

Generates 2,000 train and 2,000 test stories in each default cell (``--quick``: 500), runs the cue
battery (fit on train, score on test) and reports the shortcuts found (target 0), the largest
|accuracy - 0.5| over every cue and cell, and the seconds generation and audit took. The old
generator's sample in tests/data is audited too: its shortcut count must stay above 0 (the audit
has teeth).
"""

from __future__ import annotations

import time
from pathlib import Path

from .common import Result

OLD_SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "generator_v1_sample.jsonl"


def run(quick: bool, per_cell: int | None = None) -> Result:
    from qa_core.data.audit import audit
    from qa_core.data.generator import generate_splits
    from qa_core.data.records import read_jsonl

    result = Result("data_audit", "8. Shortcut audit of freshly generated data")
    per_cell = per_cell or (500 if quick else 2000)
    start = time.perf_counter()
    splits = generate_splits({"train": per_cell, "test": per_cell}, per_cell=True, seed=123)
    generated = time.perf_counter() - start
    report = audit(splits["test"], fit_on=splits["train"])
    audited = time.perf_counter() - start - generated
    result.figures["fresh_shortcuts"] = len(report.shortcuts)
    result.targets["fresh_shortcuts"] = ("<=", 0)
    result.figures["fresh_max_abs_deviation"] = report.max_deviation()
    old = audit(read_jsonl(OLD_SAMPLE))
    result.figures["old_generator_shortcuts"] = len(old.shortcuts)
    result.targets["old_generator_shortcuts"] = (">=", 1)
    result.details = {
        "per_cell": per_cell,
        "generate_seconds": generated,
        "audit_seconds": audited,
        "fresh": [vars(r) | {"accuracy": r.accuracy} for r in report.results],
        "old_shortcuts": [(r.category, r.noun_count, r.cue, r.accuracy) for r in old.shortcuts],
    }
    result.notes.append(
        f"{per_cell} train + {per_cell} test stories per cell: generated in {generated:.1f} s, audited in {audited:.1f} s; "
        f"simultaneous 95% intervals over {len(report.results)} cue x cell tests"
    )
    return result
