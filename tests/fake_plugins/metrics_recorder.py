"""A tracker that keeps every qa_log_metrics call in a JSON-lines file named by $RECORDER_FILE."""

import json, os
from qa_core import PluginInfo, hookimpl

@hookimpl
def qa_describe():
    return PluginInfo(kind="tracker", description="records metrics calls")

@hookimpl
def qa_log_metrics(run, metrics, step):
    with open(os.environ["RECORDER_FILE"], "a") as handle:
        handle.write(json.dumps({"step": step, "metrics": dict(metrics)}) + "\n")
