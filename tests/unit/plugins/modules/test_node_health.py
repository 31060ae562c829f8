"""node_health: each check from recorded metrics, the window, fail_on, and the checker over a fake host."""

from __future__ import annotations

from pathlib import Path

import pytest
from node_fakes import FakeHost, dumps

from ansible_collections.autonomi.network_migration.plugins.module_utils import _health as node_health
from ansible_collections.autonomi.network_migration.plugins.module_utils._antctl import parse_status
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_metrics import Metrics, NodeMetrics

FIXTURES = Path(__file__).resolve().parents[3] / 'unit' / 'fixtures'


def page(name):
    return NodeMetrics(Metrics.from_text((FIXTURES / 'metrics' / name).read_text()))


def node(number=1):
    return parse_status((FIXTURES / 'antctl' / 'status_mixed.json').read_text())[number - 1]


def params(**overrides):
    base = {'nodes': [], 'min_peers': 5, 'important_peers': [], 'min_routing_peers': 10, 'min_query_success': 0.9,
            'max_error_rate': 0.05, 'max_p95_latency': 0.5, 'sample_window': 5.0, 'min_observations': 20,
            'expected_modes': {}, 'fail_on': 'never'}
    base.update(overrides)
    return base


def judge(first, second, elapsed=5.0, target=None, **overrides):
    return dumps(node_health.HealthJudge(params(**overrides)).judge(target or node(), first, second, elapsed))


def checks(entry):
    return {(c['check'], c['transport']): c for c in entry['failed_checks']}


def test_healthy_dual_stack_node():
    entry = judge(page('dual_stack_t0.txt'), page('dual_stack_t1.txt'))
    assert entry['state'] == 'healthy' and entry['failed_checks'] == []
    assert entry['mode'] == 'dual_stack' and entry['routing_table_size'] == 42
    assert set(entry['transports']) == {'libp2p', 'iroh'}
    libp2p = entry['transports']['libp2p']
    assert libp2p['state'] == 'healthy' and libp2p['connected_peers'] == 12
    assert libp2p['error_rate'] == pytest.approx(0.02) and libp2p['p95_latency_seconds'] == pytest.approx(0.25)
    assert entry['closest_peers']['success_rate'] == 1.0


def test_faulted_node_names_every_failed_check():
    entry = judge(page('dual_stack_t0.txt'), page('dual_stack_faulted_t1.txt'))
    assert entry['state'] == 'unhealthy'
    found = checks(entry)
    assert found[('error_rate', 'iroh')]['state'] == 'unhealthy'
    assert found[('error_rate', 'iroh')]['value'] == pytest.approx(0.3)
    assert found[('error_rate', 'iroh')]['threshold'] == 0.05
    assert 'iroh error rate 30.0% over 5.0 s is above 5.0%' in found[('error_rate', 'iroh')]['reason']
    assert found[('latency_p95', 'iroh')]['state'] == 'degraded'
    assert found[('connectivity', 'iroh')]['value'] == 2
    assert found[('routing_table', None)] == {
        'check': 'routing_table', 'transport': None, 'state': 'degraded', 'value': 6, 'threshold': 10,
        'reason': 'antnode1 has 6 peers in its routing table, fewer than 10'}
    assert found[('closest_peers', None)]['value'] == pytest.approx(0.25)
    assert entry['transports']['iroh']['state'] == 'unhealthy'
    assert entry['transports']['libp2p']['state'] == 'healthy'


def test_libp2p_only_node_is_not_judged_on_iroh():
    entry = judge(page('libp2p_only.txt'), page('libp2p_only.txt'))
    assert set(entry['transports']) == {'libp2p'}
    assert entry['state'] == 'healthy'


def test_mode_disagreement_is_unhealthy():
    target = node()
    by_peer = judge(page('dual_stack_t0.txt'), page('dual_stack_t1.txt'),
                    expected_modes={target['peer_id']: 'iroh_primary'})
    assert by_peer['state'] == 'unhealthy' and by_peer['expected_mode'] == 'iroh_primary'
    assert checks(by_peer)[('mode', None)]['reason'] == 'antnode1 runs dual_stack but the ledger expects iroh_primary'
    agreeing = judge(page('dual_stack_t0.txt'), page('dual_stack_t1.txt'), expected_modes={'antnode1': 'dual_stack'})
    assert agreeing['state'] == 'healthy'


