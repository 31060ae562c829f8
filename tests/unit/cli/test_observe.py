"""health and metrics: figures from the recording rules, the gate's verdict on the fleet, formats, Prometheus down."""

from __future__ import annotations

import json

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import health as health_service
from ant_network_migration_cli import cmd_observe, errors
from ant_network_migration_dashboard.testing import StubPrometheus


class StubClient:
    """Answers the one figures query like Prometheus would, from a table of values."""

    def __init__(self, values, risk=0.05):
        self.values = values
        self.risk = risk
        self.queries = []

    def query(self, promql):
        self.queries.append(promql)
        out = []
        for transport, figures in self.values.items():
            for figure, value in figures.items():
                name = alert_rules.recorded_name(figure, 'transport')
                assert name in promql
                out.append({'metric': {'__name__': name, 'transport': transport}, 'value': value})
        out.append({'metric': {'__name__': alert_rules.recorded_name('partition_risk', 'fleet')}, 'value': self.risk})
        return out

    def close(self):
        pass


HEALTHY = {
    'libp2p': {'request_rate': 120.0, 'error_rate': 0.01, 'latency_p50': 0.05, 'latency_p95': 0.2,
               'latency_p99': 0.4, 'active_connections': 60.0, 'health_score': 0.9},
    'iroh': {'request_rate': 80.0, 'error_rate': 0.005, 'latency_p50': 0.03, 'latency_p95': 0.12,
             'latency_p99': 0.3, 'active_connections': 30.0, 'health_score': 0.95},
}


@pytest.fixture(autouse=True)
def no_fleet_inventory(tmp_path, monkeypatch):
    """An inventory without hosts: the rules' defaults, whatever inventories/sim holds (after `make demo` it
    lists the demo fleet, whose group_vars shorten the windows)."""
    inventory = tmp_path / 'empty-inventory.yml'
    inventory.write_text('all:\n  hosts: {}\n')
    monkeypatch.setenv('ANT_MIGRATION_INVENTORY', str(inventory))


@pytest.fixture
def stub(monkeypatch):
    holder = {}

    def install(values=HEALTHY, risk=0.05):
        client = StubClient(values, risk)
        holder['client'] = client
        monkeypatch.setattr(cmd_observe, 'prometheus_client', lambda url=None, default_url=None: client)
        return client

    return install


def test_figures_come_from_one_query(stub, invoke):
    client = stub()
    result = invoke('--prometheus-url', 'http://prom:9090', 'metrics', '--format', 'json')
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data['transports']['iroh']['latency_p95'] == 0.12
    assert data['fleet']['partition_risk'] == 0.05
    assert data['migration']['total'] == 18
    assert data['prometheus_error'] is None
    assert len(client.queries) == 1


def test_metrics_prometheus_format(stub, invoke):
    stub()
    result = invoke('--prometheus-url', 'http://prom:9090', 'metrics', '--format', 'prometheus')
    assert result.exit_code == 0, result.output
    assert 'autonomi_migration_transport_error_rate{transport="iroh"} 0.005' in result.output
    assert 'autonomi_migration_fleet_partition_risk 0.05' in result.output
    assert 'autonomi_migration_nodes_total 18' in result.output     # the ledger's own metrics


def test_metrics_table(stub, invoke):
    stub()
    result = invoke('--prometheus-url', 'http://prom:9090', 'metrics')
    assert result.exit_code == 0, result.output
    assert 'fleet partition risk: 0.05' in result.output
    assert '120 ms' in result.output and 'iroh' in result.output   # libp2p p95 0.2 s; iroh row
    assert 'progress' in result.output


@pytest.fixture
def prometheus():
    """A Prometheus over HTTP answering the figures and the gate's queries from a table (the real client)."""
    with StubPrometheus() as stub:
        yield stub


def health(invoke, prometheus, *args):
    return invoke('--prometheus-url', prometheus.url, 'health', *args)


def gate_verdict(prometheus, transport=None):
    """The fleet gate of one evaluation on the same data, asked directly (what a wave's pre-gate says)."""
    client = cmd_observe.prometheus_client(prometheus.url)
    try:
        return health_service.fleet_health(client, alert_rules.load_rules(), transport)
    finally:
        client.close()


def test_health_ok_is_the_gates_pass(prometheus, invoke):
    result = health(invoke, prometheus, '--json')
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data['healthy'] is True and data['verdict'] == 'pass'
    assert {r['id']: r['verdict'] for r in data['rules']} == dict.fromkeys(
        [rule.id for rule in alert_rules.load_rules().select()], 'pass')
    assert data['transports']['iroh']['latency_p95'] == 0.12          # the figures are still shown


