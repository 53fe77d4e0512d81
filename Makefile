# Set-up and everyday commands. `make demo` and `make test` are the two entry points (see README).
SHELL := /bin/bash
# the interpreter .venv is made from: the distribution's CPython 3.11 if there is one (scripts/pick-python.sh)
PYTHON ?= $(shell scripts/pick-python.sh)
VENV ?= .venv
PY := $(VENV)/bin/python
TOOLS := $(CURDIR)/.tools/bin
TOXIPROXY_VERSION := 2.12.0
TOXIPROXY := $(TOOLS)/toxiproxy-server
PYTEST_ARGS ?= -n auto

SDK := tests/sdk_clients

.PHONY: setup python-deps toxiproxy system-deps sdk-clients example-apps test fuzz demo bench clean

setup: system-deps python-deps toxiproxy sdk-clients example-apps

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

# The official SDK clients that tests/test_sdk_clients.py runs (tests/sdk_clients/<lang>/): npm ci from the
# lock file, go build with the module cache, the Java SDK's jars copied by Maven then javac. Each step
# runs again only when its manifest or source changed.
sdk-clients: $(SDK)/node/node_modules/.installed $(SDK)/go/bin/captcha-client $(SDK)/java/classes/VerifyTicket.class

$(SDK)/node/node_modules/.installed: $(SDK)/node/package.json $(SDK)/node/package-lock.json
	cd $(SDK)/node && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(SDK)/go/bin/captcha-client: $(SDK)/go/main.go $(SDK)/go/go.mod $(SDK)/go/go.sum
	cd $(SDK)/go && go build -o bin/captcha-client .

$(SDK)/java/lib/.installed: $(SDK)/java/pom.xml
	rm -rf $(SDK)/java/lib
	cd $(SDK)/java && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib
	@touch $@

$(SDK)/java/classes/VerifyTicket.class: $(SDK)/java/VerifyTicket.java $(SDK)/java/lib/.installed
	javac -nowarn -cp '$(SDK)/java/lib/*' -d $(SDK)/java/classes $(SDK)/java/VerifyTicket.java

# The reference integrations not in Python (examples/<app>/): npm ci from the lock file, again only
# when the manifest or lock changed.
example-apps: examples/node_login/node_modules/.installed

examples/node_login/node_modules/.installed: examples/node_login/package.json examples/node_login/package-lock.json
	cd examples/node_login && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Debian packages the tests and the demo use (redis-server, chromium …); installed only if missing.
system-deps:
	@bash scripts/system-deps.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The property tests with new random draws each round (make test repeats the same draws).
FUZZ_ROUNDS ?= 5
fuzz: setup
	@for i in $$(seq 1 $(FUZZ_ROUNDS)); do echo "fuzz round $$i of $(FUZZ_ROUNDS)"; \
	  HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -p no:cacheprovider tests/test_fuzz_scenario.py \
	    tests/test_fuzz_http.py || exit 1; done

demo: setup
	$(PY) -m harness demo

# Peers for the benchmark: wrk (Debian), WireMock and Mountebank (npm, into bench/node_modules).
bench: setup
	@bash scripts/system-deps.sh wrk
	@test -d bench/node_modules/wiremock -a -d bench/node_modules/mountebank || \
	  npm install --prefix bench --no-audit --no-fund --loglevel=error
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .tools build *.egg-info $(SDK)/node/node_modules $(SDK)/go/bin $(SDK)/java/lib $(SDK)/java/classes examples/node_login/node_modules
