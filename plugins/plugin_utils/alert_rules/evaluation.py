# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Evaluating the rules against Prometheus for a scope (the fleet or some hosts): the queries a
gate sends, and the pass / fail / no_data / skipped verdict of each rule.

A rule on a rate of requests is judged only over ``min_observations`` requests in the rate window of
its scope (``rule_promql`` has no value below it): "insufficient data" is a ``no_data`` verdict with
that reason - no verdict, neither a pass nor a fail (the gate's inconclusive)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import (
    FALLBACK_TRANSPORTS,
    MODE_TRANSPORTS,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules.model import (
    Rule,
    parse_duration,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules.promql import (
    M_MODE,
    _sel,
    host_matcher,
    observations_expr,
    quote,
    rule_promql,
)

SKIPPED, NO_DATA, PASS, FAIL = 'skipped', 'no_data', 'pass', 'fail'


@dataclass
class Scope:
    """What a gate evaluation looks at: the fleet (hosts None) or some hosts."""
    hosts: list | None = None

    def describe(self):
        return 'fleet' if not self.hosts else 'hosts %s' % ', '.join(self.hosts)


def _stat(expr, name):
    return 'label_replace(%s, "stat", "%s", "", "")' % (expr, name)


def scope_query(ruleset, scope):
    """One query: targets, targets up and active nodes per mode in the scope."""
    matchers = ['job=%s' % quote(ruleset.job)]
    if scope.hosts:
        matchers.append(host_matcher(scope.hosts))
    up = _sel('up', matchers)
    return ' or '.join([
        _stat('count(%s)' % up, 'targets'),
        _stat('sum(%s)' % up, 'targets_up'),
        _stat('count by (mode) (%s == 1)' % _sel(M_MODE, matchers), 'mode'),
    ])


def window_query(rule, ruleset, scope, by=()):
    """The judged query of a rule: its worst value over its ``for`` window (or now)."""
    expr = rule_promql(rule, ruleset, hosts=scope.hosts, by=by)
    window = rule.for_seconds
    step = parse_duration(ruleset.step)
    if window < step:
        return expr, None
    sub = '(%s)[%s:%s]' % (expr, rule.for_, ruleset.step)
    return '%s_over_time(%s)' % (rule.worst, sub), sub


def judged_query(rule, ruleset, scope):
    """(query shown to the operator, query sent: value, sample count and, for a rule on a request rate, the
    requests in the rate window now, in one request)."""
    shown, sub = window_query(rule, ruleset, scope)
    samples = 'count_over_time(%s)' % sub if sub else 'count(%s)' % rule_promql(rule, ruleset, hosts=scope.hosts)
    sent = '%s or %s' % (_stat(shown, 'value'), _stat(samples, 'samples'))
    if ruleset.min_observations(rule):
        sent += ' or %s' % _stat(observations_expr(rule, ruleset, hosts=scope.hosts), 'observations')
    return shown, sent


@dataclass
class ScopeFacts:
    targets: int = 0
    targets_up: int = 0
    nodes_by_transport: dict = field(default_factory=dict)
    # Nodes that run a transport as more than a fallback (FALLBACK_TRANSPORTS): libp2p_only and dual_stack
    # nodes for libp2p, every node that runs iroh for iroh. None: not read (every node prefers what it runs).
    nodes_preferring: dict | None = None

    def as_dict(self):
        return {'targets': self.targets, 'targets_up': self.targets_up,
                'nodes_by_transport': dict(self.nodes_by_transport),
                'nodes_preferring': dict(self.nodes_by_transport if self.nodes_preferring is None
                                         else self.nodes_preferring)}

    def fallback_only(self, transport):
        """Whether every node of the scope that runs ``transport`` keeps it only as a fallback."""
        return (self.nodes_preferring is not None and bool(self.nodes_by_transport.get(transport))
                and not self.nodes_preferring.get(transport))


def read_scope(client, ruleset, scope):
    facts = ScopeFacts(nodes_by_transport={'libp2p': 0, 'iroh': 0}, nodes_preferring={'libp2p': 0, 'iroh': 0})
    with_mode = 0
    for sample in client.query(scope_query(ruleset, scope)):
        labels, value = sample['metric'], sample['value']
        stat = labels.get('stat')
        if stat == 'targets':
            facts.targets = int(value)
        elif stat == 'targets_up':
            facts.targets_up = int(value)
        elif stat == 'mode':
            with_mode += int(value)
            mode = labels.get('mode')
            for transport in MODE_TRANSPORTS.get(mode, ()):
                facts.nodes_by_transport[transport] += int(value)
                if transport not in FALLBACK_TRANSPORTS.get(mode, ()):
                    facts.nodes_preferring[transport] += int(value)
    # A node that exports no transport mode predates dual-stack: it runs libp2p only.
    legacy = max(0, facts.targets_up - with_mode)
    facts.nodes_by_transport['libp2p'] += legacy
    facts.nodes_preferring['libp2p'] += legacy
    return facts


@dataclass
class RuleResult:
    rule: Rule
    verdict: str
    value: float | None = None
    samples: int = 0
    query: str = ''
    window: str = ''
    reason: str = ''
    hosts: dict = field(default_factory=dict)
    observations: float | None = None   # requests in the rate window now (rules on a request rate)
    min_observations: int = 0
    filling: bool = False   # some points in the window, fewer than needed: evaluating again may judge it

    @property
    def excess(self):
        """How far past the threshold (value - threshold for > rules), or None."""
        if self.value is None:
            return None
        return self.value - self.rule.threshold

    def as_dict(self):
        return {
            'id': self.rule.id, 'name': self.rule.name, 'severity': self.rule.severity,
            'transport': self.rule.transport, 'metric': self.rule.metric,
            'comparison': self.rule.comparison, 'threshold': self.rule.threshold,
            'value': self.value, 'verdict': self.verdict, 'samples': self.samples,
            'query': self.query, 'window': self.window, 'reason': self.reason,
            'hosts': dict(self.hosts), 'observations': self.observations,
            'min_observations': self.min_observations,
        }

    def describe(self):
        """One line for a failure message: rule, value vs threshold, by how much, where."""
        value = _show(self.value, self.rule.unit)
        line = '%s (%s): %s %s %s' % (self.rule.id, self.rule.severity, value, self.rule.comparison,
                                      _show(self.rule.threshold, self.rule.unit))
        if self.value is not None and self.rule.threshold:
            line += ' (%s%s, %.1fx the threshold)' % ('+' if self.excess >= 0 else '',
                                                      _show(self.excess, self.rule.unit),
                                                      self.value / self.rule.threshold)
        line += ' over %s' % self.window
        if self.hosts:
            line += ' on %s' % ', '.join('%s (%s)' % (h, _show(v, self.rule.unit)) for h, v in self.hosts.items())
        return line


def _show(value, unit):
    if value is None:
        return 'no data'
    if unit == 'seconds':
        return '%.0f ms' % (value * 1000)
    return '%.4g' % value


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def possible_samples(rule, ruleset):
    """How many points the judged window of a rule can hold (1 for an instant rule)."""
    step = parse_duration(ruleset.step)
    return int(rule.for_seconds // step) + 1 if rule.for_seconds >= step else 1


def evaluate_rule(client, rule, ruleset, scope, facts, min_samples=1):
    """Judge one rule for a scope: pass, fail, no_data (inconclusive) or skipped.

    ``min_samples`` is capped at what the rule's window can hold.
    """
    min_samples = max(1, min(min_samples, possible_samples(rule, ruleset)))
    shown, sent = judged_query(rule, ruleset, scope)
    result = RuleResult(rule=rule, verdict=NO_DATA, query=shown, window=rule.for_,
                        min_observations=ruleset.min_observations(rule))
    if rule.transport in ('libp2p', 'iroh') and facts.nodes_by_transport.get(rule.transport, 0) == 0:
        result.verdict = SKIPPED
        result.reason = 'no node in %s runs %s' % (scope.describe(), rule.transport)
        return result
    value = None
    for sample in client.query(sent):
        stat = sample['metric'].get('stat')
        if stat == 'value':
            value = _float(sample['value'])
        elif stat == 'samples':
            result.samples = int(_float(sample['value']) or 0)
        elif stat == 'observations':
            result.observations = _float(sample['value'])
    if value is not None and math.isnan(value):
        value = None
    result.value = value
    short = value is None or result.samples < min_samples
    if short and facts.fallback_only(rule.transport):
        # The nodes send little on a fallback by design (iroh_primary: a tenth of libp2p's share): waiting
        # would not bring the data. The rules on the transport they prefer judge them; the alert stays silent
        # below min_observations alike.
        result.verdict = SKIPPED
        result.reason = ('%s is only a fallback on every node in %s that runs it (%s)%s: not judged without '
                         'enough data' % (rule.transport, scope.describe(), _fallback_modes(rule.transport),
                                          _requests_now(result, ruleset)))
        return result
    if (value is None and result.min_observations and result.observations is not None
            and result.observations < result.min_observations):
        result.reason = ('insufficient data: %d request(s) in the last %s in %s, at least %d needed before the '
                         'rate is judged (neither a pass nor a fail)'
                         % (int(result.observations or 0), ruleset.settings['rate_window'], scope.describe(),
                            result.min_observations))
        return result
    if short:
        # Some points but too few: the window is still filling (nodes just switched, a slow evaluation) or some
        # of its points had too few requests to be judged. The gate evaluates again before it concludes.
        result.filling = value is not None
        floor = ''
        if result.min_observations:
            floor = (' (a point counts only with at least %d requests in its rate window%s)'
                     % (result.min_observations, _requests_now(result, ruleset, prefix='; ')))
        result.reason = ('%d sample(s) in %s, at least %d needed%s; are the recording rules installed '
                         '(playbooks/monitoring.yml) and the nodes scraped?'
                         % (result.samples, rule.for_, min_samples, floor))
        return result
    if rule.breaches(value):
        result.verdict = FAIL
        result.reason = 'value %s %s threshold %s' % (_show(value, rule.unit), rule.comparison,
                                                      _show(rule.threshold, rule.unit))
        result.hosts = breaching_hosts(client, rule, ruleset, scope)
    else:
        result.verdict = PASS
    return result


def _fallback_modes(transport):
    return ', '.join(mode for mode, kept in sorted(FALLBACK_TRANSPORTS.items()) if transport in kept)


def _requests_now(result, ruleset, prefix=' and '):
    if result.observations is None:
        return ''
    return '%s%d request(s) in the last %s now' % (prefix, int(result.observations), ruleset.settings['rate_window'])


def breaching_hosts(client, rule, ruleset, scope):
    """Hosts whose own figure breaches the rule now: {host: value}, worst first (one query).

    The current value, not the worst over the window: a host that crossed the threshold a
    few seconds after the others is named too.
    """
    query = rule_promql(rule, ruleset, hosts=scope.hosts, by=('host',))
    hosts = {}
    for sample in client.query(query):
        host = sample['metric'].get('host')
        value = _float(sample['value'])
        if host and rule.breaches(value):
            hosts[host] = value
    return dict(sorted(hosts.items(), key=lambda kv: kv[1], reverse=rule.worst == 'min'))


def evaluate(client, ruleset, scope, rules=None, min_samples=1, min_targets=1):
    """One evaluation of ``rules`` (default: every enabled rule) for a scope.

    Query count: 1 (scope) + 1 per rule + 1 per failing rule, whatever the fleet size.
    Returns (ScopeFacts, [RuleResult]). Prometheus errors propagate (fail closed).
    """
    rules = ruleset.select() if rules is None else rules
    facts = read_scope(client, ruleset, scope)
    if facts.targets_up < min_targets:
        reason = ('%d node target(s) up in %s (of %d known to Prometheus), at least %d needed'
                  % (facts.targets_up, scope.describe(), facts.targets, min_targets))
        return facts, [RuleResult(rule=r, verdict=NO_DATA, window=r.for_, reason=reason,
                                  query=window_query(r, ruleset, scope)[0]) for r in rules]
    return facts, [evaluate_rule(client, r, ruleset, scope, facts, min_samples) for r in rules]
