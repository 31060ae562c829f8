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
    parse_duration,
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
    _number,
    alert_expr,
    figure_expr,
    quote,
    recorded_name,
    rule_promql,
)

RECORDING_GROUP = 'autonomi_migration_recording'
PARTITION_GROUP = 'autonomi_migration_partition'
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
    """Two groups: the partition-risk figures, which the partition alert (a fast rollback) waits for, in a
    light group of their own, and every other figure. Prometheus evaluates groups side by side, so the
    partition figures are not held behind the per-bucket latency rates (4-7 s per evaluation at 1,000
    nodes on a busy 2-core machine, against a 2 s interval; bench/chain.py)."""
    rules = recording_rules(ruleset)
    partition_names = {R_RT_DEFICIT, R_DIAL_UNREACHABLE, R_NODE_RISK} | {
        recorded_name(PARTITION_FIGURE, level) for level in LEVELS}
    partition = [r for r in rules if r['record'] in partition_names]
    others = [r for r in rules if r['record'] not in partition_names]
    return {'groups': [{'name': PARTITION_GROUP, 'interval': ruleset.step, 'rules': partition},
                       {'name': RECORDING_GROUP, 'interval': ruleset.step, 'rules': others}]}


RUNBOOK_BASE_URL = 'https://github.com/autonomi/network_migration/blob/main/docs/runbooks'
# Alerts are judged fleet-wide (the gate's scope "fleet"): one alert per rule, its hosts named in
# the description. Inhibitions match on this label ("the same hosts" = the same scope).
ALERT_SCOPE = 'fleet'
PARTITION_FIGURE = 'partition_risk'
# Figures a partition explains: their alerts are silenced while the partition alert fires.
PARTITION_SYMPTOMS = ('error_rate', 'latency_p50', 'latency_p95', 'latency_p99')


def _humanize(rule, value='$value'):
    if rule.unit == 'ratio':
        return '{{ %s | humanizePercentage }}' % value
    if rule.unit == 'seconds':
        return '{{ %s | humanizeDuration }}' % value
    return '{{ %s | humanize }}' % value


def _shown_threshold(rule):
    if rule.unit == 'ratio':
        return '%g %%' % (rule.threshold * 100)
    return '%g%s' % (rule.threshold, ' s' if rule.unit == 'seconds' else '')


def runbook_url(rule, base_url=None):
    return '%s/%s.md' % ((base_url or RUNBOOK_BASE_URL).rstrip('/'), rule.id)


def hosts_query(rule, ruleset):
    """PromQL of the hosts whose own figure breaches the rule (the gate's breaching_hosts query)."""
    return '%s %s %s' % (rule_promql(rule, ruleset, by=('host',)), rule.comparison, _number(rule.threshold))


def alert_description(rule, ruleset):
    """Names the metric, its value, the threshold, the transport and the hosts (a Prometheus template)."""
    transport = 'all transports' if rule.transport == 'all' else rule.transport
    hosts = ('{{ with query `%s` | sortByLabel "host" }}'
             '{{ range $i, $s := . }}{{ if $i }}, {{ end }}{{ $s.Labels.host }} (%s){{ end }}'
             '{{ else }}none alone (only the fleet-wide figure is){{ end }}'
             % (hosts_query(rule, ruleset), _humanize(rule, '$s.Value')))
    text = '%s: %s (%s) is %s, threshold %s %s for %s. Hosts above the threshold: %s.' % (
        rule.id, rule.metric or 'the PromQL condition', transport, _humanize(rule), rule.comparison,
        _shown_threshold(rule), rule.for_, hosts)
    return ('%s %s' % (rule.description.strip(), text)) if rule.description else text


