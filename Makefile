# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast install install-test catalog pictures benchmark clean

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

run: install
	$(BIN)/ganserve up

test: install-test
	$(BIN)/python -m pytest -q

# Everything but the slow system tests (worker processes, faults, browser, real training): the inner loop.
test-fast: install-test
	$(BIN)/python -m pytest -q -m "not slow"

catalog:
	$(BIN)/ganserve catalog

clean:
	rm -rf $(VENV) var .pytest_cache
