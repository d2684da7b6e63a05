# hyperzoo: the two commands a fresh clone needs.
#   make demo   create .venv, install torch 2.14.1 / torchvision 0.29.1 and hyperzoo, run the demo
#   make test   the same set-up, then the test suite (slow and GPU tests are opt-in: make test-slow)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first and pinned: any other version would be a multi-GB download
TORCH := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint typecheck clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]" $(TORCH)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hyperzoo demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check hyperzoo tests experiments
	$(BIN)/ruff format --check hyperzoo tests experiments

typecheck: $(STAMP)
	$(BIN)/mypy

clean-venv:
	rm -rf $(VENV)
