# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: setup setup-dev sandbox run test

# CPU torch first when none is installed (a GPU user who installed a CUDA torch keeps it).
setup: sandbox
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .

setup-dev: sandbox
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'

# Evaluation runs submissions under bubblewrap; as root on Debian/Ubuntu we install it.
sandbox:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else \
	    echo "bubblewrap (bwrap) is needed for sandboxed evaluation: install the 'bubblewrap' package" >&2; exit 1; \
	  fi; }

run: setup
	harness run submissions/pr940

test: setup-dev
	$(PYTHON) -m pytest -q
