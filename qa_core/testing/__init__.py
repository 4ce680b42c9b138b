"""A kit for plugin authors: fixtures and contract tests, as Keras layer authors use
``run_layer_test``. ``docs/plugins.md`` ("Testing your plugin") is the guide; in short::

    # tests/test_contract.py of your plugin package
    from qa_core.testing import ModelPluginContract

    class TestContract(ModelPluginContract):
        plugin = "mymodel"              # your entry-point name
        params = {"hidden": "8"}        # tiny: the contract trains for real

``pip install -e .`` your plugin, then ``pytest``. The contracts load the *installed* plugin
through its entry point, generate a few hundred records, and check what every plugin must do.

What is here:
    ModelPluginContract, TrackerPluginContract   the contract test classes (:mod:`.contracts`)
    write_tiny_data, tiny_data, TinyData          tiny generated data, raw or encoded (:mod:`.data`)
    train_run, resume_run, TrainingRun            real in-process runs (:mod:`.runs`)
    RunDirectory                                  a run directory read back
    assert_same_epochs                            two runs' epochs agree within a tolerance (parity tests)
    TinyModel, HookRecorder, Interrupter          small real plugins the contracts use (:mod:`.models`)
and, through the ``pytest11`` entry point, the fixtures ``qa_tiny_data``, ``qa_plugin_manager``,
``qa_read_run`` and ``qa_train`` (:mod:`.pytest_plugin`).

This package imports pytest; the rest of qa-core never imports it.
"""

from .contracts import ModelPluginContract, TrackerPluginContract
from .data import TinyData, tiny_data, write_tiny_data
from .models import HookCall, HookRecorder, Interrupter, TinyModel
from .runs import RunDirectory, TrainingRun, assert_same_epochs, resume_run, train_run

__all__ = [
    "HookCall",
    "HookRecorder",
    "Interrupter",
    "ModelPluginContract",
    "RunDirectory",
    "TinyData",
    "TinyModel",
    "TrackerPluginContract",
    "TrainingRun",
    "assert_same_epochs",
    "resume_run",
    "tiny_data",
    "train_run",
    "write_tiny_data",
]
