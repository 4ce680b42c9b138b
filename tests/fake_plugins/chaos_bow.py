"""The bow plugin of the randomized interrupt test: slow saves in odd epochs (a wide window inside
the write), fast ones in even epochs (the renames and links follow at once)."""

import time
from qa_core import hookimpl
import qa_bow_numpy.plugin as bow

qa_describe = hookimpl(bow.qa_describe)
qa_build = hookimpl(bow.qa_build)
qa_evaluate = hookimpl(bow.qa_evaluate)
qa_load_checkpoint = hookimpl(bow.qa_load_checkpoint)

@hookimpl
def qa_train_step(model, batch):
    time.sleep(0.01)
    return bow.qa_train_step(model, batch)

@hookimpl
def qa_save_checkpoint(model, path, spec, meta):
    if meta["epoch"] % 2:
        time.sleep(0.08)  # odd epochs: a wide window inside the checkpoint write
    return bow.qa_save_checkpoint(model, path, spec, meta)  # even: fast, the renames and links follow at once
