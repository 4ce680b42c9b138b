"""A tracker whose server goes away: every metrics call raises."""

from qa_core import PluginInfo, hookimpl


@hookimpl
def qa_describe():
    return PluginInfo(kind="tracker", description="fails on every metrics call")


@hookimpl
def qa_log_metrics(run, metrics, step):
    raise ConnectionError("tracker server went away")
