# Kho số hóa. `make run` serves the warehouse; `make test` checks it. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export WAREHOUSE_DATA_DIR ?= $(CURDIR)/.data

.PHONY: run test lint typecheck pytest bench load install services clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

services: install
	$(BIN)/warehouse services up

run: install
	$(BIN)/warehouse up

# The tests use their own database and bucket, on the same services.
TEST_ENV := WAREHOUSE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/warehouse_test \
	WAREHOUSE_REDIS_URL=redis://127.0.0.1:6379/15 \
	WAREHOUSE_S3_BUCKET=warehouse-test

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: services
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: services
	$(BIN)/python -m loadtests.bench_upload
	$(BIN)/python -m loadtests.bench_fairness

load: install
	$(BIN)/python -m loadtests.run $(if $(SHAPE),--shape $(SHAPE)) $(if $(DURATION),--duration $(DURATION)) $(if $(HOST),--host $(HOST))

clean:
	-$(BIN)/warehouse services down
	rm -rf $(VENV) .data .mypy_cache .pytest_cache .ruff_cache
