# The two commands a new user types: `make serve` and `make test`.
# Both create .venv when it is missing and install what they need into it.

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
RUN    := $(VENV)/.installed-run
DEV    := $(VENV)/.installed-dev

.PHONY: serve test lint fakes clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "llmrelay needs Python 3.11 or newer (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@ $(RUN)

## serve: the HTTP service on http://127.0.0.1:8000 (migrates the ledger; the first start prints
## the admin API key once).  Flags: make serve SERVE_FLAGS="--host 0.0.0.0 --port 9000 --workers 4"
SERVE_FLAGS ?=
serve: $(RUN)
	$(BIN)/llmrelay serve $(SERVE_FLAGS)

## test: lint, then the whole test suite
test: $(DEV)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest

lint: $(DEV)
	$(BIN)/ruff check src tests bench

## fakes: run the fake providers on ports 9100-9104
fakes: $(RUN)
	$(BIN)/llmrelay fake-providers --port 9100

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
