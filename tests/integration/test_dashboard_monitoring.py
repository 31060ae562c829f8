"""The monitoring role and the dashboard: the Grafana dashboard (generated from the alert rules) and
its provider installed into a provisioning directory, and the dashboard service's /metrics scraped
by the simulated fleet's Prometheus through the file_sd target list the role writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import grafana_dashboard
from ant_fleet_sim.testing import SimStack
from ant_network_migration_dashboard import testing

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / 'ansible-playbook')


def play(stack, tmp_path, *extra):
    args = [ANSIBLE_PLAYBOOK, str(ROOT / 'playbooks' / 'monitoring.yml'), '-i', 'localhost,', '-c', 'local',
            '-e', f'migration_prometheus_url={stack.prometheus_url}',
            '-e', f'monitoring_rules_dir={stack.state_dir / "prometheus" / "rules"}',
            '-e', f'ansible_python_interpreter={sys.executable}']
    for item in extra:
        args += ['-e', item]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={'ANSIBLE_CONFIG': str(ROOT / 'ansible.cfg'), 'PATH': str(Path(sys.executable).parent) +
                               ':/usr/bin:/bin', 'ANT_MIGRATION_LEDGER': str(tmp_path / 'role-ledger.sqlite3')})
    return proc


@pytest.mark.integration
def test_grafana_dashboard_and_scrape_job(tmp_path):
    ledger = tmp_path / 'ledger.sqlite3'
    testing.fill_ledger(ledger, hosts=3, nodes_per_host=2, migrated_hosts=1)
    grafana = tmp_path / 'grafana' / 'provisioning'
    dashboards = tmp_path / 'grafana' / 'dashboards'
    with SimStack(tmp_path / 'sim', hosts=2, nodes_per_host=2, ready_delay=0.2) as stack, \
            testing.RunningService(str(ledger), stack.prometheus_url) as dashboard:
        stack.wait_targets_up()
        extra = [f'monitoring_grafana_provisioning_dir={grafana}', f'monitoring_grafana_dashboards_dir={dashboards}',
                 json.dumps({'monitoring_dashboard_targets': [f'127.0.0.1:{dashboard.port}'],
                             'monitoring_alert_overrides': {'iroh_latency_spike': {'threshold': 0.3}}}),
                 f'monitoring_file_sd_dir={stack.state_dir / "prometheus" / "file_sd"}']
        first = play(stack, tmp_path, *extra)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]

        installed = json.loads((dashboards / 'autonomi-migration.json').read_text())
        expected = grafana_dashboard.dashboard_from_rules(overrides={'iroh_latency_spike': {'threshold': 0.3}})
        assert installed == json.loads(json.dumps(expected))
        provider = yaml.safe_load((grafana / 'dashboards' / 'autonomi-migration.yml').read_text())
        assert provider['providers'][0]['options']['path'] == str(dashboards)

        # Prometheus scrapes the dashboard's /metrics: the ledger's figures arrive under the dashboard job.
        stack.wait_query('autonomi_migration_nodes_total{job="autonomi_migration_dashboard"}',
                         lambda r: r and r.value() == 6, timeout=60, what='the dashboard scraped')
        assert stack.query_value('autonomi_migration_nodes_migrated{job="autonomi_migration_dashboard"}') == 2

        again = play(stack, tmp_path, *extra)
        assert again.returncode == 0, again.stdout[-3000:]
        assert 'changed=0' in again.stdout, again.stdout[-3000:]
