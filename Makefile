# The two commands of the README:  make tutorial  |  make test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.aliqa-installed

.PHONY: setup tutorial test test-fast lint smoke bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

tutorial: $(STAMP)  ## run every numbered notebook on the embedded dataset into outputs/
	$(PY) -m aliqa_lib tutorial --out outputs

smoke: $(STAMP)  ## the same, small and fast
	$(PY) -m aliqa_lib tutorial --smoke --out outputs/smoke

test: lint  ## every tier: unit, the notebooks in smoke mode (their records asserted), functional
	$(PY) -m pytest

test-fast: $(STAMP)  ## the unit tier only (under 2 minutes)
	$(PY) -m pytest tests/unit

lint: $(STAMP)  ## ruff over the library, tests, benchmarks and notebooks
	$(VENV)/bin/ruff check aliqa_lib tests benchmarks notebooks

bench: $(STAMP)  ## speed and memory benchmarks (printed, never asserted)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf outputs data/cache
