"""node_health and the metrics reader on real-shaped metric text (fixtures/metrics/real/, written from the
metric definitions of libp2p-metrics, ant-node and iroh; see the fixtures' header)."""

from __future__ import annotations

from pathlib import Path

import pytest
from node_fakes import dumps

from ansible_collections.autonomi.network_migration.plugins.module_utils import _health as node_health
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_metrics import (
    Metrics,
    NodeMetrics,
    closest_peers_window,
    parse_text,
)

REAL = Path(__file__).resolve().parents[3] / 'unit' / 'fixtures' / 'metrics' / 'real'
NODE = {'service_name': 'antnode1', 'peer_id': '12D3KooWFake0001', 'status': 'Running', 'connected_peer_ids': None}


def page(*names):
    samples = []
    for name in names:
        samples += parse_text((REAL / name).read_text())
    return NodeMetrics(Metrics(samples))


def judge(first, second):
    params = {'nodes': [], 'min_peers': 5, 'important_peers': [], 'min_routing_peers': 10, 'min_query_success': 0.9,
              'max_error_rate': 0.05, 'max_p95_latency': 0.5, 'sample_window': 5.0, 'expected_modes': {},
              'fail_on': 'never'}
    return dumps(node_health.HealthJudge(params).judge(NODE, first, second, 5.0))


def test_the_issue_case_reads_100_successes_and_1_timeout():
    metrics = page('issue_100_ok_1_timeout.txt')
    assert metrics.closest_peers_ok == 100 and metrics.closest_peers_error == 1


def test_histogram_success_without_any_error_counter_is_judged():
    first, second = page('kad_t0_no_errors.txt'), page('kad_t1_no_errors.txt')
    assert first.closest_peers_error == 0.0  # absent family = no error yet, not "unknown"
    assert closest_peers_window(first, second) == {'ok': 100.0, 'errors': 0.0, 'success_rate': 1.0}
    entry = judge(first, second)
    assert entry['closest_peers']['success_rate'] == 1.0 and entry['state'] == 'healthy'


def test_error_counter_appearing_counts_from_zero():
    entry = judge(page('kad_t0_no_errors.txt'), page('kad_t1_first_error.txt'))
    assert entry['closest_peers'] == {'ok': 100.0, 'errors': 1.0, 'success_rate': pytest.approx(100 / 101, abs=1e-6)}
    assert entry['state'] == 'healthy'


def test_rising_errors_degrade_the_node():
    entry = judge(page('kad_t1_first_error.txt'), page('kad_t2_errors_rising.txt'))
    assert entry['closest_peers'] == {'ok': 10.0, 'errors': 40.0, 'success_rate': 0.2}
    check = next(c for c in entry['failed_checks'] if c['check'] == 'closest_peers')
    assert check['state'] == 'degraded' and check['value'] == 0.2
    assert '20% of closest-peer queries succeeded, below 90%' in check['reason']


def test_no_closest_peer_metrics_at_all_skips_the_check():
    text = (REAL / 'kad_t0_no_errors.txt').read_text()
    bare = '\n'.join(line for line in text.splitlines() if 'closest_peers' not in line)
    first = second = NodeMetrics(Metrics.from_text(bare))
    assert first.closest_peers_ok is None and first.closest_peers_error is None
    assert closest_peers_window(first, second)['success_rate'] is None


def test_version_comes_from_metadata():
    assert page('kad_t0_no_errors.txt').version is None  # not on /metrics
    assert page('kad_t0_no_errors.txt', 'metadata.txt').version == '0.4.7'


@pytest.mark.parametrize('name,group', [('kad_t0_no_errors.txt', 'socket'), ('iroh_magicsock.txt', 'magicsock')])
def test_iroh_counters_under_either_group(name, group):
    iroh = page(name).summary()['iroh']
    assert iroh == {'direct_connections': 7 if group == 'socket' else 5, 'relay_paths': 3, 'holepunch_attempts': 11}


def test_swarm_connections_carry_role_and_protocols():
    series = page('kad_t0_no_errors.txt').metrics.series('libp2p_swarm_connections_established_total')
    assert {labels['role'] for labels, _v in series} == {'Dialer', 'Listener'}
    assert all(labels['protocols'] == '/ip4/udp/quic-v1' for labels, _v in series)
