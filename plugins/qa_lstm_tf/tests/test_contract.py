"""The lstm plugin keeps the contract every model plugin keeps (qa_core.testing)."""

from qa_core.testing import ModelPluginContract


class TestLstmContract(ModelPluginContract):
    plugin = "lstm"
    # dropout off: an exact resume with dropout on needs the RNG state in the checkpoint (issue 20.2)
    params = {"embedding_dim": "8", "units": "8", "bidirectional": "false", "max_len": "48", "dropout": "0.0"}
