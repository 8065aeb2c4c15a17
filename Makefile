# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: setup setup-dev run test bench

# CPU torch first when none is installed (a GPU user who installed a CUDA torch keeps it).
setup:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	@command -v bwrap >/dev/null || echo "note: bubblewrap (bwrap) is not installed; evaluation needs it (apt-get install bubblewrap)"

setup-dev:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'

run: setup
	harness run submissions/pr940

test: setup-dev
	$(PYTHON) -m pytest -q
