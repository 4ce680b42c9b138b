"""Offline runs: what lands under ``.neptune/`` is what a server would get from ``neptune sync``.

The offline run's operation log (``data-1.log``, one JSON operation per line) is read back to
check every series point's step and value against metrics.jsonl, and the uploaded files against
the run directory.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest


def read_operations(container: Path) -> list[dict[str, Any]]:
    return [json.loads(line)["obj"] for log in sorted(container.glob("data-*.log")) for line in log.read_text().splitlines() if line]


def test_offline_run_records_every_step_and_file_under_the_data_dir(run_qa, helpers, tmp_path: Path, capsys) -> None:
    run = run_qa("bow", tmp_path / "runs", {"mode": "offline", "data_dir": str(tmp_path / "tracking")}, epochs=3)
    helpers.assert_run_dir_complete(run, epochs=3)
    session = run.session
    err = capsys.readouterr().err
    assert "tracker 'neptune' failed" not in err

    containers = session.container_dirs()
    assert len(containers) == 1
    container = containers[0]
    assert container.parent == tmp_path / "tracking" / ".neptune" / "offline"

    operations = read_operations(container)
    points: dict[str, list[tuple[int, float]]] = defaultdict(list)
    assigned: dict[str, Any] = {}
    uploads: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = "/".join(op["path"])
        if op["type"] == "LogFloats":
            points[path] += [(value["step"], value["value"]) for value in op["values"]]
        elif op["type"].startswith("Assign"):
            assigned[path] = op["value"]
        elif op["type"] == "UploadFile":
            uploads[path] = op

    names = {name for line in run.lines for name in line if name != "epoch"}
    assert set(points) == names
    for name in names:
        assert points[name] == [(line["epoch"], pytest.approx(line[name], rel=1e-12)) for line in run.lines], name
    for name, value in run.summary["values"].items():
        assert assigned[name] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), name
    assert assigned["run/status"] == "finished"

    # Files are snapshots inside the container, so `neptune sync` does not depend on the run dir.
    run_dir = Path(run.result.run_dir)
    best = next(p for p in (run_dir / "checkpoints").glob("best*") if not p.name.endswith(".meta.json"))
    meta = next(p for p in (run_dir / "checkpoints").glob("best*.meta.json"))
    expected = {"model/best": best, "model/best.meta": meta, "model/vocab": run_dir / "vocab.json"}
    expected.update({f"eval/{p.name}": p for p in (run_dir / "eval").iterdir()})
    assert set(uploads) == set(expected)
    for name, source in expected.items():
        snapshot = container / "upload_path" / uploads[name]["tmp_file_name"]
        assert snapshot.read_bytes() == source.read_bytes(), name

    # One line says where the data went and how to send it.
    lines = [line for line in err.splitlines() if line.startswith("qa: neptune:")]
    assert len(lines) == 1
    assert str(container) in lines[0]
    assert f"sync --path {tmp_path / 'tracking'}" in lines[0]
    assert f"--object offline/{container.name.split('__')[1]}" in lines[0]


def test_offline_is_the_default_without_a_token_and_uses_the_working_directory(run_qa, tmp_path: Path, monkeypatch) -> None:
    for variable in ("NEPTUNE_API_TOKEN", "NEPTUNE_MODE", "NEPTUNE_PROJECT", "NEPTUNE_DATA_DIRECTORY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    run = run_qa("bow", tmp_path / "runs", {})
    assert run.session.mode == "offline"
    assert [p.parent for p in run.session.container_dirs()] == [tmp_path / ".neptune" / "offline"]
