# The README's commands. `make test` is what CI runs (through .ci/run).
#
# The test session starts the real Kafka broker and PostgreSQL it needs (once, on first use) and
# stops them at the end; with KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL set it uses those instead.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Re-install when the dependencies change.
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: install kafka-jars test test-unit lint infra-up infra-down infra-status demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,dev]'
	@touch $@

## install: the Python environment in .venv/ (the CLI is .venv/bin/ddas)
install: $(INSTALLED)

## kafka-jars: fetch the broker's jars from Maven Central into .cache/ (else done on first use)
kafka-jars: install
	$(BIN)/ddas infra fetch

## test: the whole suite on a real broker and database, started and stopped by the session
test: install
	$(BIN)/pytest $(PYTEST_ARGS)

## test-unit: the tests that need no broker or database
test-unit: install
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

## lint: ruff (lint and format check)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## infra-up / infra-down / infra-status: the local Kafka and PostgreSQL for development
infra-up: install
	$(BIN)/ddas infra up

infra-down: install
	$(BIN)/ddas infra down

infra-status: install
	$(BIN)/ddas infra status

## demo: the pipeline end to end (installs, starts Kafka, PostgreSQL and the four services,
## submits, approves, publishes; Ctrl-C stops all it started). `make demo` again: a new delivery.
demo: kafka-jars
	$(BIN)/ddas demo $(DEMO_ARGS)

clean:
	-$(BIN)/ddas infra down
	rm -rf $(VENV) .cache .run .pytest_cache .ruff_cache .mypy_cache
