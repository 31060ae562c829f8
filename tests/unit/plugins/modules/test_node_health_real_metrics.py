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


def judge(first, second, **overrides):
    params = {'nodes': [], 'min_peers': 5, 'important_peers': [], 'min_routing_peers': 10, 'min_query_success': 0.9,
              'max_error_rate': 0.05, 'max_p95_latency': 0.5, 'sample_window': 5.0, 'min_observations': 20,
              'expected_modes': {}, 'fail_on': 'never'}
    params.update(overrides)
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


def kad_page(ok, errors):
    """A node's closest-peer figures as prometheus-client 0.23.1 prints them (integer counts; the error family
    declared with no sample until the first error)."""
    lines = ['# HELP libp2p_kad_query_result_get_closest_peers_ok Number of closest peers returned.',
             '# TYPE libp2p_kad_query_result_get_closest_peers_ok histogram',
             f'libp2p_kad_query_result_get_closest_peers_ok_sum {ok * 17}.0',
             f'libp2p_kad_query_result_get_closest_peers_ok_count {ok}',
             f'libp2p_kad_query_result_get_closest_peers_ok_bucket{{le="+Inf"}} {ok}',
             '# HELP libp2p_kad_query_result_get_closest_peers_error Number of failed queries.',
             '# TYPE libp2p_kad_query_result_get_closest_peers_error counter']
    if errors:
        lines.append(f'libp2p_kad_query_result_get_closest_peers_error_total{{error="Timeout"}} {errors}')
    lines += ['ant_networking_peers_in_routing_table 40', 'ant_node_transport_mode{mode="libp2p_only"} 1',
              'ant_networking_transport_connected_peers{transport="libp2p"} 12', '# EOF']
    return NodeMetrics(Metrics.from_text('\n'.join(lines) + '\n'))


def test_one_timeout_among_two_queries_is_insufficient_data_not_a_degraded_node():
    # A low query rate: over the window, one success and the first timeout (50 % success).
    entry = judge(kad_page(3, 0), kad_page(4, 1))
    assert entry['closest_peers'] == {'ok': 1.0, 'errors': 1.0, 'success_rate': 0.5}
    assert entry['state'] == 'healthy' and not [c for c in entry['failed_checks'] if c['check'] == 'closest_peers']
    assert [i for i in entry['insufficient_data'] if i['check'] == 'closest_peers'] == [{
        'check': 'closest_peers', 'transport': None, 'observations': 2, 'minimum': 20,
        'reason': 'antnode1: closest peers not judged, insufficient data: 2 closest-peer query(ies) in 5.0 s, '
                  'at least 20 needed'}]


def test_enough_queries_are_judged_and_the_minimum_is_configurable():
    many = judge(kad_page(0, 0), kad_page(10, 15))       # 25 queries, 40 % success

    def queries_unjudged(entry):
        return [i for i in entry['insufficient_data'] if i['check'] == 'closest_peers']

    assert [c['check'] for c in many['failed_checks']] == ['closest_peers'] and queries_unjudged(many) == []
    low = judge(kad_page(3, 0), kad_page(4, 1), min_observations=2)
    assert low['state'] == 'degraded' and queries_unjudged(low) == []


def test_few_requests_are_not_judged_for_error_rate_or_latency():
    def requests(ok, errors):
        text = ('ant_node_transport_mode{mode="libp2p_only"} 1\n'
                'ant_networking_transport_connected_peers{transport="libp2p"} 12\n'
                'ant_networking_peers_in_routing_table 40\n'
                f'ant_networking_transport_requests_total{{transport="libp2p",outcome="success"}} {ok}\n'
                f'ant_networking_transport_requests_total{{transport="libp2p",outcome="error"}} {errors}\n')
        return NodeMetrics(Metrics.from_text(text))

    few = judge(requests(10, 0), requests(13, 1))        # 4 requests, 25 % errors
    assert few['state'] == 'healthy'
    assert [(i['check'], i['transport'], i['observations']) for i in few['insufficient_data']
            if i['check'] == 'error_rate'] == [('error_rate', 'libp2p', 4)]
    enough = judge(requests(10, 0), requests(29, 2))     # 21 requests, 9.5 % errors
    assert enough['state'] == 'unhealthy'
    assert [i for i in enough['insufficient_data'] if i['check'] == 'error_rate'] == []
