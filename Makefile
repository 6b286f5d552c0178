# Two commands matter: `make run` (local mode on 127.0.0.1:8000) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_WORKERS ?= 3

.PHONY: install run test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/govtrack serve --host 127.0.0.1 --port 8000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install  # workers steal tests: the subprocess, crash and browser tests mostly wait
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

test: lint typecheck unit

bench: install  # on demand, minutes; results in benchmarks/results/
	$(BIN)/python -m benchmarks.bench_decode
	$(BIN)/python -m benchmarks.bench_ingest
	$(BIN)/python -m benchmarks.bench_query

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
