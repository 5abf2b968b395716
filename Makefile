# The README's two commands: `make demo` (install everything, convert an example photo) and
# `make test` (install everything, run the test suite). Both are safe to repeat.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install demo test test-slow serve clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(VENV)/bin/image-to-urdf convert assets/cabinet.png --out demo-out --max-dim 0.9

test: install
	$(PY) -m pytest -n 2 --durations=15

test-slow: install
	$(PY) -m pytest -n 2 -m slow

# The local Prefect stack (server, cpu/gpu pools, deployments, workers); Ctrl-C stops it.
serve: install
	$(VENV)/bin/image-to-urdf serve

clean:
	rm -rf demo-out .pytest_cache
