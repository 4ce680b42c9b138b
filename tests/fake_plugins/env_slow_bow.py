"""The bow plugin, slowed from the environment: each step after step $SLOW_AFTER sleeps $STEP_SLEEP
seconds; each save sleeps $SAVE_SLEEP seconds (a wide window inside a checkpoint write)."""

import os, time
from qa_core import hookimpl
import qa_bow_numpy.plugin as bow

qa_describe = hookimpl(bow.qa_describe)
qa_build = hookimpl(bow.qa_build)
qa_evaluate = hookimpl(bow.qa_evaluate)
qa_load_checkpoint = hookimpl(bow.qa_load_checkpoint)
STEPS = [0]

@hookimpl
def qa_train_step(model, batch):
    STEPS[0] += 1
    if STEPS[0] > int(os.environ.get("SLOW_AFTER", "0")):
        time.sleep(float(os.environ.get("STEP_SLEEP", "0")))
    return bow.qa_train_step(model, batch)

@hookimpl
def qa_save_checkpoint(model, path, spec, meta):
    time.sleep(float(os.environ.get("SAVE_SLEEP", "0")))
    return bow.qa_save_checkpoint(model, path, spec, meta)
