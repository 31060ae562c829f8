# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Canary statistics: Mann-Whitney U against the baseline, paired iroh vs libp2p, the verdict."""

from __future__ import annotations

import random

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import canary_analysis as ca


def node(name, host, mode, err, lat, req=10.0):
    """err / lat: {transport: value}; overall latency = request-weighted mean of the transports."""
    figures = ca.NodeFigures(node=name, host=host, mode=mode)
    for transport, value in err.items():
        figures.error_rate[transport] = value
        figures.requests[transport] = req
    figures.latency_p95.update(lat)
    figures.overall_latency_p95 = sum(lat.values()) / len(lat)
    return figures


def fleet(canary_err=0.002, canary_iroh_lat=0.15, seed=7, canaries=6, baseline=12):
    rng = random.Random(seed)
    nodes = {}
    for i in range(canaries):
        host = 'canary-%d' % (i % 2)
        nodes['c%d' % i] = node('c%d' % i, host, 'dual_stack',
                                {'libp2p': 0.002 + rng.uniform(0, 0.001), 'iroh': canary_err + rng.uniform(0, 0.001)},
                                {'libp2p': 0.18 + rng.uniform(0, 0.01), 'iroh': canary_iroh_lat + rng.uniform(0, 0.01)})
    for i in range(baseline):
        nodes['b%d' % i] = node('b%d' % i, 'base-%d' % (i % 4), 'libp2p_only',
                                {'libp2p': 0.002 + rng.uniform(0, 0.001)}, {'libp2p': 0.18 + rng.uniform(0, 0.01)})
    return nodes


def by_kind(analysis):
    return {(c.metric, c.kind): c for c in analysis.comparisons}


def test_healthy_canaries_pass_with_score_100():
    analysis = ca.analyse(fleet(), ['canary-0', 'canary-1'])
    assert analysis.verdict == 'pass' and analysis.score == 100.0
    assert len(analysis.canaries) == 6 and len(analysis.baseline) == 12
    assert {c.test for c in analysis.comparisons} == {'mann_whitney_u', 'wilcoxon_signed_rank'}
    for comparison in analysis.comparisons:
        assert comparison.p_value is not None and comparison.data


def test_iroh_errors_fail_both_comparisons_and_the_verdict():
    analysis = ca.analyse(fleet(canary_err=0.3), ['canary-0', 'canary-1'])
    comparisons = by_kind(analysis)
    assert comparisons[('error_rate', 'canary_vs_baseline')].verdict == 'fail'
    assert comparisons[('error_rate', 'canary_vs_baseline')].p_value < 0.01
    assert comparisons[('error_rate', 'iroh_vs_libp2p')].verdict == 'fail'
    assert comparisons[('error_rate', 'iroh_vs_libp2p')].effect == pytest.approx(0.298, abs=0.002)
    # Latency is fine: 2 of 4 pass, and an error-rate failure is critical anyway.
    assert analysis.score == 50.0 and analysis.verdict == 'fail'
    assert 'error_rate canary_vs_baseline failed' in analysis.reason


def test_latency_only_regression_is_marginal():
    # iroh 65 ms slower than libp2p on every canary (beyond the 20 % tolerance): the paired test
    # sees it; the overall node latency (mean of both transports, +18 %) stays within tolerance.
    analysis = ca.analyse(fleet(canary_iroh_lat=0.245), ['canary-0', 'canary-1'])
    comparisons = by_kind(analysis)
    assert comparisons[('latency_p95', 'iroh_vs_libp2p')].verdict == 'fail'
    assert comparisons[('latency_p95', 'canary_vs_baseline')].verdict == 'pass'
    assert analysis.score == 75.0 and analysis.verdict == 'marginal'


def test_significant_but_tiny_difference_passes():
    # Every canary's iroh error rate is 0.5 pp higher: significant, but below the 1 pp tolerance.
    result = ca.compare_paired('error_rate', {'n%d' % i: (0.007 + i * 1e-4, 0.002) for i in range(8)},
                               tolerance=0.01)
    assert result.p_value < 0.05 and result.verdict == 'pass'


def test_too_few_pairs_use_the_sign_of_the_differences():
    worse = ca.compare_paired('error_rate', {'a': (0.3, 0.0), 'b': (0.31, 0.0), 'c': (0.29, 0.0)}, tolerance=0.01)
    assert worse.test == 'sign' and worse.verdict == 'fail' and worse.p_value == pytest.approx(0.125)
    mixed = ca.compare_paired('error_rate', {'a': (0.3, 0.0), 'b': (0.0, 0.0), 'c': (0.29, 0.0)}, tolerance=0.01)
    assert mixed.verdict == 'pass'


def test_identical_pairs_pass():
    result = ca.compare_paired('error_rate', {'n%d' % i: (0.002, 0.002) for i in range(6)})
    assert result.verdict == 'pass' and result.p_value == 1.0


def test_not_enough_nodes_is_no_data_and_inconclusive():
    nodes = fleet(canaries=2, baseline=2)
    analysis = ca.analyse(nodes, ['canary-0', 'canary-1'])
    assert analysis.verdict == 'inconclusive' and analysis.score is None
    assert 'at least 3 each needed' in analysis.reason


def test_baseline_is_libp2p_only_nodes_off_the_canary_hosts():
    nodes = fleet()
    nodes['x'] = node('x', 'canary-0', 'libp2p_only', {'libp2p': 0.5}, {'libp2p': 2.0})
    nodes['y'] = node('y', 'base-0', 'dual_stack', {'libp2p': 0.5, 'iroh': 0.5}, {'libp2p': 2.0, 'iroh': 2.0})
    analysis = ca.analyse(nodes, ['canary-0', 'canary-1'], baseline_hosts=['base-0', 'base-1'])
    assert 'x' not in analysis.canaries + analysis.baseline and 'y' not in analysis.baseline
    assert analysis.baseline == sorted('b%d' % i for i in range(12) if i % 4 in (0, 1))


class FakeClient:
    def __init__(self):
        self.queries = 0

    def query(self, promql):
        self.queries += 1
        if promql.startswith('ant_node_transport_mode'):
            return [{'metric': {'host': 'h1', 'service_name': 'antnode1', 'mode': 'dual_stack'}, 'value': 1.0}]
        if promql.startswith('histogram_quantile(0.95, sum by (instance, host, service_name, le)'):
            return [{'metric': {'host': 'h1', 'service_name': 'antnode1'}, 'value': 0.2}]
        if promql.startswith('histogram_quantile'):
            return [{'metric': {'host': 'h1', 'service_name': 'antnode1', 'transport': 'iroh'}, 'value': float('nan')}]
        value = 0.1 if promql.startswith('(') else 4.0
        return [{'metric': {'host': 'h1', 'service_name': 'antnode1', 'transport': t}, 'value': value}
                for t in ('libp2p', 'iroh')]


def test_collect_makes_five_queries_and_drops_nan():
    client = FakeClient()
    nodes = ca.collect(client, 'ant_node', '5m')
    assert client.queries == 5
    figures = nodes['h1/antnode1']
    assert figures.mode == 'dual_stack' and figures.latency_p95 == {}
    assert figures.error_rate == {'libp2p': 0.1, 'iroh': 0.1} and figures.overall_error_rate == pytest.approx(0.1)
    assert figures.overall_latency_p95 == 0.2
