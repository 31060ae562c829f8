"""The dashboard's HTTP endpoints: /status (against its JSON schema), /health, /metrics, /, with
either source down; the WebSocket push; the token rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ant_fleet_sim.testing import wait_for
from ant_network_migration_dashboard import server, status, testing

SCHEMA = status.load_schema()


def get(running, path, **kwargs):
    return httpx.get(running.url + path, timeout=10, **kwargs)


def valid_status(running, **kwargs):
    response = get(running, '/status', **kwargs)
    assert response.status_code == 200, response.text
    doc = response.json()
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
    return doc


def metric_values(text):
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_status_is_the_ledger_and_prometheus_figures(ledger_path, prometheus, service_factory):
    handle = ledger_lib.open_ledger(str(ledger_path))
    handle.set_halt('gate failed: high_error_rate_iroh', 'gate', 'migration_gate')
    handle.record_event('gate_verdict', gate='migration_gate', verdict='fail', reason='iroh error rate',
                        rules=[{'id': 'high_error_rate_iroh', 'verdict': 'fail', 'value': 0.09, 'threshold': 0.05,
                                'window': '5m', 'hosts': None}])
    handle.acquire_lock('alice@ctl', 'playbooks/rollout.yml')
    handle.record_observation('sim-host-02', 'antnode1', healthy=False)
    handle.record_event('preflight', result='failed', failed_items=['backup'], waived_items=[], items=[],
                        operator='alice')
    expected = handle.progress()
    handle.close()
    prometheus.values['iroh']['error_rate'] = 0.09
    prometheus.alerts = [{'alertname': 'HighErrorRateIroh', 'alertstate': 'firing', 'severity': 'critical',
                          'transport': 'iroh', 'rule_id': 'high_error_rate_iroh'}]
    running = service_factory(ledger_path, prometheus.url)
    wait_for(lambda: get(running, '/health').status_code == 200, timeout=20, what='ready')
    doc = valid_status(running)

    assert doc['missing'] == []
    m = doc['migration']
    for key in ('total', 'migrated', 'dual_stack', 'progress_percent', 'dual_stack_coverage_percent', 'phase',
                'by_state'):
        assert m[key] == expected[key], key
    # dual_stack: the nodes on both transports (iroh_primary keeps libp2p), as the ledger counts them.
    assert (m['total'], m['migrated'], m['dual_stack'], m['phase']) == (12, 3, 6, 'MajorityMigration')
    assert doc['hosts']['sim-host-01'] == {'nodes': 3, 'states': {'iroh_primary': 3}, 'unhealthy': 0}
    assert doc['hosts']['sim-host-02'] == {'nodes': 3, 'states': {'dual_stack_stable': 3}, 'unhealthy': 1}
    assert doc['flags']['halted']['reason'] == 'gate failed: high_error_rate_iroh'
    assert doc['lock']['holder'] == 'alice@ctl' and doc['lock']['playbook'] == 'playbooks/rollout.yml'
    assert doc['run']['stage'] == 'wave' and doc['run']['running'] is True
    assert doc['gate_verdicts'][0]['data']['rules'][0]['threshold'] == 0.05
    assert doc['transports']['iroh']['error_rate'] == pytest.approx(0.09)
    assert doc['transports']['libp2p']['latency_p95'] == pytest.approx(0.2)
    assert doc['fleet']['partition_risk'] == pytest.approx(0.05)
    # The rules as the gate judges them (services/health.py rule_verdicts), not an instantaneous judge.
    verdicts = {v['rule']: v for v in doc['rules']}
    assert verdicts['high_error_rate_iroh']['verdict'] == 'fail'
    assert verdicts['high_error_rate_iroh']['hosts'] == {'sim-host-01': pytest.approx(0.09)}
    assert verdicts['high_error_rate_iroh']['threshold'] == pytest.approx(0.05)
    assert verdicts['high_error_rate_libp2p']['verdict'] == 'pass'
    assert doc['alerts'] == [{'name': 'HighErrorRateIroh', 'state': 'firing', 'severity': 'critical',
                              'transport': 'iroh', 'rule_id': 'high_error_rate_iroh'}]
    assert doc['history']['t'] and doc['history']['iroh']['error_rate'][-1] == pytest.approx(0.09)

    metrics = metric_values(get(running, '/metrics').text)
    assert metrics[('autonomi_migration_nodes_total', ())] == 12
    assert metrics[('autonomi_migration_nodes_migrated', ())] == 3
    assert metrics[('autonomi_migration_progress_percent', ())] == pytest.approx(25.0)
    assert metrics[('autonomi_migration_phase_info', (('phase', 'MajorityMigration'),))] == 1
    assert metrics[('autonomi_migration_halted', ())] == 1
    assert metrics[('autonomi_migration_paused', ())] == 0
    assert metrics[('autonomi_migration_locked', ())] == 1
    assert metrics[('autonomi_migration_gate_last_verdict', (('verdict', 'fail'),))] == 1
    assert metrics[('autonomi_migration_preflight_result', (('result', 'failed'),))] == 1
    assert metrics[('autonomi_migration_preflight_timestamp_seconds', ())] > 0
    assert doc['preflight']['result'] == 'failed' and '(failed: backup)' in doc['preflight']['text']
    assert metrics[('autonomi_migration_dashboard_source_up', (('source', 'prometheus'),))] == 1
    assert ('autonomi_migration_velocity_nodes_per_hour', ()) in metrics
    assert ('autonomi_migration_estimated_completion_timestamp_seconds', ()) in metrics

    page = get(running, '/')
    assert page.status_code == 200 and 'id="progress-percent"' in page.text
    assert 'http://' not in page.text.replace('http://www.w3.org/2000/svg', ''), 'the page loads nothing external'


def test_prometheus_down_then_back(ledger_path, service_factory):
    stub = testing.StubPrometheus().start()
    try:
        running = service_factory(ledger_path, stub.url)
        wait_for(lambda: get(running, '/health').status_code == 200, timeout=20, what='ready')
        stub.stop()
        wait_for(lambda: get(running, '/health').status_code == 503, timeout=20, what='not ready')
        health = get(running, '/health').json()
        assert health['live'] is True and health['ready'] is False
        assert health['checks']['ledger']['ok'] is True
        assert 'unreachable' in health['checks']['prometheus']['error']
        assert get(running, '/health/live').status_code == 200
        assert get(running, '/health/ready').status_code == 503
        assert get(running, '/health/other').status_code == 404
        doc = valid_status(running)
        assert doc['missing'] == ['prometheus']
        assert doc['sources']['prometheus']['ok'] is False and doc['sources']['prometheus']['last_ok_at']
        assert doc['migration']['total'] == 12, 'the ledger part is still served'
        assert 'autonomi_migration_dashboard_source_up{source="prometheus"} 0.0' in get(running, '/metrics').text
        stub.start()
        wait_for(lambda: get(running, '/health').status_code == 200, timeout=20, what='ready again')
        assert valid_status(running)['missing'] == []
    finally:
        stub.stop()


def test_no_ledger_yet_is_not_created_and_not_ready(tmp_path, prometheus, service_factory):
    location = tmp_path / 'absent' / 'ledger.sqlite3'
    running = service_factory(location, prometheus.url)
    health = get(running, '/health')
    assert health.status_code == 503
    assert 'no ledger at' in health.json()['checks']['ledger']['error']
    doc = valid_status(running)
    assert doc['missing'] == ['ledger'] and doc['migration'] is None
    assert doc['transports']['iroh']['health_score'] == pytest.approx(0.95), 'Prometheus figures still shown'
    assert get(running, '/').status_code == 200
    assert not location.exists() and not location.parent.exists(), 'read-only: the dashboard created a ledger'
    # The ledger appears (the first run): the dashboard picks it up without a restart.
    location.parent.mkdir()
    testing.fill_ledger(location, hosts=2, nodes_per_host=2)
    wait_for(lambda: get(running, '/health').status_code == 200, timeout=20, what='ready once the ledger exists')
    assert valid_status(running)['migration']['total'] == 4


def test_unreachable_postgres_ledger_is_reported_without_its_password(prometheus, service_factory):
    dsn = f'postgresql://migration:s3cr3t-pw@127.0.0.1:{testing.free_port()}/migration?connect_timeout=2'
    running = service_factory(dsn, prometheus.url)
    for path in ('/health', '/status', '/', '/metrics'):
        response = get(running, path)
        assert response.status_code in (200, 503), path
        assert 's3cr3t-pw' not in response.text, path
    assert get(running, '/health').status_code == 503
    doc = valid_status(running)
    assert doc['missing'] == ['ledger'] and doc['sources']['ledger']['error']
    assert '********' in doc['sources']['ledger']['location']


def test_websocket_gets_an_update_within_5_s_of_a_ledger_event(ledger_path, prometheus, service_factory):
    running = service_factory(ledger_path, prometheus.url, poll_interval=1.0, prometheus_interval=60)
    with connect(running.ws_url, open_timeout=10) as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first['type'] == 'status'
        jsonschema.validate(first['status'], SCHEMA)
        assert first['status']['flags']['paused'] is None
        handle = ledger_lib.open_ledger(str(ledger_path))
        handle.set_pause('investigating p95 on sim-host-03', 'carol')
        written = time.monotonic()
        handle.close()
        while True:
            remaining = 5.0 - (time.monotonic() - written)
            assert remaining > 0, 'no update within 5 s of the ledger event'
            message = json.loads(ws.recv(timeout=remaining))
            if message['type'] == 'status' and message['status']['flags']['paused']:
                break
        assert message['status']['flags']['paused']['reason'] == 'investigating p95 on sim-host-03'
        assert message['status']['events'][0]['kind'] == 'pause'


def test_token_is_required_everywhere_when_set(ledger_path, prometheus, service_factory):
    running = service_factory(ledger_path, prometheus.url, token='t0ken-xyz')
    for path in ('/', '/status', '/health', '/metrics'):
        assert get(running, path).status_code == 401, path
        assert get(running, path, headers={'Authorization': 'Bearer wrong'}).status_code == 401, path
    assert get(running, '/status', headers={'Authorization': 'Bearer t0ken-xyz'}).status_code == 200
    assert get(running, '/?token=t0ken-xyz').status_code == 200
    with pytest.raises(InvalidStatus, match='403'):
        with connect(running.ws_url, open_timeout=10) as ws:
            ws.recv(timeout=5)
    with pytest.raises(InvalidStatus, match='403'):     # the address carries the token to the page only
        with connect(running.ws_url + '?token=t0ken-xyz', open_timeout=10) as ws:
            ws.recv(timeout=5)
    with connect(running.ws_url, additional_headers={'Authorization': 'Bearer t0ken-xyz'}, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))['type'] == 'status'


@pytest.mark.parametrize('listen, host, port', [('127.0.0.1:8090', '127.0.0.1', 8090), ('[::1]:9', '::1', 9),
                                                ('0.0.0.0:80', '0.0.0.0', 80), ('localhost:1', 'localhost', 1)])
def test_listen_forms(listen, host, port):
    assert server.parse_listen(listen) == (host, port)


@pytest.mark.parametrize('listen', ['8090', '127.0.0.1', '127.0.0.1:0', 'host:99999', ':80', ''])
def test_bad_listen_names_the_option_and_form(listen):
    with pytest.raises(server.DashboardConfigError, match=r'--listen .* is not HOST:PORT'):
        server.parse_listen(listen)


def test_exposure_rule():
    server.check_exposure('127.0.0.1', None)
    server.check_exposure('::1', None)
    server.check_exposure('localhost', None)
    with pytest.raises(server.DashboardConfigError, match='ANT_DASHBOARD_TOKEN'):
        server.check_exposure('0.0.0.0', None)
    server.check_exposure('0.0.0.0', 'x')


def _cli(*args, env=None, **kwargs):
    exe = os.path.join(os.path.dirname(sys.executable), 'ant-network-migration')
    return subprocess.Popen([exe, *args], env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def test_cli_refuses_a_public_address_without_a_token(ledger_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANT_DASHBOARD_TOKEN')}
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ant-network-migration'),
                           '--ledger', str(ledger_path), 'dashboard', '--listen', '0.0.0.0:%d' % testing.free_port()],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'requires an access token' in proc.stderr and 'ANT_DASHBOARD_TOKEN' in proc.stderr


@pytest.mark.parametrize('via', ['env', 'file'])
def test_cli_serves_a_public_address_with_a_token_it_never_prints(ledger_path, prometheus, tmp_path, via):
    secret = 'very-secret-token-%s' % via
    env = {'ANT_DASHBOARD_TOKEN': secret} if via == 'env' else {}
    extra = []
    if via == 'file':
        token_file = tmp_path / 'token'
        token_file.write_text(secret + '\n')
        token_file.chmod(0o600)
        extra = ['--token-file', str(token_file)]
    for _ in range(3):   # another process may take the port picked before the dashboard binds it
        port = testing.free_port()
        proc = _cli('--ledger', str(ledger_path), '--prometheus-url', prometheus.url,
                    'dashboard', '--listen', f'0.0.0.0:{port}', *extra, env=env)
        line = proc.stdout.readline()
        if 'address already in use' not in line:
            break
        proc.wait(timeout=30)
    try:
        assert f'dashboard: http://127.0.0.1:{port}/' in line and 'token required' in line, line
        url = f'http://127.0.0.1:{port}'
        assert httpx.get(url + '/status', timeout=10).status_code == 401
        response = httpx.get(url + '/status', headers={'Authorization': f'Bearer {secret}'}, timeout=10)
        assert response.status_code == 200 and secret not in response.text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert secret not in line + out