def alerting_rule_groups(ruleset, runbook_base_url=None):
    """The alerting rules: labels severity, transport, rule_id, figure, scope; annotations summary,
    description (metric, value, threshold, transport, hosts), value, threshold, runbook_url."""
    alerts = []
    for rule in ruleset.rules:
        if not rule.enabled:
            continue
        alerts.append({
            'alert': rule.name,
            'expr': alert_expr(rule, ruleset),
            'for': rule.for_,
            'labels': {'severity': rule.severity, 'transport': rule.transport, 'rule_id': rule.id,
                       'figure': rule.metric or 'promql', 'scope': ALERT_SCOPE},
            'annotations': {
                'summary': rule.summary or rule.name,
                'description': alert_description(rule, ruleset),
                'value': '{{ $value }}',
                'threshold': '%s %s' % (rule.comparison, _number(rule.threshold)),
                'runbook_url': runbook_url(rule, runbook_base_url),
            },
        })
    return {'groups': [{'name': ALERTING_GROUP, 'interval': ruleset.step, 'rules': alerts}]}


RECEIVER_BY_SEVERITY = {'critical': 'page', 'warning': 'notify', 'info': 'log'}
# The migration_tracker's announcements of migration events (plugin_utils/services/announcements.py) go to their
# own receiver, each event its own notification, soon, never inhibited (info: no inhibit rule targets it).
ANNOUNCEMENT_ALERT = 'MigrationAnnouncement'
ANNOUNCE_RECEIVER = 'announce'
ANNOUNCE_ROUTE = {'receiver': ANNOUNCE_RECEIVER, 'matchers': ['alertname="%s"' % ANNOUNCEMENT_ALERT],
                  'group_by': ['alertname', 'run_id', 'event_id'], 'group_wait': '1s', 'group_interval': '1m',
                  'repeat_interval': '24h', 'continue': False}
RECEIVERS = ('page', 'notify', 'log', ANNOUNCE_RECEIVER)
DEFAULT_TIMINGS = {'group_wait': '30s', 'group_interval': '5m', 'repeat_interval': '4h', 'critical_group_wait': '5s'}
# Timings of the root route; critical_group_wait is the group_wait of the critical routes (the page receiver, whose
# integrations include the event-driven rollback): a critical alert already waited its rule's ``for``, and
# Alertmanager's grouping only adds latency to the rollback it starts (bench/chain.py: 25 s of the production chain
# at the default 30 s). Never longer than the root's group_wait.
ROOT_TIMINGS = ('group_wait', 'group_interval', 'repeat_interval')

# One notification text for every integration: what fired, the value, the runbook.
NOTIFICATION_TEXT = (
    '{{ range .Alerts }}[{{ .Status | toUpper }}] {{ .Labels.alertname }} ({{ .Labels.severity }}, '
    'transport {{ .Labels.transport }})\n{{ .Annotations.summary }}\n{{ .Annotations.description }}\n'
    'Value: {{ .Annotations.value }} (threshold {{ .Annotations.threshold }})\n'
    'Runbook: {{ .Annotations.runbook_url }}\n\n{{ end }}')
NOTIFICATION_TITLE = ('[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] '
                      '{{ .GroupLabels.alertname }} ({{ .CommonLabels.severity }}, transport '
                      '{{ .CommonLabels.transport }})')
# An announcement: what happened, what comes next.
ANNOUNCEMENT_TEXT = '{{ range .Alerts }}{{ .Annotations.summary }}\nNext: {{ .Annotations.next }}\n{{ end }}'
ANNOUNCEMENT_TITLE = '[migration] {{ .CommonLabels.announcement }}: {{ .CommonAnnotations.summary }}'

# Integration type -> (required fields, optional fields, secret fields). Secrets are never shown in
# an error message and the monitoring role writes the file with no_log.
INTEGRATIONS = {
    'webhook': (('url',), ('send_resolved', 'max_alerts', 'token'), ('token',)),
    'email': (('to',), ('from', 'smarthost', 'auth_username', 'auth_password', 'auth_secret', 'auth_identity',
                        'require_tls', 'send_resolved'), ('auth_password', 'auth_secret')),
    'slack': (('api_url',), ('channel', 'username', 'send_resolved'), ('api_url',)),
    'pagerduty': ((), ('routing_key', 'service_key', 'url', 'severity', 'send_resolved'),
                  ('routing_key', 'service_key')),
}
SECRET_FIELDS = frozenset(f for spec in INTEGRATIONS.values() for f in spec[2])


