"""The bow model, but built from an unseeded generator: two builds of one spec differ, and so do
an interrupted-then-resumed run and an uninterrupted one. The model contract must catch it."""

import numpy as np
import qa_bow_numpy.plugin as bow

from qa_core import hookimpl

qa_describe = bow.qa_describe
qa_train_step = bow.qa_train_step
qa_evaluate = bow.qa_evaluate
qa_save_checkpoint = bow.qa_save_checkpoint
qa_load_checkpoint = bow.qa_load_checkpoint


@hookimpl
def qa_build(spec):
    model = bow.qa_build(spec)
    model.w[:] = np.random.default_rng().normal(0.0, 0.5, size=model.w.shape)
    return model
