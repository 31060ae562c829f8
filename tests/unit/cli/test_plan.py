"""Plan files: schema errors named by field path, normalisation, and the stage selection."""

from __future__ import annotations

import json

import jsonschema
import pytest

from ant_fleet_sim.model import make_peer_id  # real peer ids: close groups need keys that decode
from ant_network_migration_cli import plan


def problems_of(data):
    with pytest.raises(plan.PlanError) as info:
        plan.validate(data)
    return info.value.problems


def test_published_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(plan.schema())


def test_minimal_plan_is_valid():
    assert plan.validate({'waves': [{'percent': 5}]}) == {'waves': [{'percent': 5}]}


@pytest.mark.parametrize('data, expected', [
    ({}, 'waves: required field is missing'),
    ({'waves': []}, 'waves: [] should be non-empty'),
    ({'waves': [{'percent': 150}]}, 'waves[0].percent: 150 is greater than the maximum of 100'),
    ({'waves': [{'percent': 0}]}, 'waves[0].percent: 0 is less than the minimum of 1'),
    ({'waves': [{'percent': 'abc'}]}, "waves[0].percent: 'abc' is not of type 'integer'"),
    ({'waves': [{}]}, 'waves[0].percent: required field is missing'),
    ({'waves': [{'percent': 5, 'size': 3}]}, 'waves[0].size: unknown field (allowed: batches, percent, soak)'),
    ({'waves': [{'percent': 5, 'batches': [0]}]}, 'waves[0].batches[0]: 0 is not valid: A host count'),
    ({'waves': [{'percent': 5, 'batches': ['200%']}]}, "waves[0].batches[0]: '200%' is not valid"),
    ({'waves': [{'percent': 5}], 'soak': '5 minutes'}, "soak: '5 minutes' is not valid: Seconds (integer)"),
    ({'waves': [{'percent': 5}], 'rollback_policy': 'explode'},
     "rollback_policy: 'explode' is not one of ['rollback', 'freeze']"),
    ({'waves': [{'percent': 5}], 'canary': {'duration': 60}}, 'canary.count: required field is missing'),
    ({'waves': [{'percent': 5}], 'canary': {'count': 0}}, 'canary.count: 0 is less than the minimum of 1'),
    ({'waves': [{'percent': 5}], 'thresholds': {'high_error_rate_iroh': {'threshold': 'high'}}},
     "thresholds.high_error_rate_iroh.threshold: 'high' is not of type 'number'"),
    ({'waves': [{'percent': 5}], 'thresholds': {'high_error_rate_iroh': {}}},
     'thresholds.high_error_rate_iroh: {} should be non-empty'),
    ({'waves': [{'percent': 5}], 'exclude': ['bad host']}, "exclude[0]: 'bad host' does not match"),
    ({'waves': [{'percent': 5}], 'version': 2}, 'version: must be 1, got 2'),
    ({'waves': [{'percent': 25}, {'percent': 10}]},
     "waves[1].percent: 10 must be greater than the previous wave's 25"),
    ({'waves': [{'percent': 5}], 'canary': {'count': 2, 'hosts': ['a']}},
     'canary.hosts: lists 1 hosts but canary.count is 2'),
])
def test_each_error_names_field_and_problem(data, expected):
    assert any(p.startswith(expected) for p in problems_of(data)), problems_of(data)


def test_every_problem_is_reported_at_once():
    found = problems_of({'waves': [{'percent': 150}], 'rollback_policy': 'x', 'nope': 1})
    assert [p.split(':')[0] for p in found] == ['nope', 'rollback_policy', 'waves[0].percent']


def test_load_yaml_and_json_and_resolve_inventory(tmp_path):
    (tmp_path / 'plan.yml').write_text('inventory: inv/hosts.yml\nwaves:\n  - percent: 5\n')
    (tmp_path / 'plan.json').write_text(json.dumps({'waves': [{'percent': 5}]}))
    assert plan.load(tmp_path / 'plan.yml')['inventory'] == str(tmp_path / 'inv' / 'hosts.yml')
    assert plan.load(tmp_path / 'plan.json') == {'waves': [{'percent': 5}]}


