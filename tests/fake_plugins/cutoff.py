"""Test-only model: its accuracy is a known function of category and noun count."""
import json
from pathlib import Path

import numpy as np

from qa_core import CheckpointError, Param, PluginInfo, hookimpl

NAME = "cutoff"


@hookimpl
def qa_describe():
    return PluginInfo(
        kind="model",
        description="right below a noun-count limit, says yes up to twice it, wrong beyond",
        framework="rules",
        params=(Param("limits", str, "simple:15,dense:8,superdense:50", "category:limit,..."),),
        checkpoint_suffix=".cut",
    )


def parse(text):
    return {category: int(limit) for category, limit in (part.split(":") for part in text.split(","))}


@hookimpl
def qa_build(spec):
    return {"limits": parse(spec.params["limits"])}


@hookimpl
def qa_train_step(model, batch):
    return 0.5, float(len(batch) // 2)


@hookimpl
def qa_evaluate(model, data, batch_size):
    limit = np.array([model["limits"].get(name, 10**6) for name in data.category_names])[data.categories]
    truth = data.labels >= 0.5
    nouns = data.noun_counts
    says_yes = np.where(nouns < limit, truth, np.where(nouns < 2 * limit, True, ~truth))
    return np.where(says_yes, 0.9, 0.1).astype(np.float32)


@hookimpl
def qa_save_checkpoint(model, path, spec, meta):
    Path(path).write_text(json.dumps({"plugin": NAME, "vocab_sha256": spec.vocab_hash, "limits": model["limits"]}))
    return True


@hookimpl
def qa_load_checkpoint(path, spec, meta):
    saved = json.loads(Path(path).read_text())
    if saved.get("plugin") != NAME or saved.get("vocab_sha256") != spec.vocab_hash:
        raise CheckpointError(f"{path}: not a cutoff checkpoint of this vocabulary")
    return {"limits": saved["limits"]}
