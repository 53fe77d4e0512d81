# Set-up and everyday commands. `make demo` and `make test` are the two entry points (see README).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TOOLS := $(CURDIR)/.tools/bin
TOXIPROXY_VERSION := 2.12.0
TOXIPROXY := $(TOOLS)/toxiproxy-server
PYTEST_ARGS ?= -n auto

.PHONY: setup python-deps toxiproxy system-deps test demo bench clean

setup: system-deps python-deps toxiproxy

python-deps: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# The real Toxiproxy server (Go). Found on PATH as toxiproxy-server, or built into .tools/bin.
toxiproxy:
	@if command -v toxiproxy-server >/dev/null 2>&1 || [ -x $(TOXIPROXY) ]; then :; else \
	  echo "installing toxiproxy-server $(TOXIPROXY_VERSION) into $(TOOLS)"; \
	  mkdir -p $(TOOLS) && \
	  GOBIN=$(TOOLS) go install -ldflags "-X github.com/Shopify/toxiproxy/v2.Version=$(TOXIPROXY_VERSION)" \
	    github.com/Shopify/toxiproxy/v2/cmd/server@v$(TOXIPROXY_VERSION) && \
	  mv $(TOOLS)/server $(TOXIPROXY); fi

# Debian packages the tests and the demo use (redis-server, chromium …); installed only if missing.
system-deps:
	@bash scripts/system-deps.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(PY) -m harness demo

# Peers for the benchmark: wrk (Debian), WireMock and Mountebank (npm, into bench/node_modules).
bench: setup
	@bash scripts/system-deps.sh wrk
	@test -d bench/node_modules/wiremock -a -d bench/node_modules/mountebank || \
	  npm install --prefix bench --no-audit --no-fund --loglevel=error
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .tools build *.egg-info
