#!/usr/bin/env bash
# make demo: a simulated fleet and a real Prometheus, then the canary, a 25 % wave and the status.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-10}
NODES=${2:-5}
export ANSIBLE_CONFIG=$PWD/ansible.cfg
export PATH=$PWD/.venv/bin:$PATH
say() { printf '\n\033[1;36m==> %s\033[0m\n' "$*"; }

say "starting a simulated fleet of $HOSTS hosts x $NODES nodes and Prometheus (scripts/sim-up.sh)"
scripts/sim-up.sh "$HOSTS" "$NODES"

say "a fresh ledger for the demo (.state/ledger.sqlite3)"
rm -f .state/ledger.sqlite3 .state/ledger.sqlite3-wal .state/ledger.sqlite3-shm

say "waiting until the recording rules hold a full gate window (the gate refuses to judge without data)"
for _ in $(seq 60); do
  n=$(curl -fsS "http://127.0.0.1:19090/api/v1/query" --data-urlencode 'query=count_over_time(avg(instance:ant_partition_risk:ratio)[12s:2s])' \
      | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)')
  (( n >= 6 )) && break
  sleep 1
done

say "canary: one host to dual_stack, soaked and judged against the libp2p baseline (playbooks/canary.yml)"
ansible-playbook playbooks/canary.yml

say "wave: bring 25 % of the fleet to dual_stack_stable in gated batches (playbooks/rollout.yml -e wave=25)"
ansible-playbook playbooks/rollout.yml -e wave=25

say "status (ant-network-migration status --detailed)"
ant-network-migration status --detailed

say "done. The fleet keeps running: try 'make sim-down' to stop it, or playbooks/rollback.yml -e strategy=fast"
