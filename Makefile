# Two commands: `make demo` and `make test`. Everything else is a building block.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STATE := .state
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

DEMO_HOSTS ?= 10
DEMO_NODES ?= 5
# make sim-up SIM_HOSTS=500 SIM_NODES=20 [SIM_SHARDS=4]: the fleet's shape (0 shards: as its size needs).
SIM_HOSTS ?= $(DEMO_HOSTS)
SIM_NODES ?= $(DEMO_NODES)
SIM_SHARDS ?= 0

.PHONY: help setup demo test test-unit test-integration test-scenarios molecule lint sanity \
        sim-up sim-down bench build clean

help:
	@echo "make demo    set up, start a simulated fleet + Prometheus, run canary and a 25% wave, print status"
	@echo "make test    set up, then run the whole test suite (lint, unit, integration, scenarios, molecule)"
	@echo "make setup   set-up alone (idempotent)"
	@echo "make sim-up / sim-down   start / stop the simulated fleet and Prometheus ($(STATE)/)"
	@echo "             SIM_HOSTS=500 SIM_NODES=20 [SIM_SHARDS=4]: the fleet's shape (default 10 x 5, shards as needed)"
	@echo "             a new fleet starts clean; SIM_KEEP=1 keeps the last fleet's drop-ins and ledger"
	@echo "             SIM_SSH=1 make sim-up: every simulated host reached over SSH (needs root)"
	@echo "make lint    ruff, ansible-lint (production profile), ansible-test sanity"
	@echo "make bench   benchmarks"

setup:
	@scripts/setup.sh

sim-up: setup
	@scripts/sim-up.sh $(SIM_HOSTS) $(SIM_NODES) $(SIM_SHARDS)

sim-down:
	@if [[ -x $(BIN)/ant-fleet-sim ]]; then $(BIN)/python -m ant_fleet_sim.ssh down --state-dir $(STATE); \
	  $(BIN)/ant-fleet-sim down --state-dir $(STATE); fi
	@if [[ -f $(STATE)/dashboard.pid ]]; then kill "$$(cat $(STATE)/dashboard.pid)" 2>/dev/null || true; rm -f $(STATE)/dashboard.pid; fi

demo: setup
	@scripts/demo.sh $(DEMO_HOSTS) $(DEMO_NODES)

# Lint beside molecule, then pytest on TEST_WORKERS xdist workers (a file per worker); TEST_WORKERS=0: one by one.
test: setup
	@scripts/setup.sh --test
	@scripts/test.sh

molecule: setup
	@echo "==> molecule (driver default, local connection, simulated fleet)"
	@cd extensions && for s in molecule/*/; do $(CURDIR)/$(BIN)/molecule test -s "$$(basename $$s)" || exit 1; done

test-unit: setup
	@$(BIN)/pytest tests/unit

lint: setup
	@echo "==> ruff"; $(BIN)/ruff check .
	@echo "==> ansible-lint (production profile)"; $(BIN)/ansible-lint
	@echo "==> ansible-test sanity"; scripts/sanity.sh

sanity: setup
	@scripts/sanity.sh

# BENCH_SIZES: fleets of the rollback benchmark (HOSTSxNODES,...); `make bench BENCH_SIZES=10x20` is quick.
BENCH_SIZES ?= 10x20,20x20,50x20
bench: setup
	@echo "==> simulator CPU per 1,000 node restarts (old full recompute vs incremental)"; $(BIN)/python bench/sim_restarts.py
	@echo "==> simulator load (1,000 nodes)"; $(BIN)/python bench/sim_load.py
	@echo "==> gate queries vs fleet size"; $(BIN)/python bench/gate_queries.py
	-@echo "==> fast rollback: collection vs one-liner (with and without readiness wait)"; $(BIN)/python bench/rollback.py --sizes $(BENCH_SIZES)
	@echo "==> one wave batch with its gate vs the one-liner"; $(BIN)/python bench/wave.py
	@echo "==> dashboard: /status at 50 and 1,000 nodes, 50 WebSocket clients"; $(BIN)/python bench/dashboard.py

build: setup
	@$(BIN)/ansible-galaxy collection build --force --output-path .build

clean: sim-down
	rm -rf $(STATE) .build collections
