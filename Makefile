# The two commands: `make run` (serve the inbox on http://127.0.0.1:5000) and `make test`.
# Both create .venv and install the pinned requirements on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test drills lint format bench clean translations chromium

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

CATALOGS := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

install: $(STAMP) $(CATALOGS)

# Extract UI strings and merge them into every catalogue (then translate and commit the .po).
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations

run: install
	$(BIN)/flask --app wsgi bootstrap
	$(BIN)/flask --app wsgi run --host 127.0.0.1 --port 5000 --with-threads

# The browser tests drive Debian's chromium (never a downloaded browser). Missing: installed
# with apt-get when running as root (a fresh machine, CI), else stop with the command to run.
# SKIP_BROWSER_TESTS=1 skips the browser tests explicitly.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ "$$SKIP_BROWSER_TESTS" = "1" ] || [ -x "$(CHROMIUM)" ]; then exit 0; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "Browser tests need Chromium: run 'sudo apt-get install chromium', or SKIP_BROWSER_TESTS=1 make test"; exit 1; \
	fi

# The fault drills (issue 6) at full strength: under gunicorn the database outage, the pool
# exhausted, 50 concurrent duplicates, concurrent sends and a Graph outage; Redis going away;
# Graph failures and retries; the authorisation sweep; schemathesis with 1000 examples per
# operation; 10,002 fuzzed webhook bodies (1667 for each of test_fuzz.py's 6 properties).
# `make test` runs the whole suite with the drills at this strength (8-12 minutes on 2
# cores); plain `pytest` runs them lighter (FUZZ_EXAMPLES=200, SCHEMATHESIS_EXAMPLES=200).
DRILLS := tests/test_live.py tests/test_ratelimits.py tests/test_cache.py tests/test_sending.py \
	tests/test_drills.py tests/test_authorization.py tests/test_schemathesis.py tests/test_fuzz.py
DRILL_STRENGTH := FUZZ_EXAMPLES=1667 SCHEMATHESIS_EXAMPLES=1000

test: install chromium
	$(BIN)/ruff check .
	$(DRILL_STRENGTH) $(BIN)/python -m pytest

drills: install
	$(DRILL_STRENGTH) $(BIN)/python -m pytest $(DRILLS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark (bench/run_all.py: list, ingest, scale curve), rewriting bench/RESULTS.md;
# 15-20 minutes on 2 cores. The ingest benchmark needs wrk: installed with apt-get when running
# as root, else it stops with the command to run. One alone: .venv/bin/python bench/<name>_benchmark.py
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
