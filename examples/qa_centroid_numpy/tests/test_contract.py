"""The centroid plugin keeps the contract every model plugin keeps (qa_core.testing)."""

from qa_core.testing import ModelPluginContract


class TestCentroidContract(ModelPluginContract):
    plugin = "centroid"
    params = {"sharpness": "20"}
