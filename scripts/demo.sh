#!/usr/bin/env bash
# make demo: a simulated fleet and a real Prometheus, then the canary, a 25 % wave and the status.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-10}
NODES=${2:-5}
export ANSIBLE_CONFIG=$PWD/ansible.cfg
export PATH=$PWD/.venv/bin:$PATH
say() { printf '\n\033[1;36m==> %s\033[0m\n' "$*"; }

say "starting a simulated fleet of $HOSTS hosts x $NODES nodes and Prometheus (scripts/sim-up.sh: a clean fleet, a fresh ledger)"
scripts/sim-up.sh "$HOSTS" "$NODES"

DASHBOARD_PORT=${DASHBOARD_PORT:-8090}
say "starting the live dashboard (ant-network-migration dashboard): open http://127.0.0.1:$DASHBOARD_PORT/ to watch the canary and the wave"
if [[ -f .state/dashboard.pid ]]; then kill "$(cat .state/dashboard.pid)" 2>/dev/null || true; fi
nohup ant-network-migration --prometheus-url http://127.0.0.1:19090 dashboard --listen "127.0.0.1:$DASHBOARD_PORT" \
  > .state/dashboard.log 2>&1 &
echo $! > .state/dashboard.pid
ansible-playbook playbooks/monitoring.yml -e migration_prometheus_url=http://127.0.0.1:19090 \
  -e "monitoring_rules_dir=$(realpath -m .state)/prometheus/rules" -e "monitoring_file_sd_dir=$(realpath -m .state)/prometheus/file_sd" \
  -e "{\"monitoring_dashboard_targets\": [\"127.0.0.1:$DASHBOARD_PORT\"]}" >/dev/null

say "waiting until the recording rules hold a full gate window (the gate refuses to judge without data)"
for _ in $(seq 60); do
  n=$(curl -fsS "http://127.0.0.1:19090/api/v1/query" --data-urlencode 'query=count_over_time(avg(instance:ant_partition_risk:ratio)[12s:2s])' \
      | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)')
  (( n >= 6 )) && break
  sleep 1
done

say "rehearsal: the fast rollback of a simulated copy of this fleet's shape under load (scraped, read by clients), timed against the 5-minute SLA (ant-network-migration rehearse --under-load)"
# A fresh fleet has no measured switch yet (the rehearsal would take the planner's conservative 60 s): the demo
# passes its simulated nodes' readiness delay, as an operator passes what they measured on their own nodes.
ant-network-migration rehearse --under-load --operator demo --ready-delay "${SIM_READY_DELAY:-3}"

say "preflight: the production checklist against this fleet (playbooks/preflight.yml); production waves refuse without one"
# The simulated page receiver is the event-driven rollback's webhook, which the demo does not start, and notify has
# no integration, and the demo's controller does not announce (no announcement channel): the demo waives those items
# with their reasons, as an operator would (docs/preflight.md).
ansible-playbook playbooks/preflight.yml -e "preflight_alertmanager_url=http://127.0.0.1:${SIM_ALERTMANAGER_PORT:-19093}" \
  -e '{"operator": "demo", "preflight_baseline_window": "5m", "preflight_waivers": {"alert_recipients": "demo fleet: nothing listens on the page webhook (the EDA source is not started) and notify has no integration", "communication": "demo fleet: no announcement channel (announce is off in ansible.cfg)"}}'

say "canary: one host to dual_stack, soaked and judged against the libp2p baseline (playbooks/canary.yml)"
ansible-playbook playbooks/canary.yml

say "wave: bring 25 % of the fleet to dual_stack_stable in gated batches (playbooks/rollout.yml -e wave=25)"
ansible-playbook playbooks/rollout.yml -e wave=25

say "status (ant-network-migration status --detailed)"
ant-network-migration status --detailed

say "done. Dashboard: http://127.0.0.1:$DASHBOARD_PORT/ . The fleet and the dashboard keep running: 'make sim-down' stops them; or try playbooks/rollback.yml -e strategy=fast"
