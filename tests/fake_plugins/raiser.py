"""The bow model, except that building it raises, as an out-of-memory framework would."""

import qa_bow_numpy.plugin as bow

from qa_core import hookimpl

qa_describe = bow.qa_describe
qa_train_step = bow.qa_train_step
qa_evaluate = bow.qa_evaluate
qa_save_checkpoint = bow.qa_save_checkpoint
qa_load_checkpoint = bow.qa_load_checkpoint


@hookimpl
def qa_build(spec):
    raise RuntimeError("out of memory while building")
