# Two commands do everything on a fresh machine with Python 3.11: `make demo` and `make test`.
# Each creates (or reuses) the virtual environment in .venv and installs requirements.txt into it.

PYTHON_BASE ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv demo test test-slow bench clean

venv: $(INSTALLED)

$(INSTALLED): requirements.txt
	test -x $(PYTHON) || $(PYTHON_BASE) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	touch $@

demo: venv
	$(PYTHON) -m benchmarks.vanishing_gradient

test: venv
	$(PYTHON) -m pytest

test-slow: venv
	$(PYTHON) -m pytest -m slow

# The speed benchmark also compares against PyTorch's CPU build when it can be installed; the project
# itself never needs torch.
bench: venv
	$(PYTHON) -m pip install --quiet torch==2.13.0 || echo "torch not installed: the PyTorch column stays empty"
	$(PYTHON) -m benchmarks.rnn_speed

clean:
	rm -rf $(VENV)
