# The README's two commands: `make demo` (install everything, convert an example photo) and
# `make test` (install everything, run the test suite). Both are safe to repeat.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# The browser tests drive Debian's chromium; playwright must never download a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test test-slow serve clean system-packages

install: $(VENV)/.installed browser/node_modules/.installed

# Debian packages, only when missing: chromium (browser end-to-end tests), node + npm (front end).
system-packages:
	@if [ ! -x /usr/bin/chromium ] || ! command -v npm >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium nodejs npm; \
	fi

# three and urdf-loader for the artifact browser, exactly as pinned in browser/package-lock.json.
browser/node_modules/.installed: browser/package-lock.json | system-packages
	cd browser && npm ci --no-audit --no-fund
	touch $@

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
