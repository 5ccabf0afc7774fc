# Two commands for a newcomer: `make run` (the whole system) and `make test` (the suite).
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system run test lint bench migrate clean

setup: $(STAMP)

# The Debian packages (hll extension, Chromium and its driver, promtool, docker-compose) and
# the local PostgreSQL and RabbitMQ running: what `make run` and `make test` need of the machine.
system:
	scripts/install-system-packages.sh
	scripts/ensure-services.sh

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# The API, WORKERS workers and the cleaner against the local PostgreSQL and RabbitMQ (config.env).
run: setup system
	$(PYTHON) scripts/run_local.py

test: setup system
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# Lint rules only (pyproject.toml [tool.ruff.lint]); no `ruff format --check`: formatting the
# whole tree would rewrite most lines while several branches are open on it.
lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PYTHON) -m bench $(BENCH_ARGS)

migrate: setup
	$(PYTHON) -c "from common.config import Settings; from common import db; s = Settings.from_env(); db.ensure_database(s.database_url); db.migrate(s.database_url)"

clean:
	rm -rf $(VENV) .pytest_cache
