"""The Grafana dashboard generated from the alert rules: valid against the dashboard schema of
grafana-foundation-sdk (Grafana's own generated models), and following the rule definitions."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as grafana
from grafana_foundation_sdk.models import prometheus as grafana_prometheus

from ansible_collections.autonomi.network_migration.plugins.filter import grafana_dashboard as grafana_filter
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, grafana_dashboard

plugins.register_default_plugins()


def lost_in_round_trip(ours, theirs, path=''):
    """Keys or values of ``ours`` that the schema models did not keep (defaults they add are fine)."""
    problems = []
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [f'{path}: {type(theirs).__name__}']
        for key, value in ours.items():
            if key not in theirs:
                problems.append(f'{path}/{key}: not in the schema')
            else:
                problems += lost_in_round_trip(value, theirs[key], f'{path}/{key}')
    elif isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            return [f'{path}: list changed']
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            problems += lost_in_round_trip(a, b, f'{path}/{i}')
    elif ours != theirs:
        problems.append(f'{path}: {ours!r} became {theirs!r}')
    return problems


def rules_document():
    with open(alert_rules.DEFAULT_RULES_FILE, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def panels_by_title(dashboard):
    return {p['title']: p for p in dashboard['panels']}


def test_dashboard_is_valid_against_the_grafana_schema():
    ours = grafana_dashboard.dashboard_from_rules()
    model = grafana.Dashboard.from_json(copy.deepcopy(ours))
    theirs = json.loads(json.dumps(model, cls=JSONEncoder))
    assert lost_in_round_trip(ours, theirs) == []
    for panel in model.panels:
        if panel.type_val != 'row':
            assert all(isinstance(t, grafana_prometheus.Dataquery) for t in panel.targets), panel.title
            assert not isinstance(panel.options, dict), f'{panel.title}: options not of the panel type'
    ids = [p['id'] for p in ours['panels']]
    assert len(ids) == len(set(ids))
    assert all(p['gridPos']['x'] + p['gridPos']['w'] <= 24 for p in ours['panels'])


def test_every_rule_and_figure_has_its_panel():
    ruleset = alert_rules.load_rules()
    dashboard = grafana_dashboard.build_dashboard(ruleset)
    panels = panels_by_title(dashboard)
    for rule in ruleset.select():
        panel = panels[rule.name]
        expr = panel['targets'][0]['expr']
        assert alert_rules.alert_expr(rule, ruleset).startswith(f'{expr} {rule.comparison} ')
        assert panel['fieldConfig']['defaults']['thresholds']['steps'][-1]['value'] == rule.threshold
    error_rate = panels[grafana_dashboard.FIGURE_TITLES['error_rate']]
    assert [t['legendFormat'] for t in error_rate['targets']] == ['libp2p', 'iroh']
    assert [s['value'] for s in error_rate['fieldConfig']['defaults']['thresholds']['steps']] == [None, 0.05]
    for figure in alert_rules.TRANSPORT_FIGURES:
        title = grafana_dashboard.FIGURE_TITLES[figure]
        assert all(alert_rules.recorded_name(figure, 'transport') in t['expr'] for t in panels[title]['targets'])
    annotation = dashboard['annotations']['list'][1]
    assert all(rule.name in annotation['expr'] for rule in ruleset.select())


def test_a_new_rule_and_a_new_transport_appear_without_edits(monkeypatch):
    doc = rules_document()
    new = copy.deepcopy(next(r for r in doc['rules'] if r['id'] == 'iroh_latency_spike'))
    new.update(id='libp2p_latency_spike', name='Libp2pLatencySpike', transport='libp2p', threshold=0.8)
    doc['rules'].append(new)
    ruleset = alert_rules.load_rules(document=doc)
    monkeypatch.setattr(grafana_dashboard, 'TRANSPORTS', ('libp2p', 'iroh', 'quic'))
    dashboard = grafana_dashboard.build_dashboard(ruleset)
    panels = panels_by_title(dashboard)
    # The alert's figure (its requests guard included: no value below min_observations, as the alert judges).
    expr = panels['Libp2pLatencySpike']['targets'][0]['expr']
    assert alert_rules.recorded_name('latency_p95', 'transport') + '{transport="libp2p"}' in expr
    assert alert_rules.alert_expr(ruleset.get('libp2p_latency_spike'), ruleset) == expr + ' > 0.8'
    p95 = panels[grafana_dashboard.FIGURE_TITLES['latency_p95']]
    assert [t['legendFormat'] for t in p95['targets']] == ['libp2p', 'iroh', 'quic']
    assert [s['value'] for s in p95['fieldConfig']['defaults']['thresholds']['steps']] == [None, 0.5, 0.8]


def test_a_disabled_rule_disappears_and_overrides_move_thresholds():
    dashboard = grafana_filter.grafana_dashboard('', overrides={'iroh_latency_spike': {'enabled': False},
                                                                'network_partition_risk': {'threshold': 0.5}})
    panels = panels_by_title(dashboard)
    assert 'IrohLatencySpike' not in panels
    assert panels['NetworkPartitionRisk']['fieldConfig']['defaults']['thresholds']['steps'][-1]['value'] == 0.5


def test_filter_reports_bad_overrides_by_name():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match='no_such_rule'):
        grafana_filter.grafana_dashboard('', overrides={'no_such_rule': {'threshold': 1}})
