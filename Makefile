# Two entry points: `make run` (set up and start the bot) and `make test` (set up and run every check).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fuzz bench clean

# A regular (not editable) install: pip byte-compiles it and the `scrubbot` command starts
# quickly; the stamp depends on the sources, so a change reinstalls before run or test.
SOURCES := pyproject.toml $(shell find bot adapters -name '*.py')

$(VENV)/bin/pip:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(SOURCES) | $(VENV)/bin/pip
	$(BIN)/pip install --quiet '.[dev]'
	touch $(STAMP)

# Settings come from the environment; a .env file (see .env.example) is read when present.
run: $(STAMP)
	@if [ -f .env ]; then set -a; . ./.env; set +a; fi; exec $(BIN)/scrubbot run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/versus.py
	$(BIN)/python bench/burst.py

# A longer, randomized fuzzing run over every format parser (make test runs a short, fixed one).
fuzz: $(STAMP)
	SCRUBBOT_FUZZ_EXAMPLES=2000 $(BIN)/pytest -q tests/test_fuzz.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
