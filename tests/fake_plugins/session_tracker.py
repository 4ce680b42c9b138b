"""A third-party tracker written the short way: a TrackerSession subclass and SessionHooks. It
appends every call, as JSON, to the file $SESSION_LOG."""

import json
import os

from qa_core import Param, PluginInfo, SessionHooks, TrackerSession, hookimpl


class Session(TrackerSession):
    def _write(self, *entry):
        with open(os.environ["SESSION_LOG"], "a") as handle:
            handle.write(json.dumps(entry) + "\n")

    def start(self):
        self._write("start", self.context.run_id, self.name, self.options)

    def log_params(self, params):
        self._write("params", sorted(params))

    def log_metrics(self, metrics, step):
        self._write("metrics", step)

    def log_summary(self, values, step):
        self._write("summary", step)

    def log_artifact(self, path, name):
        self._write("artifact", name)

    def end(self, status, summary):
        self._write("end", status)


@hookimpl
def qa_describe():
    return PluginInfo(
        kind="tracker", description="session-shaped test tracker", params=(Param("every", int, 1), Param("loud", bool, False))
    )


hooks = SessionHooks(Session)
qa_log_run_start = hooks.qa_log_run_start
qa_log_params = hooks.qa_log_params
qa_log_metrics = hooks.qa_log_metrics
qa_log_summary = hooks.qa_log_summary
qa_log_artifact = hooks.qa_log_artifact
qa_log_run_end = hooks.qa_log_run_end
