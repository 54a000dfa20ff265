# Compte territorial: `make run` serves the portal with its sandbox, `make test` runs
# every test. Both work on a fresh machine with only Python 3.11+.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
MO_FILES := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))
export PATH := $(BIN):$(PATH)

.PHONY: run test test-fast lint format install install-test translations messages migrate browser clean

run: install translations migrate  ## portal on :5000 and sandbox on :5001
	$(BIN)/python -m sandbox.demo_agents
	@echo "Portal:  http://127.0.0.1:5000   (sign in through the sandbox on :5001)"
	@echo "Agents:  http://127.0.0.1:5000/agents/connexion   (Claire or Karim, demo desks)"
	@echo "Sent:    http://127.0.0.1:5001/sandbox/mail and /sandbox/sms   (what the portal sends)"
	$(BIN)/honcho start -f Procfile.dev

# With TEST_DATABASE_URL set, three runs go on side by side (most of a run is spent
# waiting on loopback servers and the browser, so they share the cores well): the browser
# tests, which check what a person sees, once, on SQLite; every other test on SQLite; and
# on PostgreSQL, every test that can reach the portal's database (unit, integration). The
# sandbox's and the connectors' contract tests never open it: running them twice would
# only cost time.
# The two background reports are printed after the browser one; any failing fails the target.
test: install-test translations browser lint  ## the whole suite; PostgreSQL too when TEST_DATABASE_URL is set
	@if [ -z "$$TEST_DATABASE_URL" ]; then exec $(BIN)/pytest; fi; \
	mkdir -p test-results; \
	echo "--- browser tests (SQLite), with SQLite and PostgreSQL ($$TEST_DATABASE_URL) running beside them"; \
	( $(BIN)/pytest -p no:cacheprovider -m 'not browser' tests/unit tests/integration \
	  >test-results/postgresql.log 2>&1; \
	  echo $$? >test-results/postgresql.rc ) & \
	( env -u TEST_DATABASE_URL $(BIN)/pytest -p no:cacheprovider -m 'not browser' \
	  >test-results/sqlite.log 2>&1; echo $$? >test-results/sqlite.rc ) & \
	env -u TEST_DATABASE_URL $(BIN)/pytest -m browser; browser=$$?; wait; \
	echo "--- SQLite"; cat test-results/sqlite.log; \
	echo "--- PostgreSQL ($$TEST_DATABASE_URL)"; cat test-results/postgresql.log; \
	sqlite=$$(cat test-results/sqlite.rc); postgresql=$$(cat test-results/postgresql.rc); \
	echo "--- browser: exit $$browser, SQLite: exit $$sqlite, PostgreSQL: exit $$postgresql"; \
	[ "$$browser" = 0 ] && [ "$$sqlite" = 0 ] && [ "$$postgresql" = 0 ]

# The inner loop: everything but the browser tests, on SQLite only, without lint.
test-fast: install-test translations  ## the suite without the browser tests, on SQLite
	env -u TEST_DATABASE_URL $(BIN)/pytest -m 'not browser'

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy connectors portal

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# `make run` installs only what running needs; the test toolchain comes with `make test`.
install: $(RUN_STAMP)

install-test: $(TEST_STAMP)

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[run]'
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[run,test,dev]'
	touch $(TEST_STAMP)

translations: install $(MO_FILES)

%.mo: %.po
	$(BIN)/pybabel compile -i $< -o $@

messages: install  ## after changing text: extract, then update both catalogues
	$(BIN)/pybabel extract -F babel.cfg --ignore-dirs ".* __pycache__" -k _l -k lazy_gettext -k _ \
		-o translations/messages.pot --project "Compte territorial" --no-wrap --sort-by-file portal templates
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-wrap

migrate: install
	$(BIN)/flask --app portal db upgrade

# Debian's chromium for the browser tests (browser downloads are not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; \
	}

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache test-results
	find translations -name '*.mo' -delete
