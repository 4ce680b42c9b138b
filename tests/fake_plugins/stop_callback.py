"""A callback plugin that stops the run at epoch 2 and adds one metric of its own every epoch."""

from qa_core import PluginInfo, hookimpl

@hookimpl
def qa_describe():
    return PluginInfo(kind="callback", description="stops at epoch 2")

@hookimpl
def qa_epoch_metrics(run, epoch, logs):
    return {"metrics/val/error_rate": 1.0 - logs["metrics/val/accuracy"]}

@hookimpl
def qa_epoch_end(run, epoch, logs):
    assert logs["metrics/val/error_rate"] == 1.0 - logs["metrics/val/accuracy"]
    return "enough after two epochs" if epoch == 2 else None
