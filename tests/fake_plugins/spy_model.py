"""A model plugin that appends every hook it sees to the file $SPY_MARKS, so a test can prove
which plugin's hooks ran. It delegates the real work to the bow example plugin."""

import os
from pathlib import Path

import qa_bow_numpy.plugin as bow

from qa_core import hookimpl


def mark(hook):
    with open(Path(os.environ["SPY_MARKS"]), "a") as handle:
        handle.write(hook + "\n")


@hookimpl
def qa_describe():
    return bow.qa_describe()


@hookimpl
def qa_build(spec):
    mark("qa_build")
    return bow.qa_build(spec)


@hookimpl
def qa_train_step(model, batch):
    mark("qa_train_step")
    return bow.qa_train_step(model, batch)


@hookimpl
def qa_evaluate(model, data, batch_size):
    mark("qa_evaluate")
    return bow.qa_evaluate(model, data, batch_size)


@hookimpl
def qa_save_checkpoint(model, path, spec, meta):
    mark("qa_save_checkpoint")
    return bow.qa_save_checkpoint(model, path, spec, meta)


@hookimpl
def qa_load_checkpoint(path, spec, meta):
    mark("qa_load_checkpoint")
    return bow.qa_load_checkpoint(path, spec, meta)
