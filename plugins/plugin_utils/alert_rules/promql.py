# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PromQL of the figures and rules: one builder for the recording rules, the alerts and the gate,
so they all compute the same number."""

from __future__ import annotations

import json
import re

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules.model import (
    FIGURES,
    AlertRulesError,
    parse_duration,
)

# Raw node metrics (docs/node-interface.md).
M_REQUESTS = 'ant_networking_transport_requests_total'
M_DURATION_BUCKET = 'ant_networking_transport_request_duration_seconds_bucket'
M_TRANSPORT_PEERS = 'ant_networking_transport_connected_peers'
M_MODE = 'ant_node_transport_mode'
M_ROUTING_TABLE = 'ant_networking_peers_in_routing_table'
M_NETWORK_SIZE = 'ant_networking_estimated_network_size'
M_DIAL_FAILURES = 'ant_networking_transport_dial_failures_total'

# Base recording rules: the only series the figures (and the gate) aggregate.
R_REQUESTS = 'host_transport:ant_transport_requests:rate'
R_ERRORS = 'host_transport:ant_transport_errors:rate'
R_BUCKETS = 'host_transport_le:ant_transport_request_duration_seconds_bucket:rate'
R_PEERS = 'host_transport:ant_transport_connected_peers:sum'
R_NODES = 'host_transport:ant_transport_nodes:count'
R_RT_DEFICIT = 'instance:ant_routing_table_deficit:ratio'
R_DIAL_UNREACHABLE = 'instance:ant_dial_unreachable:rate'
R_NODE_RISK = 'instance:ant_partition_risk:ratio'

# Aggregation levels of the recording rules: level name -> grouping labels.
LEVELS = {
    'host_transport': ('host', 'transport'),
    'transport': ('transport',),
    'host': ('host',),
    'fleet': (),
}


# ---------------------------------------------------------------------------- PromQL
def quote(value):
    """A PromQL string literal."""
    return json.dumps(str(value))


def host_matcher(hosts):
    """``host=~"a|b"`` for a list of host names (regex-escaped; Prometheus anchors it)."""
    return 'host=~%s' % quote('|'.join(re.escape(str(h)) for h in hosts))


def _sel(metric, matchers):
    return '%s{%s}' % (metric, ','.join(matchers)) if matchers else metric


def _agg(op, by, expr):
    return '%s by (%s) (%s)' % (op, ', '.join(by), expr) if by else '%s(%s)' % (op, expr)


def _on(by):
    return 'on(%s)' % ', '.join(by)


def figure_expr(figure, settings, by=(), transport=None, hosts=None):
    """PromQL of a figure aggregated ``by`` labels, from the base recording rules.

    ``transport``: restrict to one transport (None/'all': every transport);
    ``hosts``: restrict to these hosts (None: the fleet). The recording rules of the
    levels and the gate both call this, so they compute the same number.
    """
    matchers = []
    if transport and transport != 'all':
        matchers.append('transport=%s' % quote(transport))
    if hosts:
        matchers.append(host_matcher(hosts))
    by = tuple(by)

    def s(metric, extra=()):
        return _agg('sum', by, _sel(metric, matchers + list(extra)))

    if figure == 'request_rate':
        return s(R_REQUESTS)
    if figure == 'error_rate':
        return '%s / (%s > 0)' % (s(R_ERRORS), s(R_REQUESTS))
    if figure.startswith('latency_p'):
        q = int(figure[len('latency_p'):]) / 100.0
        buckets = _agg('sum', by + ('le',), _sel(R_BUCKETS, matchers))
        seen = '(%s > 0)' % s(R_BUCKETS, ['le="+Inf"'])
        return 'histogram_quantile(%s, %s) and %s %s' % (q, buckets, _on(by), seen)
    if figure == 'active_connections':
        return s(R_PEERS)
    if figure == 'health_score':
        health = settings['health']
        success = '(1 - (%s))' % figure_expr('error_rate', settings, by, transport, hosts)
        p95 = figure_expr('latency_p95', settings, by, transport, hosts)
        latency = 'clamp(1 - (%s) / %s, 0, 1)' % (p95, health['latency_budget_seconds'])
        peers = 'clamp_max(%s / (%s > 0) / %s, 1)' % (s(R_PEERS), s(R_NODES), health['target_peers'])
        return '0.5 * %s + 0.3 * %s + 0.2 * %s' % (success, latency, peers)
    if figure == 'partition_risk':
        node_matchers = [host_matcher(hosts)] if hosts else []
        return _agg('avg', by, _sel(R_NODE_RISK, node_matchers))
    raise AlertRulesError('unknown figure %r; known: %s' % (figure, ', '.join(FIGURES)))


def recorded_name(figure, level):
    return FIGURES[figure][0].format(level=level)


def observations_expr(rule, ruleset, hosts=None, by=()):
    """Requests of the rule's transport in the rate window, for a scope: the observations its rate is made of
    (the recorded request rate times the window, so the same series as the figure)."""
    seconds = parse_duration(ruleset.settings['rate_window'])
    rate = figure_expr('request_rate', ruleset.settings, by=by, transport=rule.transport, hosts=hosts)
    return '%s * %s' % (rate, _number(seconds))


def rule_promql(rule, ruleset, hosts=None, by=()):
    """The value a rule compares with its threshold, for a scope (no comparison).

    A rule on a rate of requests has a value only where the scope saw at least ``min_observations``
    requests in the rate window: fewer cannot tell a rate from noise (one error in ten requests is
    10 %), so the gate reports insufficient data and the alert does not fire.
    """
    if rule.metric:
        value = figure_expr(rule.metric, ruleset.settings, by=by, transport=rule.transport, hosts=hosts)
        minimum = ruleset.min_observations(rule)
        if minimum:
            observed = observations_expr(rule, ruleset, hosts, by)
            value = '((%s) and %s (%s >= %s))' % (value, _on(by), observed, minimum)
        return value
    selector = ['job=%s' % quote(ruleset.job)]
    if hosts:
        selector.append(host_matcher(hosts))
    expr = rule.promql.replace('$selector', ','.join(selector))
    return _agg('max', by, expr) if by else expr


def alert_expr(rule, ruleset):
    """The alerting rule's expression: the fleet-wide recorded figure against the threshold."""
    if rule.metric:
        level = 'fleet' if rule.transport == 'all' else 'transport'
        value = recorded_name(rule.metric, level)
        if level == 'transport':
            value = '%s{transport=%s}' % (value, quote(rule.transport))
        minimum = ruleset.min_observations(rule)
        if minimum:
            value = '(%s and on() (%s >= %s))' % (value, observations_expr(rule, ruleset), minimum)
    else:
        value = '(%s)' % rule_promql(rule, ruleset)
    return '%s %s %s' % (value, rule.comparison, _number(rule.threshold))


def _number(value):
    return repr(float(value)) if not float(value).is_integer() else str(int(value))