def check_receivers(receivers, variable='monitoring_alertmanager_receivers'):
    """Every problem of the receivers variable (names fields, never values); [] when valid.

    Two forms per receiver (page, notify, log): a list of typed integrations
    (``[{type: webhook, url: ...}, {type: pagerduty, routing_key: ...}]``) or a mapping of
    Alertmanager's own ``*_configs`` (passed through).
    """
    problems = []
    if receivers in (None, ''):
        return problems
    if not isinstance(receivers, dict):
        return ['%s must be a mapping of receiver (%s) to integrations, got %s'
                % (variable, ', '.join(RECEIVERS), type(receivers).__name__)]
    for name, integrations in receivers.items():
        where = '%s.%s' % (variable, name)
        if name not in RECEIVERS:
            problems.append('%s: unknown receiver; known: %s' % (where, ', '.join(RECEIVERS)))
            continue
        if integrations is None or isinstance(integrations, dict):
            continue  # nothing, or Alertmanager's own receiver fields
        if not isinstance(integrations, list):
            problems.append('%s must be a list of integrations ({type: webhook|email|slack|pagerduty, ...}), got %s'
                            % (where, type(integrations).__name__))
            continue
        for index, item in enumerate(integrations):
            at = '%s[%d]' % (where, index)
            if not isinstance(item, dict):
                problems.append('%s must be a mapping with a type, got %s' % (at, type(item).__name__))
                continue
            kind = item.get('type')
            if kind not in INTEGRATIONS:
                problems.append('%s.type must be one of %s' % (at, ', '.join(INTEGRATIONS)))
                continue
            required, optional, _secret = INTEGRATIONS[kind]
            for key in required:
                if not item.get(key):
                    problems.append('%s (%s): %s is required' % (at, kind, key))
            for key in sorted(set(item) - set(required) - set(optional) - {'type'}):
                known = ', '.join(required + optional)
                problems.append('%s (%s): unknown field %s; known: %s' % (at, kind, key, known))
            if kind == 'pagerduty' and not (item.get('routing_key') or item.get('service_key')):
                problems.append('%s (pagerduty): routing_key (Events API v2) or service_key is required' % at)
            if kind == 'webhook' and item.get('url') and not str(item['url']).startswith(('http://', 'https://')):
                problems.append('%s (webhook): url must start with http:// or https://' % at)
    return problems


def _integration(item, announce=False):
    kind = item['type']
    # An announcement is news once: its end (a few minutes later) is not notified unless asked for.
    resolved = item.get('send_resolved', not announce)
    text, title = (ANNOUNCEMENT_TEXT, ANNOUNCEMENT_TITLE) if announce else (NOTIFICATION_TEXT, NOTIFICATION_TITLE)
    if kind == 'webhook':
        out = {'url': item['url'], 'send_resolved': resolved, 'max_alerts': item.get('max_alerts', 0)}
        if item.get('token'):
            out['http_config'] = {'authorization': {'type': 'Bearer', 'credentials': item['token']}}
        return 'webhook_configs', out
    if kind == 'email':
        out = {'to': item['to'], 'send_resolved': resolved, 'require_tls': item.get('require_tls', True),
               'headers': {'Subject': title}, 'text': text}
        for key in ('from', 'smarthost', 'auth_username', 'auth_password', 'auth_secret', 'auth_identity'):
            if item.get(key):
                out[key] = item[key]
        return 'email_configs', out
    if kind == 'slack':
        out = {'api_url': item['api_url'], 'send_resolved': resolved, 'title': title, 'text': text}
        for key in ('channel', 'username'):
            if item.get(key):
                out[key] = item[key]
        return 'slack_configs', out
    out = {'send_resolved': resolved, 'description': title, 'details': {'alerts': text}}
    if not announce:
        out['links'] = [{'href': '{{ (index .Alerts 0).Annotations.runbook_url }}', 'text': 'runbook'}]
    for key in ('routing_key', 'service_key', 'url', 'severity'):
        if item.get(key):
            out[key] = item[key]
    return 'pagerduty_configs', out


