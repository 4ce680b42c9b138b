"""The bow plugin keeps the contract every model plugin keeps (qa_core.testing)."""

from qa_core.testing import ModelPluginContract


class TestBowContract(ModelPluginContract):
    plugin = "bow"
    params = {"lr": "0.05"}
