#!/usr/bin/env bash
# Start the simulated fleet (HOSTS x NODES in SHARDS processes; 0 = as many as its size needs), a Prometheus
# server scraping it and an Alertmanager, in the background, with state, logs and ports under .state/
# (make sim-up; make sim-down stops them all). Running it again restarts them all.
# A new fleet starts clean: the hosts of the last fleet under the state directory (its units and the
# collection's drop-ins), the ledger beside it (.state/ledger.sqlite3) and Alertmanager's data are removed,
# and Prometheus keeps each fleet's series apart. SIM_KEEP=1 keeps the drop-ins, the ledger and
# Alertmanager's data (the new fleet then boots in the modes the drop-ins say, as rebooted hosts would).
# SIM_SSH=1: every simulated host is reached over SSH (an sshd of the fleet's own on 127.0.0.1,
# port SIM_SSH_PORT or a free one; one account antsim-<host> per host; become through sudo; the
# system Python). Needs root. The inventory written then connects that way.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-10}
NODES=${2:-5}
SHARDS=${3:-${SIM_SHARDS:-0}}
KEEP=${SIM_KEEP:-0}
STATE=${SIM_STATE_DIR:-.state}
PROM_PORT=${SIM_PROMETHEUS_PORT:-19090}
AM_PORT=${SIM_ALERTMANAGER_PORT:-19093}
API_PORT=${SIM_API_PORT:-18080}
BASE_PORT=${SIM_BASE_PORT:-14000}
READY_DELAY=${SIM_READY_DELAY:-3}
SSH=${SIM_SSH:-0}
SSH_PORT=${SIM_SSH_PORT:-0}
SIM=.venv/bin/ant-fleet-sim
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [[ ! -x $SIM ]]; then
  echo "ERROR: $SIM is missing; run 'make setup' first." >&2
  exit 1
fi

say "stopping any simulated fleet and Prometheus already running under $STATE/"
.venv/bin/python -m ant_fleet_sim.ssh down --state-dir "$STATE" >/dev/null
$SIM down --state-dir "$STATE"

FRESH=--fresh
if [[ $KEEP == 1 ]]; then
  FRESH=
  say "SIM_KEEP=1: keeping the last fleet's drop-ins, ledger and Alertmanager data under $STATE/"
fi
say "starting the simulated fleet: $HOSTS hosts x $NODES nodes, shards ${SHARDS/#0/auto} (metrics ports $BASE_PORT.., API $API_PORT)"
# The model's step: 1 s, 5 s past 1,000 nodes (Prometheus scrapes every 15 s there; a scrape brings the
# nodes it reads up to date by itself). SIM_TICK overrides.
TICK=${SIM_TICK:-$(( HOSTS * NODES > 1000 ? 5 : 1 ))}
$SIM up --hosts "$HOSTS" --nodes-per-host "$NODES" --shards "$SHARDS" --state-dir "$STATE" \
  --base-port "$BASE_PORT" --api-port "$API_PORT" --ready-delay "$READY_DELAY" --tick "$TICK" $FRESH

if [[ $SSH == 1 ]]; then
  say "reaching every host over SSH: sshd on 127.0.0.1, accounts antsim-<host>, become through sudo"
  .venv/bin/python -m ant_fleet_sim.ssh up --state-dir "$STATE" --port "$SSH_PORT"
fi

say "starting Alertmanager on 127.0.0.1:$AM_PORT (Prometheus sends its alerts there)"
$SIM alertmanager up --state-dir "$STATE" --port "$AM_PORT"

say "starting Prometheus on 127.0.0.1:$PROM_PORT (every node every 2 s up to 1,000 nodes, every 15 s above)"
$SIM prometheus up --state-dir "$STATE" --port "$PROM_PORT"

say "writing inventories/sim/hosts.yml (from $STATE/inventory/hosts.yml)"
cp "$STATE/inventory/hosts.yml" inventories/sim/hosts.yml

say "waiting until Prometheus scrapes every target successfully"
$SIM prometheus wait --state-dir "$STATE" --timeout $(( 90 + HOSTS * NODES / 100 ))

WINDOWS=()
if (( HOSTS * NODES > 1000 )); then
  WINDOWS=(-e @inventories/sim-large-fleet.yml)
  say "more than 1,000 nodes: Prometheus scrapes every 15 s, so the rules use minute windows (inventories/sim-large-fleet.yml; pass it to every playbook with -e @inventories/sim-large-fleet.yml)"
fi
say "installing the alert and recording rules into Prometheus and the routing into Alertmanager (playbooks/monitoring.yml)"
ANSIBLE_CONFIG=$PWD/ansible.cfg SIM_STATE_DIR=$STATE .venv/bin/ansible-playbook playbooks/monitoring.yml "${WINDOWS[@]}" \
  -e "migration_prometheus_url=http://127.0.0.1:$PROM_PORT" -e "monitoring_rules_dir=$(realpath -m "$STATE")/prometheus/rules" \
  -e "monitoring_alertmanager_url=http://127.0.0.1:$AM_PORT" \
  -e "monitoring_alertmanager_config_path=$(realpath -m "$STATE")/alertmanager/alertmanager.yml" \
  -e migration_ledger_init=true >/dev/null   # a new fleet, a new ledger: the first playbook creates it

say "simulated fleet ready: Prometheus http://127.0.0.1:$PROM_PORT, Alertmanager http://127.0.0.1:$AM_PORT, control API http://127.0.0.1:$API_PORT"
$SIM status --state-dir "$STATE"
