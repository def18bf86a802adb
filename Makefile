# The two commands that matter: `make demo` and `make test`. Each one works on a fresh machine
# with nothing but this repository and Python 3.11+: it creates .venv, installs, and runs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test lint typecheck bench clean

# Where a C compiler and OpenSSL's headers are present, the install must have built the C loops
# (auditlog._speedups) and the tests check them; elsewhere the pure-Python loops are tested.
REQUIRE_NATIVE := $(shell command -v cc >/dev/null 2>&1 && test -f /usr/include/openssl/evp.h && echo 1)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed-base: pyproject.toml setup.py auditlog/_speedups.c | $(PY)
	$(PIP) install --quiet -e '.[testing]'
	touch $@

$(VENV)/.installed-test: pyproject.toml setup.py auditlog/_speedups.c | $(PY)
	$(PIP) install --quiet -e '.[test,bench]'
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	rm -rf demo-log
	$(VENV)/bin/auditlog demo demo-log --records 100000

lint: $(VENV)/.installed-test
	$(PY) -m ruff check auditlog tests benchmarks
	$(PY) -m ruff format --check auditlog tests benchmarks

typecheck: $(VENV)/.installed-test
	$(PY) -m mypy auditlog tests benchmarks

test: $(VENV)/.installed-test
	$(PY) -m ruff check auditlog tests benchmarks
	$(PY) -m mypy auditlog tests benchmarks
	$(VENV)/bin/lint-imports
	AUDITLOG_REQUIRE_NATIVE=$(REQUIRE_NATIVE) $(PY) -m pytest

bench: $(VENV)/.installed-test
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) demo-log .pytest_cache .mypy_cache .ruff_cache .hypothesis
