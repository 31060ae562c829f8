# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules file: schema errors name the rule and the field, overrides, rendering."""

from __future__ import annotations

import copy

import pytest
import yaml

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules as ar


@pytest.fixture
def doc():
    with open(ar.DEFAULT_RULES_FILE, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def error_of(document, **kwargs):
    with pytest.raises(ar.AlertRulesError) as info:
        ar.load_rules(document=document, **kwargs)
    return str(info.value)


def test_default_rules_are_the_seed(doc):
    ruleset = ar.load_rules()
    assert [(r.id, r.threshold, r.for_, r.severity, r.cooldown, r.transport) for r in ruleset.rules] == [
        ('high_error_rate_libp2p', 0.05, '5m', 'critical', '1h', 'libp2p'),
        ('high_error_rate_iroh', 0.05, '5m', 'critical', '1h', 'iroh'),
        ('iroh_latency_spike', 0.5, '5m', 'warning', '30m', 'iroh'),
        ('network_partition_risk', 0.7, '2m', 'critical', '15m', 'all'),
    ]


@pytest.mark.parametrize('field, value, expected', [
    ('threshold', 'five', "rules[1] (rule 'high_error_rate_iroh').threshold: 'five' is not of type 'number'"),
    ('severity', 'urgent', "rules[1] (rule 'high_error_rate_iroh').severity: 'urgent' is not one of critical, "
                           'warning, info'),
    ('for', '5 minutes', "rules[1] (rule 'high_error_rate_iroh').for: '5 minutes' is not a Prometheus duration"),
    ('transport', 'quic', "rules[1] (rule 'high_error_rate_iroh').transport: 'quic' is not one of"),
    ('thresold', 0.1, "rules[1] (rule 'high_error_rate_iroh'): Additional properties are not allowed "
                      "('thresold' was unexpected)"),
])
def test_schema_errors_name_the_rule_and_the_field(doc, field, value, expected):
    doc['rules'][1][field] = value
    assert expected in error_of(doc)


def test_missing_field_and_bad_condition(doc):
    del doc['rules'][0]['cooldown']
    doc['rules'][2]['condition'] = {'metric': 'latency_p95', 'promql': 'up', 'comparison': '>'}
    doc['rules'][3]['condition']['metric'] = 'latency_p42'
    message = error_of(doc)
    assert "rules[0] (rule 'high_error_rate_libp2p'): 'cooldown' is required" in message
    assert "rules[2] (rule 'iroh_latency_spike').condition: needs exactly one of 'metric'" in message
    assert "rules[3] (rule 'network_partition_risk').condition.metric: 'latency_p42' is not one of" in message


def test_consistency_errors(doc):
    doc['rules'][1]['id'] = 'high_error_rate_libp2p'
    doc['rules'][3]['transport'] = 'iroh'
    message = error_of(doc)
    assert 'duplicate id' in message
    assert 'partition_risk is fleet-wide; use transport: all' in message


def test_not_a_mapping_and_bad_yaml(tmp_path):
    assert 'expected a mapping' in error_of(['rules'])
    bad = tmp_path / 'rules.yml'
    bad.write_text('rules: [\n', encoding='utf-8')
    with pytest.raises(ar.AlertRulesError, match='not valid YAML'):
        ar.load_rules(str(bad))
    with pytest.raises(ar.AlertRulesError, match='cannot read'):
        ar.load_rules(str(tmp_path / 'missing.yml'))


def test_overrides_apply_and_are_validated(doc):
    ruleset = ar.load_rules(overrides={'high_error_rate_iroh': {'threshold': 0.1, 'for': '20s'}},
                            settings={'rate_window': '10s', 'evaluation_interval': '2s'})
    rule = ruleset.get('high_error_rate_iroh')
    assert (rule.threshold, rule.for_, rule.for_seconds) == (0.1, '20s', 20.0)
    assert ruleset.settings['rate_window'] == '10s'
    assert ruleset.settings['health']['target_peers'] == 6  # untouched settings keep their defaults
    assert ar.load_rules(overrides={'high_error_rate_iroh': {'threshold': '0.02'}}).get(
        'high_error_rate_iroh').threshold == 0.02
    with pytest.raises(ar.AlertRulesError, match="unknown rule id 'nope'"):
        ar.load_rules(overrides={'nope': {'threshold': 1}})
    with pytest.raises(ar.AlertRulesError, match='high_error_rate_iroh.transport: not overridable'):
        ar.load_rules(overrides={'high_error_rate_iroh': {'transport': 'libp2p'}})
    with pytest.raises(ar.AlertRulesError, match=r"with migration_alert_overrides.*\n.*threshold: 'high' is not"):
        ar.load_rules(overrides={'high_error_rate_iroh': {'threshold': 'high'}})
    with pytest.raises(ar.AlertRulesError, match="settings.rate_window: '10 s' is not a Prometheus duration"):
        ar.load_rules(settings={'rate_window': '10 s'})


def test_durations():
    assert ar.parse_duration('1h30m') == 5400
    assert ar.parse_duration('250ms') == 0.25
    with pytest.raises(ar.AlertRulesError):
        ar.parse_duration('5 m')


def test_breaches_and_nan():
    rule = ar.load_rules().get('high_error_rate_iroh')
    assert rule.breaches(0.051) and not rule.breaches(0.05) and not rule.breaches(float('nan'))


def test_gate_and_alert_judge_the_same_figure():
    ruleset = ar.load_rules()
    rule = ruleset.get('high_error_rate_iroh')
    recorded = {r['record']: r['expr'] for r in ar.recording_rules(ruleset)}
    # The alert compares the transport-level recorded figure, where enough requests were seen ...
    requests = 'sum(host_transport:ant_transport_requests:rate{transport="iroh"}) * 120'
    assert ar.alert_expr(rule, ruleset) == (
        '(transport:ant_transport_error_rate:ratio{transport="iroh"} and on() (%s >= 100)) > 0.05' % requests)
    # ... which is the gate's fleet-scope expression grouped by transport, with the same minimum.
    by_transport = ar.figure_expr('error_rate', ruleset.settings, by=('transport',))
    assert recorded['transport:ant_transport_error_rate:ratio'] == by_transport
    assert ar.rule_promql(rule, ruleset) == '((%s) and on() (%s >= 100))' % (
        ar.figure_expr('error_rate', ruleset.settings, transport='iroh'), requests)


def test_min_observations_default_override_and_zero():
    ruleset = ar.load_rules()
    iroh, partition = ruleset.get('high_error_rate_iroh'), ruleset.get('network_partition_risk')
    assert ruleset.min_observations(iroh) == 100 and ruleset.min_observations(partition) == 0
    assert '>=' not in ar.alert_expr(partition, ruleset)   # partition risk is no rate of requests
    overridden = ar.load_rules(overrides={'high_error_rate_iroh': {'min_observations': '500'}})
    assert overridden.min_observations(overridden.get('high_error_rate_iroh')) == 500
    assert '>= 500' in ar.alert_expr(overridden.get('high_error_rate_iroh'), overridden)
    off = ar.load_rules(settings={'min_observations': 0})
    assert ar.rule_promql(off.get('high_error_rate_iroh'), off) == ar.figure_expr(
        'error_rate', off.settings, transport='iroh')
    with pytest.raises(ar.AlertRulesError, match='min_observations'):
        ar.load_rules(settings={'min_observations': -1})


def test_scoped_queries_use_an_escaped_host_regex():
    ruleset = ar.load_rules()
    shown, sent = ar.judged_query(ruleset.get('network_partition_risk'), ruleset, ar.Scope(['sim-host.01', 'b']))
    assert shown == 'min_over_time((avg(instance:ant_partition_risk:ratio{host=~"sim\\\\-host\\\\.01|b"}))[2m:30s])'
    assert '"stat", "samples"' in sent


def test_recording_rules_cover_every_level_and_figure():
    records = {r['record'] for r in ar.recording_rules(ar.load_rules())}
    for level in ('transport', 'host', 'fleet'):
        for figure in ar.FIGURES:
            if figure == 'partition_risk' and level == 'transport':
                continue
            assert ar.recorded_name(figure, level) in records
    assert 'instance:ant_partition_risk:ratio' in records


def test_promql_rule_with_selector(doc):
    doc['rules'].append({'id': 'nodes_down', 'name': 'NodesDown', 'transport': 'all',
                         'condition': {'promql': 'count(up{$selector} == 0)', 'comparison': '>'},
                         'threshold': 0, 'for': '1m', 'severity': 'info', 'cooldown': '1h'})
    ruleset = ar.load_rules(document=doc)
    rule = ruleset.get('nodes_down')
    assert ar.alert_expr(rule, ruleset) == '(count(up{job="ant_node"} == 0)) > 0'
    assert ar.rule_promql(rule, ruleset, hosts=['h1']) == 'count(up{job="ant_node",host=~"h1"} == 0)'


def test_alertmanager_routing_by_severity_and_cooldown():
    config = ar.alertmanager_config(ar.load_rules(), receivers={'page': {'webhook_configs': [{'url': 'http://x'}]}})
    routes = config['route']['routes']
    assert {'receiver': 'page', 'matchers': ['alertname="HighErrorRateIroh"'], 'repeat_interval': '1h',
            'group_wait': '5s'} in routes
    assert {'receiver': 'notify', 'matchers': ['alertname="IrohLatencySpike"'], 'repeat_interval': '30m'} in routes
    assert {'receiver': 'log', 'matchers': ['severity="info"']} in routes
    assert config['receivers'][0] == {'name': 'page', 'webhook_configs': [{'url': 'http://x'}]}
    assert config['receivers'][2] == {'name': 'log'}
    with pytest.raises(ar.AlertRulesError, match='unknown receiver'):
        ar.alertmanager_config(ar.load_rules(), receivers={'pager': {}})


def test_critical_routes_wait_less_than_the_root_and_never_longer():
    """A critical alert already waited its ``for``: its routes (page, the event-driven rollback) group for
    critical_group_wait only; the root and the other severities keep group_wait."""
    config = ar.alertmanager_config(ar.load_rules())
    route = config['route']
    assert {k: route[k] for k in ('group_wait', 'group_interval', 'repeat_interval')} == {
        'group_wait': '30s', 'group_interval': '5m', 'repeat_interval': '4h'}
    assert 'critical_group_wait' not in route
    by_receiver = {}
    for r in route['routes']:
        by_receiver.setdefault(r['receiver'], set()).add(r.get('group_wait'))
    assert by_receiver['page'] == {'5s'} and by_receiver['notify'] == {None} and by_receiver['log'] == {None}
    partition = next(r for r in route['routes'] if r['matchers'] == ['alertname="NetworkPartitionRisk"'])
    assert partition['group_wait'] == '5s'
    # Never longer than the root's: a root of 1s keeps critical routes at 1s; an explicit value is kept.
    short = ar.alertmanager_config(ar.load_rules(), timings={'group_wait': '1s'})['route']
    assert {r.get('group_wait') for r in short['routes'] if r['receiver'] == 'page'} == {'1s'}
    longer = ar.alertmanager_config(ar.load_rules(), timings={'critical_group_wait': '15s'})['route']
    assert {r.get('group_wait') for r in longer['routes'] if r['receiver'] == 'page'} == {'15s'}
    with pytest.raises(ar.AlertRulesError, match='critical_group_wait'):
        ar.alertmanager_config(ar.load_rules(), timings={'critical_group_wait': 'soon'})


def test_disabled_rule_is_not_rendered_nor_evaluated(doc):
    ruleset = ar.load_rules(overrides={'iroh_latency_spike': {'enabled': False}})
    names = [a['alert'] for a in ar.alerting_rule_groups(ruleset)['groups'][0]['rules']]
    assert 'IrohLatencySpike' not in names
    assert 'iroh_latency_spike' not in [r.id for r in ruleset.select()]
    assert copy.deepcopy(doc) == doc


def test_docs_rules_table_matches_the_rules_file():
    from pathlib import Path

    docs = Path(ar.DEFAULT_RULES_FILE).parents[1] / 'docs' / 'alerts-and-gates.md'
    text = docs.read_text(encoding='utf-8')
    begin = text.index('<!-- rules-table:begin')
    table = text[text.index('\n', begin) + 1:text.index('<!-- rules-table:end -->')].strip()
    assert table == ar.rules_table(ar.load_rules()), 'regenerate the table in %s with alert_rules.rules_table' % docs


class OneRulePrometheus:
    """Answers one rule's judged query with a value (None: none) and the requests in the rate window now."""

    def __init__(self, value, observations):
        self.value, self.observations = value, observations

    def query(self, promql):
        if not promql.startswith('label_replace('):     # the hosts breaching the rule now
            return [{'metric': {'host': 'h1'}, 'value': self.value}]
        assert '"observations"' in promql, promql
        out = [{'metric': {'stat': 'samples'}, 'value': 10 if self.value is not None else 0},
               {'metric': {'stat': 'observations'}, 'value': self.observations}]
        if self.value is not None:
            out.append({'metric': {'stat': 'value'}, 'value': self.value})
        return out


def test_a_rate_over_too_few_requests_is_insufficient_data_not_a_verdict():
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules import evaluation

    ruleset = ar.load_rules()
    rule = ruleset.get('high_error_rate_iroh')
    facts = evaluation.ScopeFacts(targets=3, targets_up=3, nodes_by_transport={'libp2p': 3, 'iroh': 3})
    scope = evaluation.Scope(hosts=['h1'])
    # Prometheus has no value: the guard removed it, 8 requests in the window.
    few = evaluation.evaluate_rule(OneRulePrometheus(None, 8), rule, ruleset, scope, facts)
    assert few.verdict == evaluation.NO_DATA
    assert few.reason == ('insufficient data: 8 request(s) in the last 2m in hosts h1, at least 100 needed before '
                          'the rate is judged (neither a pass nor a fail)')
    assert few.as_dict()['observations'] == 8 and few.as_dict()['min_observations'] == 100
    enough = evaluation.evaluate_rule(OneRulePrometheus(0.5, 240), rule, ruleset, scope, facts)
    assert enough.verdict == evaluation.FAIL and enough.hosts == {'h1': 0.5}
