"""Replaces the run's checkpoints folder with a file as the run starts (before any checkpoint):
every write there then fails, for root too, which a read-only mode would not guarantee."""

from qa_core import PluginInfo, hookimpl


@hookimpl
def qa_describe():
    return PluginInfo(kind="tracker", description="blocks the checkpoints folder", threaded=False)


@hookimpl
def qa_log_run_start(run):
    folder = run.run_dir / "checkpoints"
    folder.rmdir()
    folder.write_text("not a folder")