def _receiver(name, integrations):
    receiver = {'name': name}
    if isinstance(integrations, dict):
        receiver.update(copy.deepcopy(integrations))
    for item in integrations or [] if isinstance(integrations, list) else []:
        key, config = _integration(item, announce=name == ANNOUNCE_RECEIVER)
        receiver.setdefault(key, []).append(config)
    return receiver


def _matcher(label, names):
    names = sorted(set(names))
    if len(names) == 1:
        return '%s="%s"' % (label, names[0])
    return '%s=~"%s"' % (label, '|'.join(names))


def inhibit_rules(ruleset):
    """A partition alert silences the error-rate and latency alerts of the same scope; a critical
    alert silences the warnings of its transport."""
    enabled = [r for r in ruleset.rules if r.enabled]
    partition = [r.name for r in enabled if r.metric == PARTITION_FIGURE]
    symptoms = [r.name for r in enabled if r.metric in PARTITION_SYMPTOMS]
    rules = []
    if partition and symptoms:
        rules.append({'source_matchers': [_matcher('alertname', partition)],
                      'target_matchers': [_matcher('alertname', symptoms)],
                      'equal': ['scope']})
    rules.append({'source_matchers': ['severity="critical"'], 'target_matchers': ['severity="warning"'],
                  'equal': ['transport']})
    return rules


def alertmanager_config(ruleset, receivers=None, group_by=('alertname', 'transport'), base=None, timings=None):
    """Alertmanager configuration: critical pages, warning notifies, info only logs; announcements (the
    ``MigrationAnnouncement`` alert) go first, to the ``announce`` receiver, each event its own notification.

    ``receivers``: ``{'page': [...integrations...], 'notify': [...], 'log': [...], 'announce': [...]}`` (see
    check_receivers); ``log`` usually has none (Alertmanager keeps and shows the alert, nobody is
    notified). Each rule gets a route whose ``repeat_interval`` is its cooldown, so a firing alert
    re-notifies at most once per cooldown. ``timings``: group_wait, group_interval,
    repeat_interval of the root route (short in the simulated inventory), and critical_group_wait, the
    group_wait of the critical routes (DEFAULT_TIMINGS).
    """
    problems = check_receivers(receivers)
    if problems:
        raise AlertRulesError('invalid Alertmanager receivers:\n  - %s' % '\n  - '.join(problems))
    receivers = receivers or {}
    timings = dict(DEFAULT_TIMINGS, **{k: v for k, v in (timings or {}).items() if v})
    for key, value in timings.items():
        if key not in DEFAULT_TIMINGS:
            raise AlertRulesError('Alertmanager timings: unknown %r; known: %s' % (key, ', '.join(DEFAULT_TIMINGS)))
        try:
            parse_duration(value)
        except AlertRulesError as exc:
            raise AlertRulesError('Alertmanager timings: %s: %s' % (key, exc)) from None
    critical_wait = min(timings['critical_group_wait'], timings['group_wait'], key=parse_duration)
    routes = [copy.deepcopy(ANNOUNCE_ROUTE)]
    for rule in ruleset.rules:
        if rule.enabled:
            routes.append(dict({'receiver': RECEIVER_BY_SEVERITY[rule.severity],
                                'matchers': ['alertname="%s"' % rule.name],
                                'repeat_interval': rule.cooldown},
                               **({'group_wait': critical_wait} if rule.severity == 'critical' else {})))
    for severity in SEVERITIES:
        routes.append(dict({'receiver': RECEIVER_BY_SEVERITY[severity], 'matchers': ['severity="%s"' % severity]},
                           **({'group_wait': critical_wait} if severity == 'critical' else {})))
    config = copy.deepcopy(base) if base else {}
    config['route'] = dict({'receiver': 'log', 'group_by': list(group_by)},
                           **{k: timings[k] for k in ROOT_TIMINGS}, routes=routes)
    config['receivers'] = [_receiver(name, receivers.get(name)) for name in RECEIVERS]
    config['inhibit_rules'] = inhibit_rules(ruleset)
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