def test_legacy_node_without_mode_is_degraded():
    entry = judge(page('legacy_no_mode.txt'), page('legacy_no_mode.txt'))
    assert entry['state'] == 'degraded'
    assert 'does not report ant_node_transport_mode' in entry['failed_checks'][0]['reason']


def test_unreachable_node_is_unhealthy():
    entry = dumps(node_health.HealthJudge(params()).judge(node(4), None, None, 0.0, scrape_error='node is Stopped'))
    assert entry['state'] == 'unhealthy'
    assert entry['failed_checks'][0]['check'] == 'reachable'
    assert 'antnode4 cannot be checked: node is Stopped' in entry['failed_checks'][0]['reason']


def test_single_scrape_skips_rate_checks():
    entry = judge(page('dual_stack_faulted_t1.txt'), None, elapsed=0.0)
    assert {c['check'] for c in entry['failed_checks']} == {'connectivity', 'routing_table'}
    assert entry['closest_peers'] is None and 'error_rate' not in entry['transports']['iroh']


def test_important_peers_from_the_registry_list():
    target = node(2)  # its peer list lacks one of node 1's
    present, absent = target['connected_peer_ids'][0], '12D3KooWHb2ZkB8X2K4n9fRgUqgk6T1wGn8tAa3v3JyKq6Zc2m8P'
    assert absent not in target['connected_peer_ids']
    entry = judge(page('dual_stack_t0.txt'), page('dual_stack_t1.txt'), target=target, important_peers=[present])
    assert entry['state'] == 'healthy'
    entry = judge(page('dual_stack_t0.txt'), page('dual_stack_t1.txt'), target=target,
                  important_peers=[present, absent])
    assert entry['state'] == 'degraded' and checks(entry)[('important_peers', None)]['value'] == [absent]


def test_important_peers_not_verifiable_with_a_count():
    target = dict(node(), connected_peer_ids=None)
    entry = judge(page('dual_stack_t0.txt'), page('dual_stack_t1.txt'), target=target, important_peers=['x'])
    assert entry['state'] == 'healthy' and 'not verified' in entry['notes'][0]


@pytest.mark.parametrize('fail_on,state,fails', [
    ('never', 'unhealthy', False), ('unhealthy', 'degraded', False), ('unhealthy', 'unhealthy', True),
    ('degraded', 'degraded', True), ('degraded', 'healthy', False),
])
def test_fail_on(fail_on, state, fails):
    assert node_health.should_fail(fail_on, state) is fails


def test_checker_over_a_host_takes_two_scrapes_a_window_apart():
    host = FakeHost('dual_stack', 'libp2p_only')
    host.nodes[1].routing = 3
    checker = node_health.HealthChecker(params(sample_window=4.0), host.reader(), clock=host.clock, sleep=host.sleep)
    result = dumps(checker.run())
    assert result['sample_window'] == pytest.approx(4.0, abs=0.1)
    assert result['summary'] == {'healthy': 1, 'degraded': 1, 'unhealthy': 0}
    assert result['state'] == 'degraded' and result['degraded_nodes'] == ['antnode2']
    first = result['nodes'][0]
    assert first['window_seconds'] == pytest.approx(4.0, abs=0.1)
    assert first['transports']['iroh']['request_rate'] == pytest.approx(25.0, rel=0.05)
    assert result['changed'] is False


def test_checker_without_nodes():
    host = FakeHost()
    result = node_health.HealthChecker(params(), host.reader(), clock=host.clock, sleep=host.sleep).run()
    assert result['state'] == 'healthy' and result['nodes'] == []


def test_out_of_range_options():
    assert node_health.check_params(dict(params(), metrics_timeout=5.0)) == []
    problems = node_health.check_params(dict(params(max_error_rate=5, sample_window=-1), metrics_timeout=5.0))
    assert problems == ['max_error_rate is a share between 0 and 1, got 5',
                        'sample_window must not be negative, got -1']
