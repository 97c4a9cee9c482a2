# Two entry points, each doing all of its own set-up on a bare Debian machine (python3,
# python3-venv, make): `make run` (the bot, runtime dependencies only) and `make test` (the
# development tools and the test judges, then every check).
PYTHON ?= python3
RUN_VENV := .venv-run
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test judges lint fuzz bench lock clean

# Regular (not editable) installs: pip byte-compiles them and `scrubbot` starts quickly. The
# dependencies come from the hash-pinned lock files; the stamps depend on the sources, so a
# change reinstalls scrubbot itself (--no-deps: nothing else moves).
SOURCES := pyproject.toml $(shell find bot adapters -name '*.py' -o -name '*.po' -o -name '*.gz')

%/bin/pip:
	$(PYTHON) -m venv $*
	$*/bin/pip install --quiet --upgrade pip

$(RUN_VENV)/.locked: requirements.lock | $(RUN_VENV)/bin/pip
	$(RUN_VENV)/bin/pip install --quiet --require-hashes -r requirements.lock
	touch $@

$(RUN_VENV)/.installed: $(SOURCES) $(RUN_VENV)/.locked
	$(RUN_VENV)/bin/pip install --quiet --no-deps .
	touch $@

$(VENV)/.locked: requirements-dev.lock | $(VENV)/bin/pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

$(VENV)/.installed: $(SOURCES) $(VENV)/.locked
	$(BIN)/pip install --quiet --no-deps '.[dev]'
	touch $@

# Settings come from the environment; scrubbot itself reads a .env file when present (see
# .env.example for its format), the same way compose and systemd read it.
run: $(RUN_VENV)/.installed
	exec $(RUN_VENV)/bin/scrubbot run

# ExifTool and ffmpeg judge the tests' outputs: installed with apt when possible.
judges:
	@scripts/install-judges

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: judges lint
	$(BIN)/pytest -q

bench: $(VENV)/.installed judges
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/versus.py
	$(BIN)/python bench/burst.py

# A longer, randomized fuzzing run over every format parser (make test runs a short, fixed one).
fuzz: $(VENV)/.installed
	SCRUBBOT_FUZZ_EXAMPLES=2000 $(BIN)/pytest -q tests/test_fuzz.py

# Refresh the lock files after changing dependencies in pyproject.toml (needs uv: pip install uv).
lock:
	uv pip compile pyproject.toml --python-version 3.11 --universal --generate-hashes -o requirements.lock
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --universal --generate-hashes -o requirements-dev.lock

clean:
	rm -rf $(VENV) $(RUN_VENV) .mypy_cache .pytest_cache .ruff_cache
