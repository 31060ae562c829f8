# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gate against the simulated fleet and a real Prometheus, through real ansible-playbook runs.

One fleet for the module (6 hosts x 2 nodes): the monitoring role installs the rules with the
simulated inventory's short windows (inventories/sim/group_vars/all/alerts.yml); sim-host-01..04
switch to dual_stack through their antctl. Faults land on disjoint hosts so that one test's
fault does not linger in the next test's window.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / '.venv' / 'bin' / 'ansible-playbook'
ALERTS_VARS = ROOT / 'inventories' / 'sim' / 'group_vars' / 'all' / 'alerts.yml'
ERROR_HOSTS = ['sim-host-01', 'sim-host-02']
LATENCY_HOSTS = ['sim-host-03', 'sim-host-04']
LIBP2P_HOSTS = ['sim-host-05', 'sim-host-06']
WINDOW = yaml.safe_load(ALERTS_VARS.read_text())['migration_alert_overrides']['high_error_rate_iroh']['for']
WINDOW_CANARY = '20s'

testing = pytest.importorskip('ant_fleet_sim.testing')


def ansible_env(ledger):
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANT_MIGRATION_LEDGER=str(ledger),
               ANSIBLE_FORCE_COLOR='0', PATH='%s:%s' % (Path(sys.executable).parent, env.get('PATH', '')))
    for name in [n for n in env if n.startswith('MIGRATION_PROMETHEUS_')]:
        del env[name]
    return env


def playbook(stack, tmp_path, path, ledger, *extra):
    cmd = [str(PLAYBOOK), '-i', str(stack.inventory), str(path), '-e', '@%s' % ALERTS_VARS,
           '-e', 'migration_prometheus_url=%s' % stack.prometheus_url, *extra]
    return subprocess.run(cmd, cwd=str(ROOT), env=ansible_env(ledger), capture_output=True, text=True, timeout=300)


def run_gate(stack, tmp_path, ledger=None, module='migration_gate', **options):
    """Run the gate (or another action) in a real play; return (exit code, its result, seconds, output)."""
    out = tmp_path / ('gate-%d.json' % time.monotonic_ns())
    play = [{
        'name': 'Gate', 'hosts': 'localhost', 'gather_facts': False,
        'tasks': [{'block': [{'name': 'Judge the metrics',
                              'autonomi.network_migration.%s' % module: options,
                              'register': 'gate'}],
                   'always': [{'name': 'Keep the result', 'ansible.builtin.copy': {
                       'content': '{{ gate | to_json }}', 'dest': str(out), 'mode': '0600'}}]}],
    }]
    path = tmp_path / 'gate.yml'
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    started = time.monotonic()
    proc = playbook(stack, tmp_path, path, ledger or tmp_path / 'ledger.sqlite3')
    elapsed = time.monotonic() - started
    assert out.exists(), proc.stdout + proc.stderr
    return proc.returncode, json.loads(out.read_text()), elapsed, proc.stdout + proc.stderr


def rules_by_id(result):
    return {r['id']: r for r in result['rules']}


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp('gate-stack')
    with testing.SimStack(directory, hosts=6, nodes_per_host=2, ready_delay=0.5) as stack:
        stack.wait_targets_up()
        proc = playbook(stack, directory, ROOT / 'playbooks' / 'monitoring.yml', directory / 'ledger.sqlite3',
                        '-e', 'monitoring_rules_dir=%s' % (stack.state.prometheus_dir / 'rules'))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for host in ERROR_HOSTS + LATENCY_HOSTS:
            nodes = stack.antctl_status(host)['nodes']
            stack.set_mode(host, [node['service_name'] for node in nodes], 'dual_stack')
        stack.wait_ready()
        # Enough recorded iroh samples for the gate's window on the dual-stack hosts.
        stack.wait_query('count_over_time(transport:ant_transport_error_rate:ratio{transport="iroh"}[%s])' % WINDOW,
                         lambda r: r and float(r[0]['value'][1]) >= 5, timeout=60)
        yield stack


