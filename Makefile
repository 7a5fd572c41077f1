# Two commands a newcomer needs: `make demo` (install, then run the demo workflow end to end)
# and `make test` (install, start the services the tests use, lint, run the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install demo test lint dev bench services

# Hash-checked: every package (pip included) is pinned in deploy/*.lock with the sha256 of its
# files, so pip refuses any other version or file (deploy/lock.py writes the locks).
# The project is built with --no-build-isolation from the hashed setuptools and wheel of
# requirements-pip.lock: no unhashed build backend is fetched.
$(VENV)/.installed: pyproject.toml deploy/requirements.lock deploy/requirements-dev.lock deploy/requirements-pip.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r deploy/requirements-pip.lock
	$(PY) -m pip install --quiet --require-hashes -r deploy/requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\n' > $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/maestro run workflows/demo.yaml

services:
	bash .ci/services

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: install services lint
	$(PY) -m pytest

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w workspace.yaml

bench: install
	$(PY) bench/compile.py
	$(PY) bench/overhead.py
	$(PY) bench/parallel.py
	$(PY) bench/import_time.py
	$(PY) bench/artifacts.py
	$(PY) bench/llm.py
	$(PY) bench/policy.py
	$(PY) bench/scrape.py
	$(PY) bench/metrics.py
	$(PY) bench/tracing.py
	$(PY) bench/run_queue.py
	$(PY) bench/load.py
	$(PY) bench/saga.py
