# Two commands matter: `make run` (quick start) and `make test` (the whole suite, both databases).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-sqlite test-postgresql lint format chromium bench fuzz clean \
	bench-writers bench-kill bench-apifuzz

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Mozilla's ical.js (Thunderbird's parser) checks the calendar feeds in the tests.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP)

# `make run MAIL=1` also starts a local SMTP sink (aiosmtpd on 127.0.0.1:$(MAIL_PORT)) that
# prints every e-mail the app sends (change notices, reminders, tasks, reset links).
MAIL ?=
MAIL_PORT ?= 8025
ifneq ($(MAIL),)
run: export SMTP_HOST := 127.0.0.1
run: export SMTP_PORT := $(MAIL_PORT)
run: export SMTP_FROM := IVIG Demo Clinic <ivig@demo.clinic>
endif

run: $(STAMP)
	$(BIN)/alembic upgrade head
	$(BIN)/flask --app wsgi demo load
	@echo "Web app: http://$(HOST):$(PORT)  (scheduler runs beside it; Ctrl-C stops both)"
	@if [ -n "$(MAIL)" ]; then echo "Mail sink: 127.0.0.1:$(MAIL_PORT), e-mails print here"; \
	  $(BIN)/python -m aiosmtpd -n -l 127.0.0.1:$(MAIL_PORT) -c aiosmtpd.handlers.Debugging stdout & \
	  fi; \
	  $(BIN)/python -m scheduler & sched=$$!; \
	  trap 'kill $$sched 2>/dev/null; wait $$sched 2>/dev/null; kill $$(jobs -p) 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT)

# Debian's chromium for the browser tests (Playwright drives it; nothing is downloaded at run time).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-sqlite: $(STAMP) chromium node_modules/.installed
	TEST_DB=sqlite $(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgresql: $(STAMP) chromium node_modules/.installed
	TEST_DB=postgresql $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint test-sqlite test-postgresql

# The therapy-integrity state machine at length (random sequences; `make test` runs a bounded,
# derandomised set). IVIG_FUZZ_EXAMPLES / IVIG_FUZZ_STEPS change the size; TEST_DB=postgresql.
fuzz: $(STAMP)
	IVIG_FUZZ=1 TEST_DB=$${TEST_DB:-sqlite} $(BIN)/python -m pytest -s -q tests/db/test_therapy_state_machine.py

# The feed benchmark races Radicale, so the bench extra goes into .venv first.
# One table of every benchmark's figures on the database BENCH_DB names (SQLite by default);
# `make bench QUICK=1` for a smoke run at smaller sizes.
QUICK ?=
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

# The production stack under load (PostgreSQL at BENCH_DB, default the local server).
bench-writers: $(STAMP)
	$(BIN)/python -m bench.writers

bench-kill: $(STAMP)
	$(BIN)/python -m bench.killnine

bench-apifuzz: $(STAMP)
	$(BIN)/python -m bench.apifuzz --examples 60

clean:
	rm -rf $(VENV) instance node_modules .pytest_cache .ruff_cache .hypothesis
