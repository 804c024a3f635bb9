# nni-eas: the two commands a new user runs are `make demo` and `make test`.
# Both build the virtual environment from nothing on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
export PYTHONUNBUFFERED := 1

.PHONY: all venv sysdeps demo test test-all bench docs-check clean distclean

all: test

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e ".[dev]"
	$(BIN)/python -c "import nni_eas, timm, torchvision, nni, pymoo, onnxruntime; print('nni-eas environment ready:', nni_eas.__version__)"
	touch $(STAMP)

venv: $(STAMP)

# Debian packages used by the data loaders and the browser test (only where we may install them).
sysdeps:
	@bash scripts/install_sysdeps.sh

demo: venv
	$(BIN)/python -m nni_eas.demo $(DEMO_ARGS)

test: venv sysdeps
	$(BIN)/python -m pytest -m "not slow and not network" $(PYTEST_ARGS)

test-all: venv sysdeps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks print a table and write JSON + PNG to benchmarks/results/ (BENCH=eas|search|latency|nat|repnas|supernet_quality).
BENCH ?= eas
BENCH_ARGS ?=
bench: venv
	$(BIN)/python benchmarks/$(BENCH).py $(BENCH_ARGS)

clean:
	rm -rf .pytest_cache build dist *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
