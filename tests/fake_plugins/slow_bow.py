"""The bow example plugin, slowed down (40 ms a step) so a test can signal it mid-epoch."""

import time

import qa_bow_numpy.plugin as bow

from qa_core import hookimpl

qa_describe = bow.qa_describe
qa_build = bow.qa_build
qa_evaluate = bow.qa_evaluate
qa_save_checkpoint = bow.qa_save_checkpoint
qa_load_checkpoint = bow.qa_load_checkpoint


@hookimpl
def qa_train_step(model, batch):
    time.sleep(0.04)
    return bow.qa_train_step(model, batch)
