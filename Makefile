# Roomcast: `make run` starts a hub, `make test` runs every check.  Both create .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-under-load lint typecheck bench soak clean

install: $(STAMP)

# Re-installed whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" PYTHONUNBUFFERED=1 $(BIN)/honcho start

# The cluster demo: 3 NATS JetStream nodes and 3 hubs (Procfile.cluster), data afresh in
# .cluster/; Ctrl-C stops all of it.
.PHONY: cluster
cluster: $(STAMP)
	rm -rf .cluster && mkdir -p .cluster
	PATH="$(CURDIR)/$(BIN):$$PATH" PYTHONUNBUFFERED=1 $(BIN)/honcho -f Procfile.cluster start

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow the editable install's import hook: it checks the folders through links
# that give them their installed names (roomcast.hub, roomcast.client, roomcast.shared).
typecheck: $(STAMP)
	mkdir -p $(VENV)/typecheck/roomcast
	for d in hub client shared; do ln -sfn ../../../$$d $(VENV)/typecheck/roomcast/$$d; done
	$(BIN)/mypy

test: lint typecheck
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q -n 2

# The suite while a busy loop holds one core, as on a shared CI machine (tests/tools/busy.py):
# the loop stops when the suite ends, pass or fail.  `make test` stays the CI command.
test-under-load: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m tests.tools.busy -- $(BIN)/pytest -q -n 2

# The C load generator (bench/README.md), built with the machine's cc.
CC ?= cc
bench/build/loadgen: bench/loadgen.c
	mkdir -p bench/build
	$(CC) -O2 -Wall -Wextra -o $@ $<

# matplotlib (the chart) is a bench-only extra, installed on first `make bench`.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) bench/build/loadgen
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.run
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.client_cpu

soak: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m tests.tools.soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/build .cluster
