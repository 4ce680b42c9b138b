"""bow whose qa_evaluate returns what a broken plugin might ($QA_TEST_BAD_EVALUATE): scores
outside [0, 1] ("logits"), one probability too few ("short"), or NaN ("nan")."""

import os

import numpy as np
import qa_bow_numpy.plugin as bow

from qa_core import hookimpl

qa_describe = hookimpl(bow.qa_describe)
qa_build = hookimpl(bow.qa_build)
qa_train_step = hookimpl(bow.qa_train_step)
qa_save_checkpoint = hookimpl(bow.qa_save_checkpoint)
qa_load_checkpoint = hookimpl(bow.qa_load_checkpoint)


@hookimpl
def qa_evaluate(model, data, batch_size):
    probs = bow.qa_evaluate(model, data, batch_size)
    kind = os.environ.get("QA_TEST_BAD_EVALUATE", "short")
    return {"logits": probs * 4 - 2, "short": probs[:-1], "nan": np.full_like(probs, np.nan)}[kind]
