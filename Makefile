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
        sim-up sim-down bench bench-parts build clean

help:
	@echo "make demo    set up, start a simulated fleet + Prometheus, run canary and a 25% wave, print status"
	@echo "make test    set up, then run the whole test suite (lint, unit, integration, scenarios, molecule)"
	@echo "make setup   set-up alone (idempotent)"
	@echo "make sim-up / sim-down   start / stop the simulated fleet and Prometheus ($(STATE)/)"
	@echo "             SIM_HOSTS=500 SIM_NODES=20 [SIM_SHARDS=4]: the fleet's shape (default 10 x 5, shards as needed)"
	@echo "             a new fleet starts clean; SIM_KEEP=1 keeps the last fleet's drop-ins and ledger"
	@echo "             SIM_SSH=1 make sim-up: every simulated host reached over SSH (needs root)"
	@echo "make lint    ruff, ansible-lint (production profile), ansible-test sanity"
	@echo "make bench   every step's cost at 1,000 / 5,000 / 10,000 nodes and the alert -> rollback chain (~2 h)"
	@echo "             BENCH_SIZES=50x20 BENCH_STEPS=rollback for a quick one; make bench-parts: the narrower ones"

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

# make bench: every step's cost at 1,000, 5,000 and 10,000 nodes (bench/scale.py, docs/benchmarks.md), then
# the alert -> Alertmanager -> EDA -> fast rollback chain at 1,000 nodes (bench/chain.py). About two hours on
# two cores; every figure is printed with the load it ran under, and written to $(STATE)/bench-scale.json.
# BENCH_SIZES=50x20 (one size) or BENCH_STEPS=rollback (one step) for a quicker run; BENCH_SHARDS=0: as needed.
BENCH_SIZES ?= 50x20,250x20,500x20
BENCH_SHARDS ?= 0
BENCH_REPEAT ?= 2
BENCH_STEPS ?= rollback,wave,gate,status,ledger
BENCH_CHAIN_RUNS ?= 3
# Every benchmark measures on fresh ledgers of its own: they may create them (docs/ledger.md, "A new ledger").
bench bench-parts: export ANT_MIGRATION_LEDGER_INIT = true
# Their waves run on throw-away simulated fleets: no preflight there, a recorded waiver instead.
bench bench-parts: export ANT_MIGRATION_PREFLIGHT_WAIVER = benchmark on a throw-away simulated fleet
bench: setup
	@mkdir -p $(STATE)
	@echo "==> every step's cost as the fleet grows: $(BENCH_SIZES) (bench/scale.py)"
	@$(BIN)/python bench/scale.py --sizes $(BENCH_SIZES) --shards $(BENCH_SHARDS) --repeat $(BENCH_REPEAT) \
	  --steps $(BENCH_STEPS) --json $(STATE)/bench-scale.json
	@echo "==> alert -> Alertmanager -> EDA rulebook -> fast rollback at 1,000 nodes (bench/chain.py)"
	@$(BIN)/python bench/chain.py --runs $(BENCH_CHAIN_RUNS)

# The earlier, narrower benchmarks (docs/benchmarks.md): simulator CPU, gate queries, rollback at 10-50 hosts,
# one wave batch, the dashboard.
bench-parts: setup
	@echo "==> simulator CPU per 1,000 node restarts (old full recompute vs incremental)"; $(BIN)/python bench/sim_restarts.py
	@echo "==> simulator load (1,000 nodes)"; $(BIN)/python bench/sim_load.py
	@echo "==> gate queries vs fleet size"; $(BIN)/python bench/gate_queries.py
	-@echo "==> fast rollback: collection vs the plain playbook"; $(BIN)/python bench/rollback.py --sizes 10x20,20x20,50x20
	@echo "==> one wave batch with its gate vs the plain playbook"; $(BIN)/python bench/wave.py
	@echo "==> dashboard: /status at 50 and 1,000 nodes, 50 WebSocket clients"; $(BIN)/python bench/dashboard.py

build: setup
	@$(BIN)/ansible-galaxy collection build --force --output-path .build

clean: sim-down
	rm -rf $(STATE) .build collections
