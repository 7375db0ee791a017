# Switchboard. `make run` serves with the offline voice stack; `make test` runs lint and tests.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install postgres nginx chromium run test lint unit simulate export bench bench-workers clean

# Rebuild the virtualenv when it is missing or a requirements file changed.
$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# The tests start a PostgreSQL server of their own; this installs it when missing.
postgres:
	scripts/ensure-postgres.sh

# The tests run the shipped nginx configuration in front of two replicas.
nginx:
	scripts/ensure-nginx.sh
# The console's tests drive Debian's Chromium headless; this installs it when missing.
chromium:
	scripts/ensure-chromium.sh

run: install
	$(PY) server.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	VENV=$(VENV) scripts/lint-deploy.sh

unit: install postgres nginx chromium
	$(PY) -m pytest

test: lint unit

simulate: install
	$(PY) simulate.py --url http://127.0.0.1:$${PORT:-8000} --say "Hello, is anybody there?" --out reply.wav

# Calls per core and reply latency, Switchboard against stock Pipecat as its example is
# written and tuned, and the offline voice (about 35 minutes; BENCH_QUICK=1 about 15).
# Writes bench/results/, and the README's table.
bench: install
	$(PY) -m bench.run

# Calls per machine: one worker on one core against WORKERS = one per core.
bench-workers: install
	$(PY) -m bench.run --workers

# Call records to a file: `make export FORMAT=json OUT=calls.json` (DATABASE_URL from .env).
FORMAT ?= csv
OUT ?= calls.$(FORMAT)
export: install
	$(PY) -m records.export --format $(FORMAT) --output $(OUT)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
