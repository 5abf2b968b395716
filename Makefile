# The README's two commands: `make demo` (install the Python environment, convert an example
# photo) and `make test` (install, run the test suite). Both are safe to repeat. Neither needs a
# Debian package unless npm is missing (the artifact browser's front end, which `make test`
# serves); `make test-slow` also needs Debian's chromium (the browser's end-to-end tests).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# The browser tests drive Debian's chromium; playwright must never download a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test test-slow serve clean npm chromium

install: $(VENV)/.installed browser/node_modules/.installed

# One Debian package, installed only by the target that needs it; on failure, say which and why.
# $(1) package, $(2) what needs it, $(3) what to do instead.
define apt_install
	echo "make: installing Debian package '$(1)' ($(2))"; \
	if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	  echo "make: cannot install '$(1)': not root and no sudo. $(3)" >&2; exit 1; fi; \
	{ $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(1); } || \
	{ echo "make: could not install Debian package '$(1)' (apt-get's reason is above). $(3)" >&2; exit 1; }
endef

# npm (with Node.js) for the front end's pinned packages; nothing is installed when npm is there.
npm:
	@if ! command -v npm >/dev/null; then \
	  if ! command -v node >/dev/null; then \
	    $(call apt_install,nodejs,the artifact browser's front end,Install Node.js 18+ with npm by other means and rerun); \
	  fi; \
	  if ! command -v npm >/dev/null; then \
	    $(call apt_install,npm,the artifact browser's front end,Install npm from the same source as your Node.js (e.g. nodesource's nodejs ships npm) and rerun); \
	  fi; \
	fi

# Debian's chromium, driven by playwright in the slow browser tests only.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  $(call apt_install,chromium,the browser end-to-end tests of make test-slow,Install Debian's chromium as /usr/bin/chromium and rerun; or run make test without them); \
	fi

# three and urdf-loader for the artifact browser, exactly as pinned in browser/package-lock.json.
browser/node_modules/.installed: browser/package-lock.json | npm
	cd browser && npm ci --no-audit --no-fund
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# The demo converts a photo: the Python environment is all it needs.
demo: $(VENV)/.installed
	$(VENV)/bin/image-to-urdf convert assets/cabinet.png --out demo-out --max-dim 0.9

test: install
	$(PY) -m pytest -n 2 --durations=15

test-slow: install chromium
	$(PY) -m pytest -n 2 -m slow

# The local Prefect stack (server, cpu/gpu pools, deployments, workers); Ctrl-C stops it.
serve: $(VENV)/.installed
	$(VENV)/bin/image-to-urdf serve

clean:
	rm -rf demo-out .pytest_cache
