# lifecycled: `make demo` sets up what the demo needs and runs it; `make test` runs the test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-fast lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs the package and the small webhook-signature library its receiver checks with.
$(VENV)/.demo: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.test: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The nvidia-pytriton wheel ships a CPU-capable tritonserver; it pins numpy<2, so it goes into its
# own folder without its Python dependencies (only the server binary and backends are used).
TRITON ?= .triton
$(TRITON)/.installed: $(BIN)/python
	$(BIN)/pip install --quiet --no-deps --target $(TRITON) nvidia-pytriton==0.7.0
	touch $@

# Prometheus and Alertmanager when present (installed only as root); nothing else, no service
# started or stopped.
demo: $(VENV)/.demo $(TRITON)/.installed
	bash scripts/setup-system.sh demo
	$(BIN)/python scripts/demo.py

# Everything the tests need (Debian packages: root on Debian), then the whole suite in
# $(WORKERS) processes, each test file in one of them (most of a file's time is spent waiting on
# the servers it starts).
WORKERS ?= 2
test: $(VENV)/.test $(TRITON)/.installed
	bash scripts/setup-system.sh test
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile

# The in-process tier while working: no real server, no slow test (markers: tests/conftest.py).
test-fast: $(VENV)/.test
	$(BIN)/python -m pytest -m 'inprocess and not slow' -q

lint: $(VENV)/.test
	$(BIN)/ruff check daemon tests bench scripts devtools
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) $(TRITON) demo-run lifecycled-state .pytest_cache .mypy_cache .ruff_cache
