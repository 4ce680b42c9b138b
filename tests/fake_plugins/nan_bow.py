"""The bow model, except that its loss turns NaN after 24 steps (in epoch 3 of the tiny data)."""

import qa_bow_numpy.plugin as bow

from qa_core import hookimpl

qa_describe = bow.qa_describe
qa_build = bow.qa_build
qa_evaluate = bow.qa_evaluate
qa_save_checkpoint = bow.qa_save_checkpoint
qa_load_checkpoint = bow.qa_load_checkpoint
STEPS = [0]


@hookimpl
def qa_train_step(model, batch):
    STEPS[0] += 1
    loss, correct = bow.qa_train_step(model, batch)
    return (float("nan") if STEPS[0] > 24 else loss), correct
