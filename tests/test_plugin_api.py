"""The surface a plugin author sees: documented, namespaced, and honest when traced."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
import pytest

import qa_core
from qa_core.checkpoints import write_checkpoint
from qa_core.plugins import ModelPlugin, PluginManager, summarize
from qa_core.testing import TinyModel, tiny_data, train_run
from qa_core.testing.models import TINY_MODEL
from qa_core.tracking.sessions import TrackerSession

PLUGINS_DOC = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")


def public_members(cls: type) -> list[str]:
    return [name for name, _ in inspect.getmembers(cls) if not name.startswith("_") and (inspect.isfunction(_) or isinstance(_, property))]


@pytest.mark.parametrize("cls", [ModelPlugin, TrackerSession], ids=lambda c: c.__name__)
def test_every_public_method_of_the_facades_is_documented_in_code_and_in_the_guide(cls: type) -> None:
    for name in public_members(cls):
        member = getattr(cls, name)
        assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"
        assert f"`{name}" in PLUGINS_DOC, f"docs/plugins.md does not mention {cls.__name__}.{name}"


def test_everything_exported_is_in_the_guide() -> None:
    for name in qa_core.__all__:
        if name != "__version__":
            assert f"`{name}" in PLUGINS_DOC, f"qa_core.{name} is exported but docs/plugins.md never names it"


class SpecRecorder(TinyModel):
    """The tiny model, remembering the spec it was built from and writing meta of its own."""

    specs: list = []

    def qa_build(self, spec):  # noqa: D102 - registered through the hookimpl marker below
        SpecRecorder.specs.append(spec)
        return super().qa_build(spec)

    def qa_save_checkpoint(self, model, path, spec, meta):
        meta["format"] = "mine"  # a plugin scribbling on the core's meta changes nothing
        super().qa_save_checkpoint(model, path, spec, meta)
        return {"format": 7, "layers": 2}


for _hook in ("qa_build", "qa_save_checkpoint"):
    setattr(SpecRecorder, _hook, qa_core.hookimpl(getattr(SpecRecorder, _hook)))


def test_a_plugin_sees_the_vocabulary_and_its_meta_lives_in_its_own_namespace(tmp_path: Path, tiny_data: Path) -> None:
    manager = PluginManager()
    manager.load_builtins()
    assert manager.register(SpecRecorder(), "recorder").error is None
    SpecRecorder.specs = []
    run = train_run(manager, "recorder", tiny_data, tmp_path / "runs", epochs=1)
    spec = SpecRecorder.specs[0]
    tokens = json.loads((run.run_dir / "vocab.json").read_text())["tokens"]
    assert spec.vocab == tuple(tokens) and len(spec.vocab) == spec.vocab_size
    assert (spec.vocab[spec.pad_id], spec.vocab[spec.unk_id], spec.vocab[spec.sep_id]) == ("<pad>", "<unk>", "<sep>")
    meta = json.loads(next((run.run_dir / "checkpoints").glob("best.meta.json")).read_text())
    assert meta["format"] != "mine" and meta["plugin"] == "recorder"
    assert meta["plugin_meta"] == {"format": 7, "layers": 2}


def test_a_plugin_that_returns_true_adds_no_namespace(tmp_path: Path) -> None:
    data = tiny_data(TINY_MODEL, {"lr": 0.5})
    tiny = TinyModel()
    model = tiny.qa_build(data.spec)
    path = write_checkpoint(lambda p: tiny.qa_save_checkpoint(model, p, data.spec, {}), tmp_path / "m.npz", ".npz", {"format": 1, "plugin": TINY_MODEL})
    assert "plugin_meta" not in json.loads((tmp_path / "m.meta.json").read_text()) and path.is_file()


def test_summaries_say_what_a_value_is_never_its_contents() -> None:
    import numpy as np

    data = tiny_data(TINY_MODEL, {"lr": 0.5})
    model = TinyModel().qa_build(data.spec)
    assert summarize(model) == "{w, b, spec} (3 keys)"
    assert summarize(np.zeros((3, 4), np.float32)) == "ndarray[3, 4] float32"
    assert summarize(data.splits["val"]) == f"EncodedSplit(val, {len(data.splits['val'])} rows)"
    assert summarize(data.spec).startswith(f"ModelSpec({TINY_MODEL}, vocab {data.spec.vocab_size}")
    assert summarize((np.float32(0.5), 3)) == "(0.5, 3)"  # a train step's (loss, correct)
    assert len(summarize("x" * 500)) < 70

    class Huge:
        def __repr__(self) -> str:
            return "weights " * 10_000

    assert summarize(Huge()) == f"<{Huge.__module__}.{Huge.__qualname__}>"


def test_qa_trace_plugins_prints_one_short_line_per_call(tmp_path: Path, tiny_data: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qa_core.cli", "run", "--plugin", "bow", "--data", str(tiny_data), "--epochs", "1",
         "--runs-dir", str(tmp_path / "runs"), "--no-progress"],
        capture_output=True, text=True, env={**__import__("os").environ, "QA_TRACE_PLUGINS": "1"}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    trace = [line for line in done.stderr.splitlines() if line.startswith("qa: trace: ")]
    assert any(line.startswith("qa: trace: qa_train_step(model=<qa_bow_numpy.plugin.BowModel>, batch=Batch(") for line in trace)
    assert any(line.startswith("qa: trace: qa_evaluate returned ndarray[") for line in trace)
    assert max(len(line) for line in trace) < 400 and "array(" not in done.stderr

