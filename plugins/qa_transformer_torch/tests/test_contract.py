"""The transformer plugin keeps the contract every model plugin keeps (qa_core.testing)."""

from qa_core.testing import ModelPluginContract


class TestTransformerContract(ModelPluginContract):
    plugin = "transformer"
    # dropout on, so a resume is only exact when the RNG state travels in the checkpoint
    params = {"d_model": "16", "heads": "2", "layers": "1", "ff_dim": "32", "max_len": "48", "dropout": "0.1", "threads": "1", "device": "cpu"}