@pytest.mark.parametrize('transport', [None, 'iroh'])
def test_health_verdict_is_the_gate_verdict_on_the_same_data(prometheus, invoke, transport):
    """A critical rule breached: the CLI's verdict, rules and exit code are the fleet gate's own."""
    prometheus.values['iroh']['error_rate'] = 0.3
    result = health(invoke, prometheus, *(['--transport', transport] if transport else []), '--json')
    assert result.exit_code == errors.EXIT_FAILED
    data = json.loads(result.stdout)
    gate = gate_verdict(prometheus, transport)
    assert (data['verdict'], data['rules']) == (gate['verdict'], json.loads(json.dumps(gate['rules'])))
    assert data['verdict'] == 'fail' and data['problems'][0] == gate['msg']
    assert 'high_error_rate_iroh (critical): 0.3 > 0.05' in data['msg']
    rules = {r['id']: r['verdict'] for r in data['rules']}
    assert rules['high_error_rate_iroh'] == 'fail' and ('high_error_rate_libp2p' in rules) is (transport is None)


def test_health_table_names_rule_value_threshold_and_window(prometheus, invoke):
    prometheus.values['iroh']['error_rate'] = 0.3
    result = health(invoke, prometheus, '--transport', 'iroh')
    assert result.exit_code == errors.EXIT_FAILED
    assert 'migration gate FAILED for fleet: rule(s) tripped: high_error_rate_iroh (critical): 0.3 > 0.05' \
        in result.output.replace('\n', ' ')
    assert 'libp2p' not in result.output.split('Alert rules')[0].split('Transports')[1]


def test_health_no_data_is_inconclusive_not_a_pass(prometheus, invoke):
    del prometheus.values['iroh']
    result = health(invoke, prometheus, '--json')
    assert result.exit_code == errors.EXIT_FAILED
    data = json.loads(result.stdout)
    assert data['verdict'] == 'inconclusive' == gate_verdict(prometheus)['verdict']
    assert {r['id']: r['verdict'] for r in data['rules']}['high_error_rate_iroh'] == 'no_data'
    assert data['problems'][0].startswith('migration gate INCONCLUSIVE for fleet')


def test_health_warning_breach_is_confirmed_as_the_gate_does(prometheus, invoke, inventory_path):
    """A warning rule needs two breaching evaluations (the gate's consecutive failures); the old instantaneous
    judge ignored warnings. With a 1 s evaluation interval the confirmation waits 1 s."""
    text = inventory_path.read_text().replace('        migration_alert_overrides:',
                                              '        migration_alert_settings: {evaluation_interval: 1s}\n'
                                              '        migration_alert_overrides:')
    inventory_path.write_text(text)
    prometheus.values['iroh']['latency_p95'] = 0.9
    result = invoke('-i', inventory_path, '--prometheus-url', prometheus.url, 'health', '--json')
    assert result.exit_code == errors.EXIT_FAILED, result.output
    data = json.loads(result.stdout)
    assert data['verdict'] == 'fail' and 'iroh_latency_spike (warning)' in data['msg']


def test_health_prometheus_down_is_unavailable(invoke, monkeypatch):
    monkeypatch.setenv('MIGRATION_PROMETHEUS_RETRIES', '0')
    monkeypatch.setenv('MIGRATION_PROMETHEUS_TIMEOUT', '2')
    result = invoke('--prometheus-url', 'http://127.0.0.1:9', 'health', '--json')
    assert result.exit_code == errors.EXIT_FAILED
    data = json.loads(result.stdout)
    assert data['verdict'] == 'unavailable' and data['transports'] is None
    assert 'could not judge' in data['problems'][0] and 'unreachable' in data['problems'][0]


def test_health_reports_unhealthy_nodes_from_the_ledger(prometheus, invoke, ledger_path):
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_mod

    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.record_observation('sim-host-01', 'antnode2', healthy=False, data={'msg': '2 connected peers'})
    result = health(invoke, prometheus)
    assert result.exit_code == errors.EXIT_FAILED
    assert 'sim-host-01/antnode2' in result.output and '2 connected peers' in result.output


def test_prometheus_down_metrics_still_print_ledger_part(invoke, monkeypatch):
    monkeypatch.setenv('MIGRATION_PROMETHEUS_RETRIES', '0')
    monkeypatch.setenv('MIGRATION_PROMETHEUS_TIMEOUT', '2')
    result = invoke('--prometheus-url', 'http://127.0.0.1:9', 'metrics', '--format', 'json')
    assert result.exit_code == errors.EXIT_FAILED
    data = json.loads(result.stdout)
    assert data['migration']['total'] == 18
    assert 'unreachable' in data['prometheus_error']


def test_no_prometheus_url_is_bad_input(invoke, tmp_path):
    empty = tmp_path / 'inv.yml'
    empty.write_text('all:\n  hosts:\n    h1:\n')
    result = invoke('-i', empty, 'metrics')
    assert result.exit_code == errors.EXIT_BAD_INPUT
    assert 'no Prometheus URL' in result.output
