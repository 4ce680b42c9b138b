"""The HTML report rendered by a real headless Chromium (Debian's `chromium`; .ci/run installs
it): every table is there, every embedded image (PNG and SVG) decodes, the page raises no error.

The check runs inside the browser: a copy of the report with one script appended that, once the
page has loaded, records what the browser made of it on <body>; --dump-dom prints the DOM."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run installs it)")

CHECK = """
<script>
window.__qaErrors = [];
window.addEventListener("error", (event) => window.__qaErrors.push(String(event.message || event.type)), true);
window.addEventListener("load", () => {
  const images = [...document.images];
  const result = {
    tables: [...document.querySelectorAll("table")].map((t) => [t.id, t.rows.length, t.getBoundingClientRect().height > 0]),
    images: images.map((i) => [i.id, i.complete && i.naturalWidth > 0, i.naturalWidth, i.naturalHeight]),
    errors: window.__qaErrors,
    title: document.title,
  };
  document.body.setAttribute("data-qa-check", JSON.stringify(result));
});
</script>
"""

# The flags this machine's Chromium needs as root, without network (see the environment notes).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--virtual-time-budget=10000"]  # fmt: skip


def render(page: Path, tmp_path: Path) -> dict:
    checked = tmp_path / f"checked-{page.name}"
    checked.write_text(page.read_text(encoding="utf-8").replace("</body></html>", CHECK + "</body></html>"), encoding="utf-8")
    profile = tmp_path / f"profile-{page.stem}"
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'data-qa-check="([^"]*)"', done.stdout)
    assert found, f"the page did not finish loading: {done.stdout[-500:]} {done.stderr[-1000:]}"
    return json.loads(html.unescape(found[1]))


@pytest.fixture(scope="module")
def run_dir(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory, qa) -> Path:
    runs = tmp_path_factory.mktemp("browser") / "runs"
    result = qa("run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "2", "--no-progress", "--runs-dir", str(runs))
    assert result.code == 0, result.err
    (path,) = [p for p in runs.iterdir() if not p.name.startswith("_")]
    return path


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_the_report_renders_its_tables_and_images(run_dir: Path, tmp_path: Path, qa, fmt: str) -> None:
    out = tmp_path / f"report-{fmt}.html"
    result = qa("report", str(run_dir), "--out", str(out), "--format", fmt)
    assert result.code == 0, result.err
    page = render(out, tmp_path)
    assert page["errors"] == []
    assert page["title"] == f"qa report: {run_dir.name}"
    tables = {table_id: (rows, visible) for table_id, rows, visible in page["tables"]}
    for table_id in ("summary", "hyperparameters", "test-overall", "confusion", "cells", "by-category", "by-noun-count", "misclassified", "epochs", "config"):
        rows, visible = tables[table_id]
        assert rows > 1 and visible, table_id
    images = {image_id: (ok, width, height) for image_id, ok, width, height in page["images"]}
    assert set(images) == {"plot-training_curves", "plot-accuracy_by_noun_count", "plot-cell_heatmap", "plot-confusion_matrix"}
    for image_id, (ok, width, height) in images.items():
        assert ok and width > 200 and height > 200, (image_id, width, height)


def test_a_broken_image_is_caught(run_dir: Path, tmp_path: Path, qa) -> None:
    # The check above can fail: an image whose data is not an image is reported as broken.
    out = tmp_path / "report.html"
    assert qa("report", str(run_dir), "--out", str(out)).code == 0
    text = out.read_text(encoding="utf-8")
    text = re.sub(r'(id="plot-cell_heatmap" alt="[^"]*" src="data:image/png;base64,)[^"]*', r"\1bm90IGFuIGltYWdl", text)
    out.write_text(text, encoding="utf-8")
    images = {image_id: ok for image_id, ok, _, _ in render(out, tmp_path)["images"]}
    assert images["plot-cell_heatmap"] is False and images["plot-training_curves"] is True
