"""health and metrics: figures from the recording rules, rule verdicts, formats, Prometheus down."""

from __future__ import annotations

import json

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ant_network_migration_cli import cmd_observe, errors


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


def test_health_ok(stub, invoke):
    stub()
    result = invoke('--prometheus-url', 'http://prom:9090', 'health', '--json')
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data['healthy'] is True
    assert {v['rule'] for v in data['rules']} == {'high_error_rate_libp2p', 'high_error_rate_iroh',
                                                   'iroh_latency_spike', 'network_partition_risk'}


def test_health_breach_exits_1_naming_rule_value_threshold(stub, invoke):
    values = {t: dict(f) for t, f in HEALTHY.items()}
    values['iroh']['error_rate'] = 0.3
    stub(values)
    result = invoke('--prometheus-url', 'http://prom:9090', 'health', '--transport', 'iroh')
    assert result.exit_code == errors.EXIT_FAILED
    assert 'high_error_rate_iroh: error_rate 0.3 > 0.05' in result.output
    assert 'libp2p' not in result.output.split('Alert rules')[0].split('Transports')[1]


def test_health_no_data_is_not_a_pass(stub, invoke):
    stub({'libp2p': HEALTHY['libp2p']})
    result = invoke('--prometheus-url', 'http://prom:9090', 'health', '--json')
    assert result.exit_code == errors.EXIT_FAILED
    data = json.loads(result.stdout)
    assert {v['rule']: v['verdict'] for v in data['rules']}['high_error_rate_iroh'] == 'no data'
    assert any(p.startswith('inconclusive: no data for high_error_rate_iroh') for p in data['problems'])


def test_health_reports_unhealthy_nodes_from_the_ledger(stub, invoke, ledger_path):
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_mod

    stub()
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.record_observation('sim-host-01', 'antnode2', healthy=False, data={'msg': '2 connected peers'})
    result = invoke('--prometheus-url', 'http://prom:9090', 'health')
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
