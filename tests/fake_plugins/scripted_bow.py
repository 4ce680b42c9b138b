"""The bow plugin with scripted validation scores: epoch by epoch, the validation accuracy and loss
disagree about which epoch is best (whatever the data), so a test can tell the monitors apart.

Epoch: share of rows on the wrong side (at 0.45 / 0.55), confidence of the others; by accuracy
the order is 1, 3, 2, 4; by loss 2, 4, 3, 1.
"""

import numpy as np

import qa_bow_numpy.plugin as bow
from qa_core import hookimpl

SCRIPT = {1: (0.0, 0.55), 2: (0.2, 0.95), 3: (0.1, 0.70), 4: (0.3, 0.99)}
EPOCHS_SEEN = {"val": 0}

qa_describe = hookimpl(bow.qa_describe)
qa_build = hookimpl(bow.qa_build)
qa_train_step = hookimpl(bow.qa_train_step)
qa_save_checkpoint = hookimpl(bow.qa_save_checkpoint)
qa_load_checkpoint = hookimpl(bow.qa_load_checkpoint)


@hookimpl
def qa_evaluate(model, data, batch_size):
    if data.name != "val":
        return bow.qa_evaluate(model, data, batch_size)
    EPOCHS_SEEN["val"] += 1
    wrong_share, confidence = SCRIPT[min(EPOCHS_SEEN["val"], max(SCRIPT))]
    yes = data.labels >= 0.5
    right = np.where(yes, confidence, 1 - confidence)
    wrong = np.where(yes, 0.45, 0.55)
    n_wrong = int(round(wrong_share * len(data)))
    return np.concatenate([wrong[:n_wrong], right[n_wrong:]]).astype(np.float32)
