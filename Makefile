# The two commands people use: `make run` and `make test` (both install what they need into .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OFFLINE := HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
# Browser tests drive Debian's chromium through Playwright (Playwright's own browser download is not used).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint format bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install -r requirements-dev.txt
	touch $@

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-liberation

run: $(VENV)/.runtime
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python app.py

test: $(VENV)/.dev | $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(OFFLINE) RR_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q -m "not gpu"

lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench: $(VENV)/.dev
	$(OFFLINE) $(BIN)/python -m benchmarks.pipeline
	$(OFFLINE) $(BIN)/python -m benchmarks.rewriter