@pytest.mark.parametrize('text, expected', [
    ('waves: [percent: 5\n', 'not valid YAML or JSON (line 2'),
    ('- 1\n- 2\n', 'expected a mapping of plan fields, got list'),
])
def test_load_reports_unparsable_files(tmp_path, text, expected):
    path = tmp_path / 'plan.yml'
    path.write_text(text)
    with pytest.raises(plan.PlanError) as info:
        plan.load(path)
    assert expected in info.value.problems[0]


def test_load_missing_file(tmp_path):
    with pytest.raises(plan.PlanError, match='cannot read the file'):
        plan.load(tmp_path / 'nope.yml')


def test_durations_and_overrides():
    assert plan.parse_duration(90) == 90
    assert plan.parse_duration('5m') == 300
    assert plan.parse_duration('2h') == 7200
    with pytest.raises(ValueError):
        plan.parse_duration('soon')
    data = {'waves': [{'percent': 5}], 'thresholds': {'iroh_latency_spike': {'threshold': 0.4, 'for': 60},
                                                      'high_error_rate_iroh': {'for': '2m'}}}
    assert plan.alert_overrides(data) == {'high_error_rate_iroh': {'for': '2m'},
                                          'iroh_latency_spike': {'threshold': 0.4, 'for': '60s'}}


def test_unknown_rule_ids_are_named():
    with pytest.raises(plan.PlanError) as info:
        plan.check_rule_ids({'thresholds': {'nope': {'threshold': 1}}}, ['high_error_rate_iroh'])
    assert info.value.problems == ['thresholds.nope: unknown alert rule (known: high_error_rate_iroh)']


def fleet(hosts=10, per_host=5, modes=None):
    modes = modes or {}
    return [{'host': f'h{h:02d}', 'service_name': f'antnode{i}', 'peer_id': make_peer_id(1, f'h{h:02d}', i),
             'mode': modes.get(f'h{h:02d}', 'libp2p_only')}
            for h in range(1, hosts + 1) for i in range(1, per_host + 1)]


def test_selection_is_deterministic_sorted_and_skips_migrated_and_excluded():
    nodes = fleet(modes={'h01': 'dual_stack', 'h03': 'iroh_primary'})
    waves = [{'percent': 10}, {'percent': 40}, {'percent': 100, 'batches': [2]}]
    first = plan.select_plan(nodes, waves, exclude=['h05'], canary_count=1)
    again = plan.select_plan(list(reversed(nodes)), waves, exclude=['h05'], canary_count=1)
    assert first == again
    canary, wave10, wave40, wave100 = first
    assert canary.hosts == ('h02',)                 # h01 already moved
    assert wave10.hosts == () and 'nothing to do' in wave10.skipped
    assert wave40.hosts == ('h04',)                 # h01-h03 already moved: 30 %
    # Hosts are chosen by name; wave_planning may reorder them across batches to spread close groups.
    assert sorted(wave100.hosts) == ['h06', 'h07', 'h08', 'h09', 'h10']
    assert max(len(b) for b in wave100.batches) <= 2 and sum(len(b) for b in wave100.batches) == 5
    assert wave100.notes                            # h05 excluded: 100 % cannot be reached


def test_canary_skipped_when_ledger_has_a_passed_canary():
    canary, wave = plan.select_plan(fleet(), [{'percent': 20}], canary_count=2, canary_done=True)
    assert canary.hosts == () and canary.skipped
    assert wave.hosts == ('h01', 'h02')


def test_wave_planning_refusal_names_the_wave():
    with pytest.raises(plan.PlanError, match=r'waves\[0\]'):
        plan.select_plan([], [{'percent': 20}])
