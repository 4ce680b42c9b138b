"""The lstm plugin keeps the contract every model plugin keeps (qa_core.testing)."""

from qa_core.testing import ModelPluginContract


class TestLstmContract(ModelPluginContract):
    plugin = "lstm"
    # dropout on, so a resume is only exact when the RNG state travels in the checkpoint
    params = {"embedding_dim": "8", "units": "8", "bidirectional": "false", "max_len": "48", "dropout": "0.2"}
