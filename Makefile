# Correio: `make run` starts everything on the embedded defaults; `make test` runs the suite.
# Both work on a fresh clone: they create .venv/ and var/ as needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock | cut -c1-12)
PG_URL ?= postgres://root@127.0.0.1:5432/test
REDIS_CI_URL ?= redis://127.0.0.1:6379/0
PYTEST_ARGS ?=

.PHONY: run setup test test-embedded test-postgres-redis test-deps bench fuzz lint lock clean

$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)
	mkdir -p var
	npm ci --no-audit --no-fund --silent || npm install --no-audit --no-fund --silent
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py setupdemo

run: setup
	@echo "Starting Correio (Ctrl-C stops everything). Web and admin: http://127.0.0.1:8000/"
	$(BIN)/honcho -f Procfile start

test-deps:
	bash tests/install-deps.sh

test: $(STAMP) test-deps
	test -d node_modules/htmx.org -a -d node_modules/quill || npm ci --no-audit --no-fund --silent
	$(MAKE) test-embedded
	@if [ "$$CI" = "true" ]; then $(MAKE) test-postgres-redis; fi

test-embedded: $(STAMP)
	mkdir -p var
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL $(BIN)/python -m pytest $(PYTEST_ARGS)

# CI provides PostgreSQL and Redis; here neither may be skipped, so fail early if one is down.
test-postgres-redis: $(STAMP)
	$(BIN)/python tests/check_services.py "$(PG_URL)" "$(REDIS_CI_URL)"
	DATABASE_URL="$(PG_URL)" REDIS_URL="$(REDIS_CI_URL)" CORREIO_REQUIRE_SERVICES=1 \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/store.py
	$(BIN)/python bench/relay.py
	$(BIN)/python bench/pop3.py
	$(BIN)/python bench/smtp_in.py
	$(BIN)/python bench/imap.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/sieve.py
	$(BIN)/python bench/login.py
	$(BIN)/python bench/importmail.py

# The fuzz tests run in `make test` derandomized with a small budget; here with a large one and
# a fresh seed each run (CORREIO_FUZZ_EXAMPLES examples per test).
FUZZ_EXAMPLES ?= 5000
fuzz: $(STAMP)
	mkdir -p var
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL CORREIO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(BIN)/python -m pytest tests/fuzz -p no:cacheprovider --timeout=3600 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# Re-pin dependencies after editing pyproject.toml (needs `pip install uv`).
lock:
	uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11

clean:
	rm -rf $(VENV) var
