"""A tracker that takes a store URI option: the trace must never show the password in it."""

from qa_core import Param, PluginInfo, hookimpl


@hookimpl
def qa_describe():
    return PluginInfo(kind="tracker", description="takes a store URI", threaded=False, params=(Param("uri", str, "", "the store"),))


@hookimpl
def qa_log_run_start(run):
    pass
