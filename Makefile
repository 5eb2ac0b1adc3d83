# Two commands a newcomer needs: `make run` and `make test`.
# Everything else (the venv, the packages, the system servers the tests
# start on private sockets) is installed from here on a fresh machine.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench demo install sysdeps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) run.py

demo: $(STAMP)
	$(PY) run.py demo

sysdeps:
	bash scripts/ensure-system-deps

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

test: $(STAMP) sysdeps lint
	$(PY) -m pytest -n 2 --dist loadgroup

bench: $(STAMP)
	bash scripts/ensure-system-deps bench
	$(PY) -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
