# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint install install-test catalog tiny-models pictures benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Serving, training (torch pinned ==2.13.0, the CPU build) and an embedded Redis fallback.
install: $(BIN)/python
	$(BIN)/pip install -e '.[train,embedded-redis]'

install-test: $(BIN)/python
	$(BIN)/pip install -e '.[train,embedded-redis,test]'
	@# The browser tests drive Debian's chromium (Playwright's own browser download is not used); the
	@# deployment test runs Debian's nginx in front of two API processes.
	@command -v chromium >/dev/null && command -v nginx >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
		&& apt-get install -y -qq chromium nginx >/dev/null; } \
		|| echo "chromium or nginx is missing and could not be installed: the browser and deployment tests will fail"

# `make run`: installs once (again when pyproject.toml changes), then Redis, a worker and the API; its last lines
# say where it is, the API key and three commands to try. `make run PORT=8001` for another port.
PORT ?= 8000
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing into $(VENV) (torch CPU and the rest; the first time takes a minute or two) ..."
	$(BIN)/pip install -q -e '.[train,embedded-redis]'
	@touch $@

run: $(VENV)/.installed
	@$(BIN)/ganserve up --port $(PORT)

test: install-test
	$(BIN)/python -m pytest -q

# The inner loop: the unit and api tiers (tests/conftest.py), less any test also marked system (a store test's
# SQLite case is unit, but a module of subprocesses marks it system). It installs nothing and needs no Redis,
# worker, browser or torch training: run `make install-test` once first.
test-fast:
	$(BIN)/python -m pytest -q -m "(unit or api) and not system"

lint:
	$(BIN)/ruff check .
	$(BIN)/mypy

# The tiny models the unit and api tiers serve (tests/assets/models), made again by the real exporter.
tiny-models:
	$(BIN)/python -m tests.make_tiny_models

catalog:
	$(BIN)/ganserve catalog

clean:
	rm -rf $(VENV) var .pytest_cache
