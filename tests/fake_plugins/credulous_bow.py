"""The bow model, but its loader takes any file it can read and never checks whose it is. The
model contract must catch it."""

import numpy as np
import qa_bow_numpy.plugin as bow

from qa_core import hookimpl

qa_describe = bow.qa_describe
qa_build = bow.qa_build
qa_train_step = bow.qa_train_step
qa_evaluate = bow.qa_evaluate
qa_save_checkpoint = bow.qa_save_checkpoint


@hookimpl
def qa_load_checkpoint(path, spec, meta):
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError):
        arrays = {}
    model = bow.qa_build(spec)
    if "w" in arrays and arrays["w"].shape == model.w.shape:
        model.w[:] = arrays["w"]
        model.b = float(arrays["b"][0])
    return model
