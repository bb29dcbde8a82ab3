# The two commands of the quick start. Each creates .venv as needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.server: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[server]"
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,examples]"
	touch $@ $(VENV)/.server

## make run: start the log on an embedded PostgreSQL at http://127.0.0.1:8080
run: $(VENV)/.server
	$(BIN)/atlas-log-server serve

## make test: lint, type-check and run the whole test suite (two test processes: most tests wait on servers)
test: $(VENV)/.dev
	$(BIN)/ruff check client server tests bench migrations
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadscope

bench: $(VENV)/.dev
	$(BIN)/python -m bench.sequencer
	$(BIN)/python -m bench.admission
	$(BIN)/python -m bench.proofs
	$(BIN)/python -m bench.tdx
	$(BIN)/python -m bench.history
	$(BIN)/python -m bench.replay
	$(BIN)/python -m bench.example

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