def test_monitoring_role_is_idempotent_and_refuses_bad_input(stack, tmp_path):
    rules_dir = stack.state.prometheus_dir / 'rules'
    before = {p.name: p.read_text() for p in rules_dir.glob('*.yml')}
    assert sorted(before) == ['autonomi-migration-alerts.yml', 'autonomi-migration-recording.yml']
    alertmanager = tmp_path / 'alertmanager' / 'alertmanager.yml'
    alertmanager.parent.mkdir()
    proc = playbook(stack, tmp_path, ROOT / 'playbooks' / 'monitoring.yml', tmp_path / 'ledger.sqlite3',
                    '-e', 'monitoring_rules_dir=%s' % rules_dir, '-e', 'monitoring_alertmanager_config_path=%s'
                    % alertmanager)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'changed=1' in proc.stdout  # only the new Alertmanager file; the rule files are unchanged
    routes = yaml.safe_load(alertmanager.read_text())['route']['routes']
    # a critical rule's route groups for critical_group_wait (the role's default 5s), not the root's 30s
    assert {'receiver': 'page', 'matchers': ['alertname="HighErrorRateIroh"'], 'repeat_interval': '1m',
            'group_wait': '5s'} in routes
    proc = playbook(stack, tmp_path, ROOT / 'playbooks' / 'monitoring.yml', tmp_path / 'ledger.sqlite3',
                    '-e', 'monitoring_rules_dir=%s' % rules_dir,
                    '-e', '{"migration_alert_overrides": {"high_error_rate_iroh": {"threshold": "high"}}}')
    assert proc.returncode != 0
    assert "rules[1] (rule 'high_error_rate_iroh').threshold: 'high' is not of type 'number'" in proc.stdout
    assert {p.name: p.read_text() for p in rules_dir.glob('*.yml')} == before


def test_healthy_fleet_passes(stack, tmp_path):
    rc, result, _, output = run_gate(stack, tmp_path)
    assert rc == 0, output
    assert result['verdict'] == 'pass'
    assert {r['id']: r['verdict'] for r in result['rules']} == {
        'high_error_rate_libp2p': 'pass', 'high_error_rate_iroh': 'pass',
        'iroh_latency_spike': 'pass', 'network_partition_risk': 'pass'}
    for rule in result['rules']:
        assert rule['value'] is not None and rule['samples'] >= 3 and rule['window'] == WINDOW
    assert result['scope']['targets_up'] == 12
    assert result['scope']['nodes_by_transport'] == {'libp2p': 12, 'iroh': 8}
    assert result['prometheus']['queries'] == 6   # the scope, one per rule, and Prometheus' clock (time())
    assert result['ledger']['written'] == ['gate_verdict']


def test_canary_analysis_passes_healthy_canaries(stack, tmp_path):
    rc, result, _, output = run_gate(stack, tmp_path, module='canary_analysis', canary_hosts=ERROR_HOSTS,
                                     window=WINDOW_CANARY)
    assert rc == 0, output
    assert result['verdict'] == 'pass' and result['score'] == 100.0
    assert len(result['canaries']) == 4 and len(result['baseline']) == 4
    assert result['queries'] == 5
    assert result['ledger']['written'] == ['canary_analysis']


def test_iroh_error_rate_fails_the_gate_scoped_to_its_hosts(stack, tmp_path):
    stack.fault('transport', transport='iroh', error_rate=0.3, hosts=ERROR_HOSTS)
    try:
        injected = time.monotonic()
        rc, result, elapsed, output = run_gate(stack, tmp_path, hosts=ERROR_HOSTS, evaluations=30, interval='2s')
        detected = time.monotonic() - injected
        assert rc != 0, output
        assert result['verdict'] == 'fail' and result['failed_rules'] == ['high_error_rate_iroh']
        rule = rules_by_id(result)['high_error_rate_iroh']
        assert rule['value'] > 0.05 and rule['threshold'] == 0.05  # its minimum over the window
        assert set(rule['hosts']) == set(ERROR_HOSTS)
        assert 'high_error_rate_iroh (critical)' in result['msg']
        assert 'The migration is halted in the ledger' in result['msg']
        for host in ERROR_HOSTS:
            assert host in result['msg']
        assert rules_by_id(result)['high_error_rate_libp2p']['verdict'] == 'pass'
        # Within the configured window: the rule's for (10 s) plus the rate window (10 s), plus slack.
        assert detected < 40, 'took %.1f s' % detected
        assert result['ledger']['written'] == ['gate_verdict', 'halt']
        # Prometheus, with the monitoring role's rules, reaches the same decision: the alert fires.
        stack.wait_query('ALERTS{alertname="HighErrorRateIroh",alertstate="firing",severity="critical"}',
                         lambda r: len(r) == 1, timeout=20)

        # The canary analysis sees it too: both error-rate comparisons fail.
        rc, canary, _, output = run_gate(stack, tmp_path, module='canary_analysis', canary_hosts=ERROR_HOSTS,
                                         window=WINDOW_CANARY, ledger=tmp_path / 'canary.sqlite3')
        assert rc != 0, output
        assert canary['verdict'] == 'fail'
        failed = {(c['metric'], c['kind']) for c in canary['comparisons'] if c['verdict'] == 'fail'}
        assert {('error_rate', 'canary_vs_baseline'), ('error_rate', 'iroh_vs_libp2p')} <= failed

        # The halt stops the next gate at once, whatever the metrics say.
        rc, halted, _, _ = run_gate(stack, tmp_path, hosts=LIBP2P_HOSTS)
        assert rc != 0 and 'the migration is halted (gate failed: rule(s) tripped' in halted['msg']
        assert halted['prometheus']['queries'] == 0
        # An observer (record: false, e.g. a status report or a rollback) still gets the figures.
        rc, observer, _, output = run_gate(stack, tmp_path, hosts=LIBP2P_HOSTS, record=False)
        assert rc == 0 and observer['verdict'] == 'pass', output

        # Other hosts, judged on their own (fresh ledger), are fine: the gate is scoped.
        rc, other, _, output = run_gate(stack, tmp_path, ledger=tmp_path / 'other.sqlite3', hosts=LIBP2P_HOSTS)
        assert rc == 0, output
        assert rules_by_id(other)['high_error_rate_iroh']['verdict'] == 'skipped'
    finally:
        stack.clear_faults()
    print('iroh error rate 30 %% detected by the gate %.1f s after injection' % detected)


