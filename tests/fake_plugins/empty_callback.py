"""A callback plugin that implements no callback hook: refused at load."""

from qa_core import PluginInfo, hookimpl


@hookimpl
def qa_describe():
    return PluginInfo(kind="callback")
