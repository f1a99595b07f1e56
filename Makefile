# chatvakt: `make run` brings the whole system up; `make test` passes the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test unit lint test-postgres test-faults bench bench-compare eval setup broker clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP)

broker:
	@WITH_MANAGEMENT=$(WITH_MANAGEMENT) deploy/local/ensure-rabbitmq.sh

run: setup
	@$(MAKE) -s broker WITH_MANAGEMENT=0
	$(BIN)/chatvakt run

# The architecture's import rules, ruff (lint and format, the whole tree) and
# mypy on the kernel and every domain.py (all configured in pyproject.toml).
lint: setup
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy chatvakt services/*/domain.py

# The broker-free tests: the kernel's, every service's and the gateway's own (under a minute).
unit: setup
	$(BIN)/pytest -q chatvakt services gateway/tests $(PYTEST_ARGS)

test: setup lint
	@$(MAKE) -s broker WITH_MANAGEMENT=1
	@deploy/local/ensure-postgres.sh
	@deploy/local/ensure-chromium.sh
	@deploy/local/ensure-poppler.sh
	@deploy/local/ensure-axe.sh
	@deploy/local/ensure-nginx.sh
	@# The slowest tests are printed: the suite is kept to about 15 minutes on 2 cores.
	$(BIN)/pytest --durations=15 $(PYTEST_ARGS)

# The whole suite again with every stack's services on the real PostgreSQL.
test-postgres:
	CHATVAKT_DB_URL='postgresql://postgres@127.0.0.1:5432/chatvakt_{service}' $(MAKE) test

test-faults: setup
	@$(MAKE) -s broker WITH_MANAGEMENT=1
	$(BIN)/pytest -m faults $(PYTEST_ARGS)

eval: setup
	$(BIN)/python -m services.escalation.evaluate

bench: setup
	@$(MAKE) -s broker WITH_MANAGEMENT=1
	$(BIN)/python -m bench

# The CPU per relayed message against another revision, in turns: make bench-compare REV=81fe312
bench-compare: setup
	@$(MAKE) -s broker WITH_MANAGEMENT=1
	$(BIN)/python -m bench.compare $(REV)

clean:
	rm -rf var results
