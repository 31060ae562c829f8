# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rendering the rules for their consumers: Prometheus recording and alerting rule groups, the
Alertmanager configuration and the docs table."""

from __future__ import annotations

import copy

from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODE_TRANSPORTS
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules.model import (
    FIGURES,
    SEVERITIES,
    AlertRulesError,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules.promql import (
    LEVELS,
    M_DIAL_FAILURES,
    M_DURATION_BUCKET,
    M_MODE,
    M_NETWORK_SIZE,
    M_REQUESTS,
    M_ROUTING_TABLE,
    M_TRANSPORT_PEERS,
    R_BUCKETS,
    R_DIAL_UNREACHABLE,
    R_ERRORS,
    R_NODE_RISK,
    R_NODES,
    R_PEERS,
    R_REQUESTS,
    R_RT_DEFICIT,
    alert_expr,
    figure_expr,
    quote,
    recorded_name,
)

RECORDING_GROUP = 'autonomi_migration_recording'
ALERTING_GROUP = 'autonomi_migration_alerts'

def recording_rules(ruleset):
    """The recording rules, in dependency order (one group evaluates them in sequence)."""
    s = ruleset.settings
    job = 'job=%s' % quote(s['job'])
    window = s['rate_window']
    part = s['partition']
    base = [
        (R_REQUESTS, 'sum by (host, transport) (rate(%s{%s}[%s]))' % (M_REQUESTS, job, window)),
        # "or ... * 0": a node exports outcome="error" only after its first error; a
        # transport without errors has error rate 0, not "no data".
        (R_ERRORS, 'sum by (host, transport) (rate(%s{%s,outcome="error"}[%s])) or %s * 0'
         % (M_REQUESTS, job, window, R_REQUESTS)),
        (R_BUCKETS, 'sum by (host, transport, le) (rate(%s{%s}[%s]))' % (M_DURATION_BUCKET, job, window)),
        (R_PEERS, 'sum by (host, transport) (%s{%s})' % (M_TRANSPORT_PEERS, job)),
    ]
    nodes = []
    for transport in ('libp2p', 'iroh'):
        modes = '|'.join(m for m, ts in MODE_TRANSPORTS.items() if transport in ts)
        nodes.append('label_replace(count by (host) (%s{%s,mode=~"%s"} == 1), "transport", "%s", "", "")'
                     % (M_MODE, job, modes, transport))
    base.append((R_NODES, ' or '.join(nodes)))
    base += [
        (R_RT_DEFICIT, 'clamp(2 * (1 - %s{%s} / clamp_min(%s{%s} - 1, 1)), 0, 1)'
         % (M_ROUTING_TABLE, job, M_NETWORK_SIZE, job)),
        (R_DIAL_UNREACHABLE, 'sum without (transport, reason) (rate(%s{%s,reason="unreachable"}[%s]))'
         % (M_DIAL_FAILURES, job, window)),
        (R_NODE_RISK, 'clamp_max(%s + %s * (1 - exp(-(%s or %s * 0) / %s)), 1)'
         % (R_RT_DEFICIT, part['dial_weight'], R_DIAL_UNREACHABLE, R_RT_DEFICIT, part['dial_rate_scale'])),
    ]
    out = [{'record': name, 'expr': expr} for name, expr in base]
    for level, by in LEVELS.items():
        for figure in FIGURES:
            if figure == 'partition_risk':
                if 'transport' in by:
                    continue
            elif level == 'host_transport' and figure in ('request_rate', 'active_connections'):
                continue  # the base rules already are these figures
            out.append({'record': recorded_name(figure, level),
                        'expr': figure_expr(figure, s, by=by)})
    return out


def recording_rule_groups(ruleset):
    return {'groups': [{'name': RECORDING_GROUP, 'interval': ruleset.step, 'rules': recording_rules(ruleset)}]}


def _humanize(rule):
    if rule.unit == 'ratio':
        return '{{ $value | humanizePercentage }}'
    if rule.unit == 'seconds':
        return '{{ $value | humanizeDuration }}'
    return '{{ $value | humanize }}'


def alerting_rule_groups(ruleset):
    alerts = []
    for rule in ruleset.rules:
        if not rule.enabled:
            continue
        threshold = rule.threshold
        shown = ('%g %%' % (threshold * 100)) if rule.unit == 'ratio' \
            else '%g%s' % (threshold, ' s' if rule.unit == 'seconds' else '')
        alerts.append({
            'alert': rule.name,
            'expr': alert_expr(rule, ruleset),
            'for': rule.for_,
            'labels': {'severity': rule.severity, 'transport': rule.transport, 'rule_id': rule.id},
            'annotations': {
                'summary': rule.summary or rule.name,
                'description': '%s: %s is %s (threshold %s %s, for %s).' % (
                    rule.id, rule.metric or 'value', _humanize(rule), rule.comparison, shown, rule.for_),
            },
        })
    return {'groups': [{'name': ALERTING_GROUP, 'interval': ruleset.step, 'rules': alerts}]}


RECEIVER_BY_SEVERITY = {'critical': 'page', 'warning': 'notify', 'info': 'log'}


def alertmanager_config(ruleset, receivers=None, group_by=('alertname', 'transport'), base=None):
    """Alertmanager configuration: critical pages, warning notifies, info only logs.

    ``receivers``: ``{'page': {...receiver configs...}, 'notify': {...}}`` merged into
    the three receivers; ``log`` has no integrations (Alertmanager logs and shows the
    alert, nobody is notified). Each rule gets a route whose ``repeat_interval`` is its
    cooldown, so a firing alert re-notifies at most once per cooldown.
    """
    receivers = receivers or {}
    unknown = set(receivers) - set(RECEIVER_BY_SEVERITY.values())
    if unknown:
        raise AlertRulesError('monitoring receivers: unknown receiver(s) %s; known: page, notify, log'
                              % ', '.join(sorted(unknown)))
    routes = []
    for rule in ruleset.rules:
        if rule.enabled:
            routes.append({'receiver': RECEIVER_BY_SEVERITY[rule.severity],
                           'matchers': ['alertname="%s"' % rule.name],
                           'repeat_interval': rule.cooldown})
    for severity in SEVERITIES:
        routes.append({'receiver': RECEIVER_BY_SEVERITY[severity], 'matchers': ['severity="%s"' % severity]})
    config = copy.deepcopy(base) if base else {}
    config['route'] = {'receiver': 'log', 'group_by': list(group_by), 'group_wait': '30s',
                       'group_interval': '5m', 'repeat_interval': '4h', 'routes': routes}
    config['receivers'] = [dict({'name': name}, **copy.deepcopy(receivers.get(name) or {}))
                           for name in ('page', 'notify', 'log')]
    config['inhibit_rules'] = [{'source_matchers': ['severity="critical"'],
                                'target_matchers': ['severity="warning"'],
                                'equal': ['transport']}]
    return config


def rules_table(ruleset):
    """The rules as a Markdown table (docs/alerts-and-gates.md embeds it; a test keeps it in sync)."""
    lines = ['| id | alert | condition | for | severity | cooldown |', '|---|---|---|---|---|---|']
    for rule in ruleset.rules:
        what = '%s %s' % (rule.transport, rule.metric.replace('_', ' ')) if rule.metric and rule.transport != 'all' \
            else (rule.metric or 'PromQL').replace('_', ' ')
        threshold = ('%g %%' % (rule.threshold * 100)) if rule.unit == 'ratio' and rule.metric != 'partition_risk' \
            else ('%g ms' % (rule.threshold * 1000)) if rule.unit == 'seconds' else '%g' % rule.threshold
        lines.append('| `%s` | %s | %s %s %s | %s | %s | %s |' % (
            rule.id, rule.name, what, rule.comparison, threshold, rule.for_, rule.severity, rule.cooldown))
    return '\n'.join(lines)
