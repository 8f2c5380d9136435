# Every developer command goes through `uv run`. uv itself is bootstrapped with pip when missing,
# so a fresh machine with only Python 3.11 works.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: help bootstrap sync browsers dev devserver new-service compose-env test test-e2e-external test-e2e-binary test-e2e-docker lint fmt migrate

help: ## list targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

bootstrap: ## install uv with pip when it is missing
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

sync: bootstrap ## install the locked workspace into .venv
	@$(UV) sync --locked --all-packages

dev: sync ## run the platform on the embedded default engine (Ctrl-C stops all)
	$(UV) run nerve dev

new-service: sync ## scaffold a service: make new-service NAME=loyalty-worker [EVENT=ticket/resolved]
	$(UV) run nerve new-service $(NAME) --event $(or $(EVENT),support/draft.created)

compose-env: sync ## write .env with fresh random secrets for `docker compose up` (FORCE=1 overwrites)
	$(UV) run nerve compose-env $(if $(FORCE),--force)

devserver: sync ## run only the embedded Inngest-compatible dev server on :8288
	$(UV) run devserver

# The browser tests drive Debian's Chromium; they skip with a reason where it is missing. On CI
# (CI=true, root, apt-get) it is installed here so `.ci/run` stays a plain `make test`.
browsers: ## install Chromium for the browser tests on CI when it is missing
	@if ! command -v chromium >/dev/null 2>&1 && [ "$${CI:-}" = "true" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/tmp/nerve-chromium.log 2>&1 \
	    || echo "chromium install failed; the browser tests will skip (see /tmp/nerve-chromium.log)"; \
	fi

# TEST_DATABASE_URL: when unset and a Postgres answers on 127.0.0.1:5432, the suites also run on it.
# TEST_WORKERS: pytest-xdist workers, each test file's tests on one of them (its module fixtures
# are built once); much of the suite waits on engines and subprocesses, so two workers pay off
# even on two cores. TEST_WORKERS=0 runs everything in one process.
# PYTHONDONTWRITEBYTECODE is dropped for the run: the tests start many Python processes
# (services, engines, the CLI, pytest itself), and without cached bytecode each recompiles
# every module it imports.
TEST_WORKERS ?= 2
test: sync browsers lint ## lint, then every test suite (SQLite, plus Postgres when reachable)
	@export TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$($(UV) run python scripts/detect_postgres.py)}"; \
	echo "TEST_DATABASE_URL=$${TEST_DATABASE_URL:-<unset: SQLite only>}"; \
	unset PYTHONDONTWRITEBYTECODE; \
	$(UV) run pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-e2e-external: sync ## the e2e scenarios against the engine at INNGEST_BASE_URL (services in dev mode)
	NERVE_E2E_ENGINE=external $(UV) run pytest -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

# The compose stack without Docker: an `inngest` executable (INNGEST_BIN or PATH) in `start` mode
# with docker-compose.yml's own flags, the local Postgres (TEST_DATABASE_URL, default
# postgres@127.0.0.1:5432) and Redis (NERVE_E2E_REDIS_URL, default 127.0.0.1:6379), the services
# in production mode with the compose environment. Skips with the reason when a part is missing.
test-e2e-binary: sync ## the e2e scenarios on `inngest start` (INNGEST_BIN / PATH) + local Postgres + Redis, no Docker
	NERVE_E2E_ENGINE=binary $(UV) run pytest -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

test-e2e-docker: sync ## the e2e scenarios on inngest/inngest + Postgres + Redis (testcontainers; needs Docker)
	NERVE_E2E_ENGINE=docker $(UV) run pytest -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

lint: sync ## ruff (complexity <= 15, module docstrings) + mypy strict on every package and test helpers
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run python scripts/mypy_test_helpers.py

fmt: sync ## format and autofix
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

migrate: sync ## alembic upgrade head on DATABASE_URL (default: the SQLite file under .nerve/)
	$(UV) run python -m nerve_migrations upgrade
