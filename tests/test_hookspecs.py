"""Every hook spec is documented in one template, and in docs/plugins.md."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from qa_core import hookspecs

SPECS = [getattr(hookspecs, name) for name in dir(hookspecs) if name.startswith("qa_")]
PLUGINS_DOC = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")


def test_there_are_specs_for_build_train_evaluate_log_and_save():
    names = {spec.__name__ for spec in SPECS}
    assert {"qa_describe", "qa_build", "qa_train_step", "qa_train_epoch", "qa_evaluate", "qa_save_checkpoint", "qa_load_checkpoint"} <= names
    assert {"qa_log_run_start", "qa_log_params", "qa_log_metrics", "qa_log_summary", "qa_log_artifact", "qa_log_run_end"} <= names


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.__name__)
def test_spec_docstring_follows_the_template(spec):
    doc = inspect.getdoc(spec) or ""
    assert doc, f"{spec.__name__} has no docstring"
    assert re.search(r"\bCalled\b", doc), f"{spec.__name__}: say who calls it and when"
    assert "Returns:" in doc, f"{spec.__name__}: no Returns section"
    params = [p for p in inspect.signature(spec).parameters]
    if params:
        assert "Args:" in doc, f"{spec.__name__}: no Args section"
        for param in params:
            assert re.search(rf"^\s+{param}:", doc, re.M), f"{spec.__name__}: argument {param} undocumented"
    firstresult = spec.qa_spec.get("firstresult", False)
    assert ("Stops at first non-None result." in doc) == firstresult, f"{spec.__name__}: firstresult note does not match"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.__name__)
def test_spec_is_in_the_plugin_docs(spec):
    assert f"### `{spec.__name__}(" in PLUGINS_DOC, f"{spec.__name__} missing from docs/plugins.md"
    params = ", ".join(inspect.signature(spec).parameters)
    assert f"### `{spec.__name__}({params})`" in PLUGINS_DOC, f"docs/plugins.md shows the wrong arguments for {spec.__name__}"
