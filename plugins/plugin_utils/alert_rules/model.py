# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules model: load ``rules/alert_rules.yml``, validate it against its schema, apply the
inventory's overrides, and the Rule / RuleSet objects (with durations and breach tests)."""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field, replace

import yaml

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import validation
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError

_COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEFAULT_RULES_FILE = os.path.join(_COLLECTION_ROOT, 'rules', 'alert_rules.yml')
SCHEMA_FILE = os.path.join(_COLLECTION_ROOT, 'rules', 'alert_rules.schema.json')

DEFAULT_SETTINGS = {
    'job': 'ant_node',
    'rate_window': '2m',
    'evaluation_interval': '30s',
    'health': {'latency_budget_seconds': 1.0, 'target_peers': 6},
    'partition': {'dial_weight': 0.3, 'dial_rate_scale': 0.5},
    # Requests in the rate window of a scope before a request rate (error rate, latency) is judged.
    'min_observations': 100,
}
OVERRIDABLE_FIELDS = ('threshold', 'for', 'severity', 'cooldown', 'enabled', 'summary', 'description',
                      'min_observations')
# Figures that are a rate over the nodes' requests: judged only over enough of them (min_observations).
REQUEST_FIGURES = ('error_rate', 'latency_p50', 'latency_p95', 'latency_p99', 'health_score')
SEVERITIES = ('critical', 'warning', 'info')

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

_COMPARE = {
    '>': lambda v, t: v > t,
    '>=': lambda v, t: v >= t,
    '<': lambda v, t: v < t,
    '<=': lambda v, t: v <= t,
}


class AlertRulesError(MigrationError, ValueError):
    """The rules file, an override or a setting is invalid. The message names the field."""


# ---------------------------------------------------------------------------- durations
def parse_duration(text):
    """Seconds of a Prometheus duration string (``90s``, ``5m``, ``1h30m``): validation.seconds()'s grammar."""
    try:
        return validation.seconds(text, 'duration')
    except validation.InputError:
        raise AlertRulesError('%r is not a Prometheus duration (examples: 30s, 5m, 1h30m)' % (text,)) from None


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
    min_observations: int | None = None   # the rule's own minimum; None: settings.min_observations

    @property
    def observed(self):
        """Whether the rule judges a rate of requests, which needs enough of them (min_observations)."""
        return self.metric in REQUEST_FIGURES

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

    def judged_now(self):
        """The same rules judged on their current value instead of the worst over their ``for`` window: whether
        each alert would resolve now (Prometheus resolves an alert at the first evaluation that finds its
        condition false; the ``for`` window delays only its firing)."""
        return replace(self, rules=[replace(rule, for_='0s') for rule in self.rules])

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

    def min_observations(self, rule):
        """The requests ``rule`` needs in the rate window before it is judged (0 for a rule on no request rate)."""
        if not rule.observed:
            return 0
        return int(rule.min_observations if rule.min_observations is not None else self.settings['min_observations'])


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
                if key in ('threshold', 'min_observations') and isinstance(value, str):
                    value = _numeric(value)  # -e key=value on the command line gives strings
                    if key == 'min_observations' and isinstance(value, float) and value.is_integer():
                        value = int(value)
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
            enabled=raw.get('enabled', True), min_observations=raw.get('min_observations')))
    return RuleSet(settings=doc_settings, rules=rules, source=source)
