"""A session tracker that never records epoch 2 and breaks at run end. The tracker contract must
catch it, through its read-back (``recorded``) and the core's failure line."""

from qa_core import PluginInfo, SessionHooks, TrackerSession, hookimpl

#: What it recorded, per run id: {name: {step: value}}.
RECORDED = {}


class Forgetful(TrackerSession):
    def start(self):
        RECORDED[self.context.run_id] = {}

    def log_metrics(self, metrics, step):
        if step != 2:
            for name, value in metrics.items():
                RECORDED[self.context.run_id].setdefault(name, {})[step] = value

    def end(self, status, summary):
        raise RuntimeError("lost the connection at the end")


@hookimpl
def qa_describe():
    return PluginInfo(kind="tracker", description="forgets epoch 2", threaded=False)


hooks = SessionHooks(Forgetful)
qa_log_run_start = hooks.qa_log_run_start
qa_log_metrics = hooks.qa_log_metrics
qa_log_run_end = hooks.qa_log_run_end
