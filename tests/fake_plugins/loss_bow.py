"""The bow plugin, writing each step's loss to $LOSS_FILE: the truth step logging is checked against."""

import os
from qa_core import hookimpl
import qa_bow_numpy.plugin as bow

qa_describe = hookimpl(bow.qa_describe)
qa_build = hookimpl(bow.qa_build)
qa_evaluate = hookimpl(bow.qa_evaluate)
qa_save_checkpoint = hookimpl(bow.qa_save_checkpoint)
qa_load_checkpoint = hookimpl(bow.qa_load_checkpoint)

@hookimpl
def qa_train_step(model, batch):
    loss, correct = bow.qa_train_step(model, batch)
    with open(os.environ["LOSS_FILE"], "a") as handle:
        handle.write(repr(loss) + "\n")
    return loss, correct
