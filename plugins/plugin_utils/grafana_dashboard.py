# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration's Grafana dashboard, generated from the alert rules (one definition).

Every panel comes from the rule code: one time series per transport figure (the recorded
series named by ``alert_rules.recorded_name``, one query per transport of ``_modes.TRANSPORTS``),
with the thresholds of the rules that judge that figure; one stat panel per enabled rule (its
own expression, coloured at its threshold); the migration's own gauges (the ledger's
``autonomi_migration_*`` exported by the dashboard service); alert annotations from ``ALERTS``.
A new rule or transport therefore appears without editing anything here.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import TRANSPORTS
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules

UID = 'autonomi-migration'
TITLE = 'Autonomi fleet: libp2p -> iroh migration'
DATASOURCE = {'type': 'prometheus', 'uid': '${datasource}'}
UNITS = {'ratio': 'percentunit', 'seconds': 's', 'requests/s': 'reqps', 'connections': 'short', 'score': 'none'}
FIGURE_TITLES = {
    'health_score': 'Health score (0.5 success + 0.3 latency + 0.2 connections)',
    'active_connections': 'Active connections',
    'request_rate': 'Request rate',
    'error_rate': 'Error rate',
    'latency_p50': 'p50 latency',
    'latency_p95': 'p95 latency',
    'latency_p99': 'p99 latency',
    'partition_risk': 'Partition risk (0 healthy .. 1 partitioned)',
}
WIDTH = 24


class _Layout:
    """Grafana's 24-column grid, filled left to right."""

    def __init__(self):
        self.x = self.y = self.row_height = 0
        self.next_id = 1

    def place(self, panel, w, h):
        if self.x + w > WIDTH:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel['gridPos'] = {'x': self.x, 'y': self.y, 'w': w, 'h': h}
        panel['id'] = self.next_id
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)
        return panel

    def row(self, title):
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel = self.place({'type': 'row', 'title': title, 'collapsed': False, 'panels': []}, WIDTH, 1)
        self.x, self.y, self.row_height = 0, self.y + 1, 0
        return panel


def _target(expr, legend, ref):
    return {'refId': ref, 'expr': expr, 'legendFormat': legend, 'datasource': DATASOURCE}


def _thresholds(steps):
    out = [{'color': 'green', 'value': None}]
    for value, color in sorted(steps):
        out.append({'color': color, 'value': value})
    return {'mode': 'absolute', 'steps': out}


def _rule_steps(rules):
    """Threshold steps for rules that fire above a value; a rule firing below one is shown by its stat."""
    color = {'critical': 'red', 'warning': 'orange', 'info': 'blue'}
    steps = {}
    for rule in rules:
        if rule.comparison in ('>', '>=') and (rule.threshold not in steps or rule.severity == 'critical'):
            steps[rule.threshold] = color.get(rule.severity, 'red')
    return sorted(steps.items())


def _refs():
    letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
    return iter(letters)


def _timeseries(title, targets, unit, steps=(), description=''):
    return {
        'type': 'timeseries', 'title': title, 'description': description, 'datasource': DATASOURCE,
        'targets': targets,
        'fieldConfig': {'defaults': {'unit': unit, 'thresholds': _thresholds(steps),
                                     'custom': {'thresholdsStyle': {'mode': 'dashed' if steps else 'off'}}},
                        'overrides': []},
        'options': {'legend': {'showLegend': True, 'displayMode': 'list', 'placement': 'bottom', 'calcs': []},
                    'tooltip': {'mode': 'multi', 'sort': 'none'}},
    }


def _stat(title, expr, unit, steps=(), legend='', description='', mappings=None):
    return {
        'type': 'stat', 'title': title, 'description': description, 'datasource': DATASOURCE,
        'targets': [_target(expr, legend, 'A')],
        'fieldConfig': {'defaults': {'unit': unit, 'thresholds': _thresholds(steps), 'mappings': mappings or []},
                        'overrides': []},
        'options': {'reduceOptions': {'calcs': ['lastNotNull'], 'fields': '', 'values': False},
                    'colorMode': 'background', 'graphMode': 'area', 'justifyMode': 'auto', 'textMode': 'auto',
                    'orientation': 'auto'},
    }


def transports_of(ruleset):
    """The transports of the mode model, plus any transport a rule names."""
    out = list(TRANSPORTS)
    for rule in ruleset.rules:
        if rule.transport not in out and rule.transport != 'all':
            out.append(rule.transport)
    return out


