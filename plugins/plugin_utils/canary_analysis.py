# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Canary analysis: canaries against the libp2p-only baseline, and each canary against itself.

Two kinds of comparison over per-node figures of the same window (error rate, p95 latency):

* **canary vs baseline** (Kayenta's approach): the canary nodes' figures against the figures
  of the nodes still in ``libp2p_only``, with a one-sided Mann-Whitney U test ("are canaries
  worse?"). Rank-based: no normality assumption, robust to one odd node.
* **iroh vs libp2p on the same node** (only a dual-stack fleet allows it): each canary's iroh
  figure against its own libp2p figure, same peers, same window, with a one-sided Wilcoxon
  signed-rank test on the differences. Pairing removes the node-to-node spread.

A comparison fails when the test is significant (p < alpha) *and* the difference is larger than
a tolerance (statistically significant but operationally irrelevant differences pass). With too
few pairs for the signed-rank test to ever reach alpha (fewer than 5 at alpha 0.05), it falls
back to the sign of the differences: every pair worse by more than the tolerance fails.

Score = 100 x passed / judged comparisons; pass >= pass_score, marginal >= marginal_score, else
fail. A failed error-rate comparison is critical: the verdict is fail whatever the score. No
judged comparison at all is ``inconclusive``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import LIBP2P_ONLY
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules import (
    M_DURATION_BUCKET,
    M_MODE,
    M_REQUESTS,
    host_matcher,
    quote,
)

PASS, MARGINAL, FAIL, INCONCLUSIVE, NO_DATA = 'pass', 'marginal', 'fail', 'inconclusive', 'no_data'
METRICS = ('error_rate', 'latency_p95')
CRITICAL_METRICS = ('error_rate',)


# ---------------------------------------------------------------------------- data
@dataclass
class NodeFigures:
    node: str
    host: str
    mode: str | None = None
    error_rate: dict = field(default_factory=dict)   # transport -> ratio
    requests: dict = field(default_factory=dict)     # transport -> requests/s
    latency_p95: dict = field(default_factory=dict)  # transport -> seconds
    overall_latency_p95: float | None = None

    @property
    def overall_error_rate(self):
        """Request-weighted error rate over the node's transports (what its clients see)."""
        total = sum(self.requests.get(t, 0.0) for t in self.error_rate)
        if total <= 0:
            return None
        return sum(self.error_rate[t] * self.requests.get(t, 0.0) for t in self.error_rate) / total

    def overall(self, metric):
        return self.overall_error_rate if metric == 'error_rate' else self.overall_latency_p95


def queries(job, window, hosts=None):
    """The per-node queries (one per figure, grouped by instance): their number is fixed."""
    matchers = ['job=%s' % quote(job)]
    if hosts:
        matchers.append(host_matcher(hosts))
    sel = ','.join(matchers)
    by = 'instance, host, service_name, transport'
    requests = 'sum by (%s) (rate(%s{%s}[%s]))' % (by, M_REQUESTS, sel, window)
    errors = 'sum by (%s) (rate(%s{%s,outcome="error"}[%s]))' % (by, M_REQUESTS, sel, window)
    return {
        'requests': requests,
        'error_rate': '(%s or %s * 0) / (%s > 0)' % (errors, requests, requests),
        'latency_p95': 'histogram_quantile(0.95, sum by (%s, le) (rate(%s{%s}[%s])))'
                       % (by, M_DURATION_BUCKET, sel, window),
        'overall_latency_p95': 'histogram_quantile(0.95, sum by (instance, host, service_name, le) '
                               '(rate(%s{%s}[%s])))' % (M_DURATION_BUCKET, sel, window),
        'mode': '%s{%s} == 1' % (M_MODE, sel),
    }


def _node_id(labels):
    if labels.get('host') and labels.get('service_name'):
        return '%s/%s' % (labels['host'], labels['service_name'])
    return labels.get('instance', '?')


def collect(client, job, window, hosts=None):
    """{node_id: NodeFigures} from Prometheus (5 queries, whatever the fleet size)."""
    nodes = {}

    def node(labels):
        key = _node_id(labels)
        if key not in nodes:
            nodes[key] = NodeFigures(node=key, host=labels.get('host', ''))
        return nodes[key]

    for name, promql in queries(job, window, hosts).items():
        for sample in client.query(promql):
            labels, value = sample['metric'], sample['value']
            if name == 'mode':
                node(labels).mode = labels.get('mode')
                continue
            if value is None or math.isnan(value):
                continue
            if name == 'overall_latency_p95':
                node(labels).overall_latency_p95 = value
            else:
                getattr(node(labels), name)[labels.get('transport', '')] = value
    return nodes


# ---------------------------------------------------------------------------- statistics
@dataclass
class Comparison:
    metric: str
    kind: str                 # canary_vs_baseline | iroh_vs_libp2p
    test: str                 # mann_whitney_u | wilcoxon_signed_rank | sign
    verdict: str
    critical: bool = False
    p_value: float | None = None
    statistic: float | None = None
    effect: float | None = None       # median difference (worse is positive)
    tolerance: float | None = None
    reason: str = ''
    data: dict = field(default_factory=dict)

    def as_dict(self):
        keys = ('metric', 'kind', 'test', 'verdict', 'critical', 'p_value', 'statistic', 'effect', 'tolerance',
                'reason', 'data')
        return {k: getattr(self, k) for k in keys}


def _tolerance(metric, reference, error_rate_tolerance, latency_tolerance):
    if metric == 'error_rate':
        return error_rate_tolerance
    return latency_tolerance * max(reference or 0.0, 0.001)


def compare_groups(metric, canary, baseline, alpha=0.05, tolerance=0.0, min_nodes=3):
    """Mann-Whitney U, one-sided: are the canaries' values larger (worse) than the baseline's?"""
    from scipy.stats import mannwhitneyu

    data = {'canary': dict(canary), 'baseline': dict(baseline)}
    result = Comparison(metric=metric, kind='canary_vs_baseline', test='mann_whitney_u', verdict=NO_DATA,
                        critical=metric in CRITICAL_METRICS, tolerance=tolerance, data=data)
    if len(canary) < min_nodes or len(baseline) < min_nodes:
        result.reason = '%d canary and %d baseline node(s) with data, at least %d each needed' % (
            len(canary), len(baseline), min_nodes)
        return result
    a, b = list(canary.values()), list(baseline.values())
    test = mannwhitneyu(a, b, alternative='greater')
    result.statistic, result.p_value = float(test.statistic), float(test.pvalue)
    result.effect = statistics.median(a) - statistics.median(b)
    worse = result.p_value < alpha and result.effect > tolerance
    result.verdict = FAIL if worse else PASS
    result.reason = 'canary median %s vs baseline median %s (difference %+.4g, tolerance %.4g), p = %.3g' % (
        _fmt(statistics.median(a)), _fmt(statistics.median(b)), result.effect, tolerance, result.p_value)
    return result


def compare_paired(metric, pairs, alpha=0.05, tolerance=0.0, min_nodes=3):
    """Each canary's iroh value against its own libp2p value (Wilcoxon signed-rank, one-sided)."""
    from scipy.stats import wilcoxon

    data = {node: {'iroh': i, 'libp2p': lp} for node, (i, lp) in pairs.items()}
    result = Comparison(metric=metric, kind='iroh_vs_libp2p', test='wilcoxon_signed_rank', verdict=NO_DATA,
                        critical=metric in CRITICAL_METRICS, tolerance=tolerance, data=data)
    if len(pairs) < min_nodes:
        result.reason = '%d canary node(s) with both iroh and libp2p data, at least %d needed' % (
            len(pairs), min_nodes)
        return result
    diffs = [i - lp for i, lp in pairs.values()]
    result.effect = statistics.median(diffs)
    if all(abs(d) < 1e-12 for d in diffs):
        result.p_value, result.statistic = 1.0, 0.0
    elif 0.5 ** len(diffs) >= alpha:
        # Too few pairs for any test to reach alpha: judge the sign of every difference.
        from scipy.stats import binomtest

        result.test = 'sign'
        worse = sum(1 for d in diffs if d > tolerance)
        result.p_value = float(binomtest(worse, len(diffs), 0.5, alternative='greater').pvalue)
        result.verdict = FAIL if all(d > tolerance for d in diffs) else PASS
        result.reason = ('%d pair(s) are too few for a signed-rank test at alpha %g; %d of them worse by more '
                         'than %.4g (sign test p = %.3g)' % (len(diffs), alpha, worse, tolerance, result.p_value))
        return result
    else:
        test = wilcoxon(diffs, alternative='greater', zero_method='zsplit')
        result.statistic, result.p_value = float(test.statistic), float(test.pvalue)
    worse = result.p_value < alpha and result.effect > tolerance
    result.verdict = FAIL if worse else PASS
    result.reason = 'median iroh - libp2p difference %+.4g (tolerance %.4g) over %d node(s), p = %.3g' % (
        result.effect, tolerance, len(diffs), result.p_value)
    return result


def _fmt(value):
    return '%.4g' % value


@dataclass
class Analysis:
    verdict: str
    score: float | None
    comparisons: list
    canaries: list
    baseline: list
    reason: str = ''

    def as_dict(self):
        return {'verdict': self.verdict, 'score': self.score, 'reason': self.reason,
                'comparisons': [c.as_dict() for c in self.comparisons],
                'canaries': self.canaries, 'baseline': self.baseline}


def analyse(nodes, canary_hosts, baseline_hosts=None, alpha=0.05, error_rate_tolerance=0.01,
            latency_tolerance=0.2, pass_score=95.0, marginal_score=75.0, min_nodes=3):
    """Judge the canaries; ``nodes`` is ``collect()``'s mapping.

    Canaries: nodes of ``canary_hosts`` that run iroh (not ``libp2p_only``). Baseline: nodes in
    ``libp2p_only`` on ``baseline_hosts`` (default: every host that is not a canary host).
    """
    canary_hosts = set(canary_hosts)
    canaries = {k: n for k, n in nodes.items() if n.host in canary_hosts and n.mode and n.mode != LIBP2P_ONLY}
    baseline = {k: n for k, n in nodes.items() if n.mode == LIBP2P_ONLY and n.host not in canary_hosts
                and (not baseline_hosts or n.host in set(baseline_hosts))}
    comparisons = []
    for metric in METRICS:
        canary_values = {k: n.overall(metric) for k, n in canaries.items() if n.overall(metric) is not None}
        baseline_values = {k: n.overall(metric) for k, n in baseline.items() if n.overall(metric) is not None}
        reference = statistics.median(baseline_values.values()) if baseline_values else None
        comparisons.append(compare_groups(
            metric, canary_values, baseline_values, alpha=alpha, min_nodes=min_nodes,
            tolerance=_tolerance(metric, reference, error_rate_tolerance, latency_tolerance)))
    for metric in METRICS:
        pairs = {}
        for key, node in canaries.items():
            figures = getattr(node, metric)
            if 'iroh' in figures and 'libp2p' in figures:
                pairs[key] = (figures['iroh'], figures['libp2p'])
        reference = statistics.median(pair[1] for pair in pairs.values()) if pairs else None
        comparisons.append(compare_paired(
            metric, pairs, alpha=alpha, min_nodes=min_nodes,
            tolerance=_tolerance(metric, reference, error_rate_tolerance, latency_tolerance)))
    judged = [c for c in comparisons if c.verdict != NO_DATA]
    analysis = Analysis(verdict=INCONCLUSIVE, score=None, comparisons=comparisons,
                        canaries=sorted(canaries), baseline=sorted(baseline))
    if not judged:
        analysis.reason = 'no comparison had enough data: ' + '; '.join(c.reason for c in comparisons)
        return analysis
    analysis.score = round(100.0 * sum(1 for c in judged if c.verdict == PASS) / len(judged), 1)
    failed = [c for c in judged if c.verdict == FAIL]
    if any(c.critical for c in failed):
        analysis.verdict = FAIL
    elif analysis.score >= pass_score:
        analysis.verdict = PASS
    elif analysis.score >= marginal_score:
        analysis.verdict = MARGINAL
    else:
        analysis.verdict = FAIL
    analysis.reason = 'score %g (%d of %d comparisons pass)%s' % (
        analysis.score, len(judged) - len(failed), len(judged),
        ''.join('; %s %s failed: %s' % (c.metric, c.kind, c.reason) for c in failed))
    return analysis
