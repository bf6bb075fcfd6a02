# Haina — the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-partitioned test-fuzz test-fast bench lint lock migrate clean console-messages

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11+ is needed (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

run: install
	$(VENV)/bin/haina serve --demo

# worksteal: a worker that runs out of tests takes queued ones from the other, so one slow
# file does not leave a core idle at the end (docs/testing.md)
test: install
	$(PY) -m pytest -n 2 --dist worksteal -q --durations=30

# the PostgreSQL tests again on tenant tables hash-partitioned by tenant_id, but those whose
# outcome cannot depend on the tables' layout (marker partition_neutral; docs/scaling.md)
test-partitioned: install
	HAINA_PARTITION_BY_TENANT=1 $(PY) -m pytest -n 2 --dist worksteal -q \
	  -m "pg and not partition_neutral" --durations=15

# the full-strength fuzz run (every hostile value in every field on both backends, 8 examples
# per operation); not run by CI (docs/testing.md)
test-fuzz: install
	HAINA_FUZZ=full $(PY) -m pytest -n 2 -q tests/test_fuzz.py --durations=10

test-fast: install
	$(PY) -m pytest -q -x -k "not pg"

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/mypy

migrate: install
	$(VENV)/bin/haina migrate

# Re-pin dependencies after editing pyproject.toml (needs network to the package registry).
lock:
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

# the console's message catalog: extract the strings of its templates and code, merge them
# into the zh_CN catalog (translate the new entries in console.po), compile console.mo
console-messages: install
	cd src/haina && ../../$(VENV)/bin/pybabel extract -F console/babel.cfg -k N_ -k _t:2 \
	  --no-location --sort-output --project=haina-console -o console/locale/console.pot .
	$(VENV)/bin/pybabel update -i src/haina/console/locale/console.pot \
	  -d src/haina/console/locale -D console -l zh_CN --ignore-obsolete
	$(VENV)/bin/pybabel compile -d src/haina/console/locale -D console --statistics

clean:
	rm -rf $(VENV) var .pytest_cache
