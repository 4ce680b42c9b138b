# Set-up and common jobs. `make run` and `make test` work on a fresh machine: they create .venv,
# install qa-core, the example plugin and the framework plugins, then do their job.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
# Quiet installs: PYTHONWARNINGS silences setuptools' editable-install banners, and the filter drops
# pip's warnings about this machine's configured-but-absent local package indexes.
PIP     := PYTHONWARNINGS=ignore $(PY) -m pip --disable-pip-version-check
QUIET   := 2>&1 | sed "/^WARNING: Location 'file:/d"
SHELL   := /bin/bash
.SHELLFLAGS := -o pipefail -c
# The PyTorch build to install. 2.13.0 is the CPU build this project's machines have on disk;
# elsewhere choose your own (e.g. TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124").
TORCH_SPEC ?= torch==2.13.0
TF_SPEC    ?= tensorflow-cpu>=2.16
PLUGINS := plugins/qa_transformer_torch plugins/qa_lstm_tf plugins/qa_neptune plugins/qa_tensorboard
STAMP   := $(VENV)/.qa-installed

.PHONY: setup run test test-core bench bench-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml examples/qa_bow_numpy/pyproject.toml examples/qa_centroid_numpy/pyproject.toml examples/qa_target_stop/pyproject.toml $(wildcard plugins/*/pyproject.toml)
	@echo "setup: $(VENV) with torch, TensorFlow, qa-core and the plugins (a few minutes on a fresh machine)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --upgrade pip $(QUIET)
	@# Frameworks first, pinned by the variables above, so no plugin pulls a different build.
	@$(PIP) install -q "$(TORCH_SPEC)" "$(TF_SPEC)" $(QUIET)
	@$(PIP) install -q -e ".[test,plots,ray]" -e examples/qa_bow_numpy -e examples/qa_centroid_numpy -e examples/qa_target_stop $(addprefix -e ,$(PLUGINS)) -e "plugins/qa_mlflow[server]" $(QUIET)
	@touch $(STAMP)
	@echo "setup: done"

# The main job on embedded defaults: generated data, local files, no account or server.
# (The LSTM is the plugin that learns the default data within minutes on a CPU; see README.)
run: setup
	$(VENV)/bin/qa run --plugin lstm

test: setup
	$(PY) -m pytest

# Core tests only: no torch or TensorFlow needed.
test-core: setup
	$(PY) -m pytest tests

# pandas and scikit-learn are the grouped-metrics baselines, pytorch-lightning the transformer's;
# nothing else installs them. TORCH_SPEC is repeated so Lightning cannot pull another torch.
BENCH_STAMP := $(VENV)/.qa-bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PIP) install -q -e ".[bench]" "$(TORCH_SPEC)" $(QUIET)
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m benchmarks --out bench-out

bench-quick: $(BENCH_STAMP)
	$(PY) -m benchmarks --quick --out bench-out

clean:
	rm -rf $(VENV) runs bench-out .pytest_cache
