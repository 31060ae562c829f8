# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration's alert rules: load, validate, override, render, evaluate.

``rules/alert_rules.yml`` is the one definition. This module turns it into

* Prometheus recording rules (the figures: request rate, error rate, p50/p95/p99
  latency, active connections, health score per host x transport, per transport,
  per host and fleet-wide; partition risk per node, per host and fleet-wide),
* Prometheus alerting rules and the Alertmanager routing (severity -> receiver,
  cooldown -> repeat_interval),
* and the PromQL the ``migration_gate`` action plugin evaluates for a scope (the
  fleet or a list of hosts) -- built by the same function as the recording rules,
  so the gate and the alert judge the same number.

Every figure is built from a handful of per-host / per-node *base* recording rules;
aggregating them in PromQL keeps the number of queries of a gate evaluation
independent of the fleet size.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from dataclasses import dataclass, field

import yaml

from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODE_TRANSPORTS

_COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_RULES_FILE = os.path.join(_COLLECTION_ROOT, 'rules', 'alert_rules.yml')
SCHEMA_FILE = os.path.join(_COLLECTION_ROOT, 'rules', 'alert_rules.schema.json')

DEFAULT_SETTINGS = {
    'job': 'ant_node',
    'rate_window': '2m',
    'evaluation_interval': '30s',
    'health': {'latency_budget_seconds': 1.0, 'target_peers': 6},
    'partition': {'dial_weight': 0.3, 'dial_rate_scale': 0.5},
}
OVERRIDABLE_FIELDS = ('threshold', 'for', 'severity', 'cooldown', 'enabled', 'summary', 'description')
SEVERITIES = ('critical', 'warning', 'info')

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

# Figure -> (recorded name at a level, with {level}; unit for humans).
FIGURES = {
    'request_rate': ('{level}:ant_transport_requests:rate', 'requests/s'),
    'error_rate': ('{level}:ant_transport_error_rate:ratio', 'ratio'),
    'latency_p50': ('{level}:ant_transport_request_duration_seconds:p50', 'seconds'),
    'latency_p95': ('{level}:ant_transport_request_duration_seconds:p95', 'seconds'),
    'latency_p99': ('{level}:ant_transport_request_duration_seconds:p99', 'seconds'),
    'active_connections': ('{level}:ant_transport_connected_peers:sum', 'connections'),
    'health_score': ('{level}:ant_transport_health:score', 'score'),
    'partition_risk': ('{level}:ant_partition_risk:ratio', 'ratio'),
}
TRANSPORT_FIGURES = tuple(f for f in FIGURES if f != 'partition_risk')
# Aggregation levels of the recording rules: level name -> grouping labels.
LEVELS = {
    'host_transport': ('host', 'transport'),
    'transport': ('transport',),
    'host': ('host',),
    'fleet': (),
}
RECORDING_GROUP = 'autonomi_migration_recording'
ALERTING_GROUP = 'autonomi_migration_alerts'

_DURATION_RE = re.compile(r'(\d+)(ms|s|m|h|d|w|y)')
_DURATION_SECONDS = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800, 'y': 31536000}
_COMPARE = {
    '>': lambda v, t: v > t,
    '>=': lambda v, t: v >= t,
    '<': lambda v, t: v < t,
    '<=': lambda v, t: v <= t,
}


class AlertRulesError(ValueError):
    """The rules file, an override or a setting is invalid. The message names the field."""


