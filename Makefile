# lifecycled: `make demo` sets everything up and runs the demo; `make test` runs the test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint system clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The nvidia-pytriton wheel ships a CPU-capable tritonserver; it pins numpy<2, so it goes into its
# own folder without its Python dependencies (only the server binary and backends are used).
TRITON ?= .triton
$(TRITON)/.installed: $(BIN)/python
	$(BIN)/pip install --quiet --no-deps --target $(TRITON) nvidia-pytriton==0.7.0
	touch $@

# Debian packages the real-server tests and the demo need (root on Debian; skipped if present).
system:
	bash scripts/setup-system.sh

demo: $(VENV)/.installed $(TRITON)/.installed system
	$(BIN)/python scripts/demo.py

test: $(VENV)/.installed $(TRITON)/.installed system
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check daemon tests bench scripts devtools
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) $(TRITON) demo-run lifecycled-state .pytest_cache .mypy_cache .ruff_cache
