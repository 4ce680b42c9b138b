"""A plugin with a misspelt hook name: refused with a "did you mean" hint."""

from qa_core import hookimpl


@hookimpl
def qa_biuld(spec):
    return None