# ---------------------------------------------------------------------------- durations
def parse_duration(text):
    """Seconds of a Prometheus duration string (``90s``, ``5m``, ``1h30m``)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    text = str(text).strip()
    parts = _DURATION_RE.findall(text)
    if not parts or ''.join(n + u for n, u in parts) != text:
        raise AlertRulesError('%r is not a Prometheus duration (examples: 30s, 5m, 1h30m)' % (text,))
    return float(sum(int(n) * _DURATION_SECONDS[u] for n, u in parts))


# ---------------------------------------------------------------------------- the rules
@dataclass
class Rule:
    id: str
    name: str
    transport: str
    comparison: str
    threshold: float
    for_: str
    severity: str
    cooldown: str
    metric: str | None = None
    promql: str | None = None
    summary: str = ''
    description: str = ''
    enabled: bool = True

    @property
    def for_seconds(self):
        return parse_duration(self.for_)

    def breaches(self, value):
        """Whether ``value`` violates the rule (NaN never does: it is no data)."""
        if value is None or math.isnan(value):
            return False
        return _COMPARE[self.comparison](value, self.threshold)

    @property
    def worst(self):
        """The ``*_over_time`` that yields the value closest to passing over a window.

        A ``>`` rule breached for its whole window has its *minimum* above the threshold;
        the gate judges that number, as Prometheus's ``for`` does.
        """
        return 'min' if self.comparison in ('>', '>=') else 'max'

    @property
    def unit(self):
        return FIGURES[self.metric][1] if self.metric else ''


@dataclass
class RuleSet:
    settings: dict
    rules: list = field(default_factory=list)
    source: str = ''

    def get(self, rule_id):
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise AlertRulesError('unknown alert rule id %r; known ids: %s'
                              % (rule_id, ', '.join(r.id for r in self.rules)))

    def select(self, ids=None):
        """The enabled rules, or the named ones (in the order given), as a list."""
        if not ids:
            return [r for r in self.rules if r.enabled]
        return [self.get(i) for i in ids]

    @property
    def job(self):
        return self.settings['job']

    @property
    def step(self):
        return self.settings['evaluation_interval']


def _schema():
    with open(SCHEMA_FILE, encoding='utf-8') as handle:
        return json.load(handle)


def _where(doc, path):
    """'rules[2] (high_error_rate_iroh).condition.metric' for a jsonschema error path."""
    parts = []
    node = doc
    for item in path:
        if isinstance(item, int):
            label = '[%d]' % item
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) and 'id' in node[item]:
                label += ' (rule %r)' % (node[item]['id'],)
            parts.append(label)
        else:
            parts.append(('.' if parts else '') + str(item))
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            node = None
    return ''.join(parts) or '(top level)'


def _message(error):
    if error.validator == 'oneOf' and list(error.path)[-1:] == ['condition']:
        return "needs exactly one of 'metric' (a recorded figure) or 'promql'"
    if error.validator == 'required':
        return error.message.replace(' is a required property', ' is required')
    if error.validator == 'enum':
        return '%r is not one of %s' % (error.instance, ', '.join(map(str, error.validator_value)))
    if error.validator == 'pattern' and 'duration' in json.dumps(error.schema):
        return '%r is not a Prometheus duration (examples: 30s, 5m, 1h)' % (error.instance,)
    return error.message


def validate_document(doc, source='alert rules'):
    """Raise AlertRulesError listing every schema and consistency error of ``doc``."""
    import jsonschema

    if not isinstance(doc, dict):
        raise AlertRulesError('%s: expected a mapping with "version" and "rules", got %s'
                              % (source, type(doc).__name__))
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: (list(map(str, e.path)), e.message))
    problems = ['%s: %s' % (_where(doc, e.path), _message(e)) for e in errors]
    if not problems:
        problems = _consistency_problems(doc)
    if problems:
        raise AlertRulesError('%s is invalid:\n  - %s' % (source, '\n  - '.join(problems)))


def _consistency_problems(doc):
    problems = []
    seen_ids, seen_names = {}, {}
    for index, rule in enumerate(doc['rules']):
        where = 'rules[%d] (rule %r)' % (index, rule['id'])
        if rule['id'] in seen_ids:
            problems.append('%s.id: duplicate id, also rules[%d]' % (where, seen_ids[rule['id']]))
        seen_ids[rule['id']] = index
        if rule['name'] in seen_names:
            problems.append('%s.name: duplicate alert name %r, also rules[%d]'
                            % (where, rule['name'], seen_names[rule['name']]))
        seen_names[rule['name']] = index
        metric = rule['condition'].get('metric')
        if metric == 'partition_risk' and rule['transport'] != 'all':
            problems.append("%s.transport: partition_risk is fleet-wide; use transport: all" % where)
        promql = rule['condition'].get('promql')
        if promql is not None and promql.count('(') != promql.count(')'):
            problems.append('%s.condition.promql: unbalanced parentheses' % where)
        try:
            parse_duration(rule['for'])
            parse_duration(rule['cooldown'])
        except AlertRulesError as exc:
            problems.append('%s: %s' % (where, exc))
    return problems


def _deep_merge(base, extra):
    out = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(doc, overrides=None, settings=None):
    """A copy of ``doc`` with per-inventory overrides applied (not yet validated).

    ``overrides``: ``{rule_id: {threshold, for, severity, cooldown, enabled, ...}}``
    (the inventory variable ``migration_alert_overrides``); ``settings``: merged into
    ``settings`` (``migration_alert_settings``).
    """
    doc = copy.deepcopy(doc)
    if overrides:
        if not isinstance(overrides, dict):
            raise AlertRulesError('migration_alert_overrides must be a mapping of rule id -> fields, got %s'
                                  % type(overrides).__name__)
        known = {r.get('id'): r for r in doc.get('rules', []) if isinstance(r, dict)}
        for rule_id, fields in overrides.items():
            if rule_id not in known:
                raise AlertRulesError('migration_alert_overrides: unknown rule id %r; known ids: %s'
                                      % (rule_id, ', '.join(sorted(map(str, known)))))
            if not isinstance(fields, dict):
                raise AlertRulesError('migration_alert_overrides.%s must be a mapping of fields, got %r'
                                      % (rule_id, fields))
            for key, value in fields.items():
                if key not in OVERRIDABLE_FIELDS:
                    raise AlertRulesError('migration_alert_overrides.%s.%s: not overridable; overridable fields: %s'
                                          % (rule_id, key, ', '.join(OVERRIDABLE_FIELDS)))
                if key == 'threshold' and isinstance(value, str):
                    value = _numeric(value)  # -e key=value on the command line gives strings
                known[rule_id][key] = value
    if settings:
        if not isinstance(settings, dict):
            raise AlertRulesError('migration_alert_settings must be a mapping, got %s' % type(settings).__name__)
        doc['settings'] = _deep_merge(doc.get('settings') or {}, settings)
    return doc


def _numeric(text):
    try:
        return float(text)
    except ValueError:
        return text  # the schema names the field and the value


def load_rules(path=None, overrides=None, settings=None, document=None):
    """Load, override and validate the rules; return a RuleSet.

    ``document`` (an already parsed mapping) takes precedence over ``path``; the
    default path is the collection's ``rules/alert_rules.yml``.
    """
    source = path or DEFAULT_RULES_FILE
    if document is None:
        try:
            with open(source, encoding='utf-8') as handle:
                document = yaml.safe_load(handle)
        except OSError as exc:
            raise AlertRulesError('cannot read alert rules file %s: %s' % (source, exc)) from exc
        except yaml.YAMLError as exc:
            raise AlertRulesError('alert rules file %s is not valid YAML: %s' % (source, exc)) from exc
    else:
        source = 'alert rules document'
    validate_document(document, source)
    merged = apply_overrides(document, overrides, settings)
    if overrides or settings:
        validate_document(merged, '%s with migration_alert_overrides/migration_alert_settings applied' % source)
    doc_settings = _deep_merge(DEFAULT_SETTINGS, merged.get('settings') or {})
    rules = []
    for raw in merged['rules']:
        cond = raw['condition']
        rules.append(Rule(
            id=raw['id'], name=raw['name'], transport=raw['transport'], comparison=cond['comparison'],
            threshold=float(raw['threshold']), for_=raw['for'], severity=raw['severity'],
            cooldown=raw['cooldown'], metric=cond.get('metric'), promql=cond.get('promql'),
            summary=raw.get('summary', ''), description=raw.get('description', ''),
            enabled=raw.get('enabled', True)))
    return RuleSet(settings=doc_settings, rules=rules, source=source)


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


def rule_promql(rule, ruleset, hosts=None, by=()):
    """The value a rule compares with its threshold, for a scope (no comparison)."""
    if rule.metric:
        return figure_expr(rule.metric, ruleset.settings, by=by, transport=rule.transport, hosts=hosts)
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
    else:
        value = '(%s)' % rule_promql(rule, ruleset)
    return '%s %s %s' % (value, rule.comparison, _number(rule.threshold))


def _number(value):
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


# ---------------------------------------------------------------------------- rendering
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


# ---------------------------------------------------------------------------- evaluation
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
    """(query shown to the operator, query sent: value and sample count in one request)."""
    shown, sub = window_query(rule, ruleset, scope)
    samples = 'count_over_time(%s)' % sub if sub else 'count(%s)' % rule_promql(rule, ruleset, hosts=scope.hosts)
    return shown, '%s or %s' % (_stat(shown, 'value'), _stat(samples, 'samples'))


@dataclass
class ScopeFacts:
    targets: int = 0
    targets_up: int = 0
    nodes_by_transport: dict = field(default_factory=dict)

    def as_dict(self):
        return {'targets': self.targets, 'targets_up': self.targets_up,
                'nodes_by_transport': dict(self.nodes_by_transport)}


def read_scope(client, ruleset, scope):
    facts = ScopeFacts(nodes_by_transport={'libp2p': 0, 'iroh': 0})
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
            for transport in MODE_TRANSPORTS.get(labels.get('mode'), ()):
                facts.nodes_by_transport[transport] += int(value)
    # A node that exports no transport mode predates dual-stack: it runs libp2p only.
    facts.nodes_by_transport['libp2p'] += max(0, facts.targets_up - with_mode)
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
            'hosts': dict(self.hosts),
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
    result = RuleResult(rule=rule, verdict=NO_DATA, query=shown, window=rule.for_)
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
    if value is not None and math.isnan(value):
        value = None
    result.value = value
    if value is None or result.samples < min_samples:
        result.reason = ('%d sample(s) in %s, at least %d needed; are the recording rules installed '
                         '(playbooks/monitoring.yml) and the nodes scraped?' % (result.samples, rule.for_, min_samples))
        return result
    if rule.breaches(value):
        result.verdict = FAIL
        result.reason = 'value %s %s threshold %s' % (_show(value, rule.unit), rule.comparison,
                                                      _show(rule.threshold, rule.unit))
        result.hosts = breaching_hosts(client, rule, ruleset, scope)
    else:
        result.verdict = PASS
    return result


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