def build_dashboard(ruleset, title=TITLE, uid=UID):
    """The dashboard JSON model (a dict) for ``ruleset`` (alert_rules.load_rules())."""
    layout = _Layout()
    panels = []
    transports = transports_of(ruleset)
    enabled = ruleset.select()
    prefix = 'autonomi_migration_'

    panels.append(layout.row('Migration (ledger, exported by the dashboard service)'))
    panels.append(layout.place(_stat('Progress', prefix + 'progress_percent', 'percent',
                                     description='Nodes in iroh_primary or iroh_only over all nodes.'), 4, 5))
    panels.append(layout.place(_stat('Dual-stack coverage', prefix + 'dual_stack_coverage_percent', 'percent'), 4, 5))
    panels.append(layout.place(_stat('Phase', prefix + 'phase_info == 1', 'none', legend='{{phase}}',
                                     mappings=[]), 4, 5))
    panels[-1]['options']['textMode'] = 'name'
    panels.append(layout.place(_stat('Estimated completion', prefix + 'estimated_completion_timestamp_seconds * 1000',
                                     'dateTimeFromNow'), 4, 5))
    panels.append(layout.place(_stat('Velocity', prefix + 'velocity_nodes_per_hour', 'short',
                                     description='Nodes migrated per hour over the recent window.'), 4, 5))
    flag = _stat('Halted / paused', 'max(%shalted) * 2 + max(%spaused)' % (prefix, prefix), 'none',
                 steps=[(1, 'orange'), (2, 'red')],
                 mappings=[{'type': 'value', 'options': {'0': {'text': 'running'}, '1': {'text': 'paused'},
                                                         '2': {'text': 'halted'}, '3': {'text': 'halted'}}}])
    panels.append(layout.place(flag, 4, 5))
    panels.append(layout.place(_timeseries('Nodes per state', [_target(prefix + 'nodes', '{{state}}', 'A')], 'short'),
                               24, 7))
    preflight = _stat('Preflight', prefix + 'preflight_result == 1', 'none', legend='{{result}}', mappings=[],
                      description='The newest preflight (playbooks/preflight.yml) or waiver of the preflight gate: '
                                  'a production wave needs a passed one within preflight_max_age, or a waiver.')
    preflight['options']['textMode'] = 'name'
    panels.append(layout.place(preflight, 12, 4))
    panels.append(layout.place(_stat('Preflight age', 'time() - %spreflight_timestamp_seconds' % prefix, 's',
                                     steps=[(86400, 'orange')],
                                     description='Since the newest preflight or waiver; past preflight_max_age '
                                                 '(24 h by default) the next production wave is refused.'), 12, 4))

    panels.append(layout.row('Transports side by side'))
    for figure in alert_rules.TRANSPORT_FIGURES:
        refs = _refs()
        name = alert_rules.recorded_name(figure, 'transport')
        targets = [_target('%s{transport=%s}' % (name, alert_rules.quote(t)), t, next(refs)) for t in transports]
        rules = [r for r in enabled if r.metric == figure]
        unit = UNITS.get(alert_rules.FIGURES[figure][1], 'none')
        desc = '; '.join('%s: %s %s %s for %s (%s)' % (r.id, r.transport, r.comparison, r.threshold, r.for_, r.severity)
                         for r in rules)
        panels.append(layout.place(_timeseries(FIGURE_TITLES.get(figure, figure.replace('_', ' ')), targets, unit,
                                               _rule_steps(rules), description=desc), 8, 8))
    risk_rules = [r for r in enabled if r.metric == 'partition_risk']
    panels.append(layout.place(_timeseries(
        FIGURE_TITLES['partition_risk'],
        [_target(alert_rules.recorded_name('partition_risk', 'fleet'), 'fleet', 'A'),
         _target(alert_rules.recorded_name('partition_risk', 'host'), '{{host}}', 'B')],
        'none', _rule_steps(risk_rules)), 8, 8))

    panels.append(layout.row('Alert rules (%s)' % ruleset.source))
    for rule in enabled:
        expr = alert_rules.alert_expr(rule, ruleset)
        value = expr[:expr.rindex(' %s ' % rule.comparison)]
        unit = UNITS.get(rule.unit, 'none') if rule.metric and rule.metric != 'partition_risk' else 'none'
        steps = [(rule.threshold, 'red' if rule.severity == 'critical' else 'orange')]
        if rule.comparison in ('<', '<='):
            steps = []
        panels.append(layout.place(_stat(rule.name, value, unit, steps, description='%s: %s %s %s for %s, %s' % (
            rule.id, rule.metric or 'value', rule.comparison, rule.threshold, rule.for_, rule.severity)), 6, 5))

    names = '|'.join(sorted(r.name for r in enabled))
    annotations = {'list': [
        {'name': 'Annotations & Alerts', 'enable': True, 'hide': True, 'iconColor': 'rgba(0, 211, 255, 1)',
         'type': 'dashboard', 'datasource': {'type': 'grafana', 'uid': '-- Grafana --'}},
        # One marker while a migration alert fires (Prometheus's ALERTS series of the rules above).
        {'name': 'Migration alerts', 'enable': True, 'hide': False, 'iconColor': 'red', 'datasource': DATASOURCE,
         'expr': 'ALERTS{alertstate="firing",alertname=~"%s"}' % names},
    ]}
    return {
        'uid': uid, 'title': title, 'tags': ['autonomi', 'migration', 'iroh', 'libp2p'],
        'timezone': 'browser', 'editable': True, 'graphTooltip': 1, 'schemaVersion': 39, 'version': 1,
        'refresh': '10s', 'time': {'from': 'now-1h', 'to': 'now'},
        'templating': {'list': [{'type': 'datasource', 'name': 'datasource', 'label': 'Prometheus',
                                 'query': 'prometheus', 'hide': 0, 'current': {}}]},
        'annotations': annotations,
        'panels': panels,
        'description': 'Generated by autonomi.network_migration from its alert rules; do not edit by hand.',
    }


def dashboard_from_rules(rules_file=None, overrides=None, settings=None):
    return build_dashboard(alert_rules.load_rules(rules_file or None, overrides=overrides or None,
                                                  settings=settings or None))
