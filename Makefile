# The two commands of the README:  make tutorial  |  make test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.aliqa-installed
# The Label Studio server of the real-server tests (tests/functional/test_label_studio.py) lives in its own
# environment, so its pinned dependencies never disturb the project's; its SDK version matches pyproject's.
LS_VENV ?= .venv-labelstudio
LS_VERSION := 1.23.2
LS_STAMP := $(LS_VENV)/.aliqa-installed-$(LS_VERSION)

.PHONY: setup tutorial test test-fast lint smoke bench clean chromium labelstudio

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

tutorial: $(STAMP)  ## run every numbered notebook on the embedded dataset into outputs/
	$(PY) -m aliqa_lib tutorial --out outputs

smoke: $(STAMP)  ## the same, small and fast
	$(PY) -m aliqa_lib tutorial --smoke --out outputs/smoke

test: lint chromium $(LS_STAMP)  ## every tier: unit, the notebooks in smoke mode (their records asserted), functional, browser
	$(PY) -m pytest

# The browser tier drives the system Chromium (Debian's package) through playwright; nothing is downloaded
# by playwright itself. Installed here when missing and we are root; otherwise that tier is skipped.
chromium:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make test: installing Debian's chromium for the browser tier (tests/browser)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "make test: apt-get could not install chromium: the browser tier will be SKIPPED"; \
	  else \
	    echo "make test: no Chromium and not root (or no apt-get): the browser tier will be SKIPPED;" \
	         "install it with 'sudo apt-get install -y chromium' or set ALIQA_CHROMIUM=/path/to/chromium"; \
	  fi; }

labelstudio: $(LS_STAMP)  ## the Label Studio server's own environment (made by make test when missing)

$(LS_STAMP): $(STAMP)
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet label-studio==$(LS_VERSION)
	# migrate the empty database the test servers copy once here, not inside a test's bounded start-up wait
	$(PY) -c "from tests.label_studio_server import label_studio_bin, template; template(label_studio_bin(), timeout=1800)"
	touch $(LS_STAMP)

test-fast: $(STAMP)  ## the unit tier only
	$(PY) -m pytest tests/unit

lint: $(STAMP)  ## ruff over the library, tests, benchmarks and notebooks
	$(VENV)/bin/ruff check aliqa_lib tests benchmarks notebooks

bench: $(STAMP)  ## speed and memory benchmarks (printed, never asserted)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf outputs data/cache