def test_injected_latency_trips_the_latency_rule(stack, tmp_path):
    stack.fault('transport', transport='iroh', latency_ms=600, hosts=LATENCY_HOSTS)
    try:
        rc, result, elapsed, output = run_gate(stack, tmp_path, hosts=LATENCY_HOSTS, evaluations=30, interval='2s')
    finally:
        stack.clear_faults()
    assert rc != 0, output
    assert result['failed_rules'] == ['iroh_latency_spike']
    rule = rules_by_id(result)['iroh_latency_spike']
    assert rule['value'] > 0.5 and rule['consecutive_failures'] == 2  # a warning needs two in a row
    assert 'iroh_latency_spike (warning)' in result['msg'] and ' ms > 500 ms' in result['msg']


def test_partition_raises_partition_risk(stack, tmp_path):
    stack.fault('partition', groups=[ERROR_HOSTS + LATENCY_HOSTS[:1], LATENCY_HOSTS[1:] + LIBP2P_HOSTS])
    try:
        risk = stack.wait_query('fleet:ant_partition_risk:ratio', lambda r: r and float(r[0]['value'][1]) > 0.7,
                                timeout=30)
        rc, result, _, output = run_gate(stack, tmp_path, rules=['network_partition_risk'], evaluations=30,
                                         interval='2s')
    finally:
        stack.clear_faults()
    assert float(risk[0]['value'][1]) > 0.7
    assert rc != 0, output
    rule = rules_by_id(result)['network_partition_risk']
    assert result['failed_rules'] == ['network_partition_risk'] and rule['value'] > 0.7
    healed = stack.wait_query('fleet:ant_partition_risk:ratio', lambda r: r and float(r[0]['value'][1]) < 0.1,
                              timeout=30)
    assert float(healed[0]['value'][1]) < 0.1


def test_prometheus_stopped_fails_closed(stack, tmp_path):
    stack.stop_prometheus()
    ledger = tmp_path / 'analysis-ledger.sqlite3'
    try:
        rc, result, elapsed, output = run_gate(stack, tmp_path, retries=1, timeout=2)
        a_rc, analysis, _, a_output = run_gate(stack, tmp_path, ledger=ledger, module='canary_analysis',
                                               canary_hosts=ERROR_HOSTS, retries=1, timeout=2)
    finally:
        stack.start_prometheus()
    # The canary analysis cannot judge either: no verdict, halted with cause no_verdict (the canary freezes).
    assert a_rc != 0 and analysis['verdict'] == 'unavailable', a_output
    assert 'no verdict, failing closed' in analysis['msg'], analysis['msg']
    with ledger_lib.open_ledger(str(ledger)) as handle:
        halted = handle.get_flags()['halted']
    assert halted and halted['cause'] == 'no_verdict' and 'could not judge' in halted['reason'], halted
    assert rc != 0, output
    assert result['verdict'] == 'unavailable'  # no verdict on the nodes; fails closed
    assert ('Prometheus at %s is unreachable (Connection refused) after 1 retries' % stack.prometheus_url
            in result['msg']), result['msg']
    assert 'no verdict, failing closed' in result['msg'] and len(result['msg']) < 300
    assert elapsed < 60
