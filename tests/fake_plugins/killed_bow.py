"""The bow plugin, killed (SIGKILL, as by the OOM killer) while it saves epoch 3: epoch 3's metrics
line is written, its checkpoint never is, so a resume drops that line and trains epoch 3 again.
``QA_TEST_NO_KILL=1`` (the resume) lets it live."""

import os
import signal

import qa_bow_numpy.plugin as bow

from qa_core import hookimpl

qa_describe = bow.qa_describe
qa_build = bow.qa_build
qa_train_step = bow.qa_train_step
qa_evaluate = bow.qa_evaluate
qa_load_checkpoint = bow.qa_load_checkpoint


@hookimpl
def qa_save_checkpoint(model, path, spec, meta):
    if meta["epoch"] == 3 and not os.environ.get("QA_TEST_NO_KILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    return bow.qa_save_checkpoint(model, path, spec, meta)
