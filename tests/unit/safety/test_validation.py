"""The one validator per input kind, and that the argument specs and the plan schema agree with it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import validation as v

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize('value,expected', [(25, 25), ('25', 25), (1, 1), ('100', 100), (100, 100)])
def test_wave_percent_accepts_integers_written_as_such(value, expected):
    assert v.wave_percent(value) == expected


@pytest.mark.parametrize('value', ['1e2', ' 25', '25 ', '25.0', 25.0, True, False, None, 0, 101, '0', '-5', '',
                                   '0x19', '25%', [25], '٢٥'])
def test_wave_percent_refuses_everything_else_naming_the_variable_and_form(value):
    with pytest.raises(v.InputError) as info:
        v.wave_percent(value)
    message = str(info.value)
    assert message.startswith('wave=%r' % (value,))
    assert 'an integer from 1 to 100 written as such' in message and 'wave_percent' not in message


@pytest.mark.parametrize('value,expected', [
    (True, True), (False, False), ('true', True), ('false', False), ('True', True), ('False', False),
    ('yes', True), ('no', False), ('on', True), ('off', False), ('1', True), ('0', False), (1, True), (0, False)])
def test_booleans_accept_what_awx_passes(value, expected):
    assert v.boolean(value, 'monitoring_reload') is expected


@pytest.mark.parametrize('value', ['maybe', '', None, 2, 'truee', [True]])
def test_booleans_refuse_the_rest(value):
    with pytest.raises(v.InputError, match='monitoring_reload=.*true or false'):
        v.boolean(value, 'monitoring_reload')


@pytest.mark.parametrize('value,seconds', [(300, 300), ('300', 300), ('30s', 30), ('5m', 300), ('2h', 7200),
                                           ('1d', 86400), ('1w', 604800), ('1500ms', 2), (0, 0)])
def test_durations(value, seconds):
    assert v.duration(value, 'soak') == seconds


@pytest.mark.parametrize('value', ['5 m', '5min', '-1', -1, 1.5, True, '', None, '1e3'])
def test_bad_durations(value):
    with pytest.raises(v.InputError, match='soak='):
        v.duration(value, 'soak')


def test_modes_strategies_and_choices_are_exact():
    assert v.mode('iroh_only') == 'iroh_only'
    assert v.strategy('gradual') == 'gradual'
    for bad in ('IROH_ONLY', ' iroh_only', 'libp2p_only', 1):
        with pytest.raises(v.InputError, match='stage='):
            v.mode(bad)
    with pytest.raises(v.InputError, match="strategy='slow'.*fast, gradual"):
        v.strategy('slow')


def test_group_and_host_names():
    groups = {'all': ['a', 'b', 'x'], 'fleet': ['a', 'b'], 'canary': ['a'], 'ungrouped': []}
    assert v.group_name('canary', 'canary_group', groups) == 'canary'
    with pytest.raises(v.InputError, match="canary_group='canaries'.*no such group.*known: canary, fleet"):
        v.group_name('canaries', 'canary_group', groups)
    with pytest.raises(v.InputError, match='canary_group='):
        v.group_name('bad name', 'canary_group')
    assert v.host_names(['a'], 'hosts', allowed=groups['fleet']) == ['a']
    with pytest.raises(v.InputError, match='x not in fleet'):
        v.host_names(['a', 'x'], 'hosts', allowed=groups['fleet'])


def test_text_is_returned_as_plain_str_and_verbatim():
    from ansible._internal._datatag._tags import TrustedAsTemplate

    trusted = TrustedAsTemplate().tag("{{ lookup('pipe', 'id') }} two words")
    text = v.text(trusted, 'reason')
    assert text.__class__ is str and text == "{{ lookup('pipe', 'id') }} two words"
    assert not TrustedAsTemplate.is_tagged_on(text)
    with pytest.raises(v.InputError, match='reason is|reason=None'):
        v.text(None, 'reason', required=True)
    with pytest.raises(v.InputError):
        v.text('   ', 'reason', required=True)


def test_validate_dispatches_by_kind():
    assert v.validate('wave_percent', '25', 'wave') == 25
    assert v.validate('count', '3', 'canary_count', minimum=1) == 3
    with pytest.raises(v.InputError, match='less than 1'):
        v.validate('count', '0', 'canary_count', minimum=1)
    with pytest.raises(ValueError, match='unknown input kind'):
        v.validate('nope', 1, 'x')


# -- the mirrors: argument specs and the plan schema agree with the validators -------------------

def _specs(role):
    return yaml.safe_load((ROOT / 'roles' / role / 'meta' / 'argument_specs.yml').read_text())['argument_specs']


def test_role_argument_specs_mirror_the_validators():
    wave = _specs('wave')['validate']['options']
    assert tuple(wave['wave_stage']['choices']) == v.WAVE_STAGES
    assert tuple(wave['wave_rollback_policy']['choices']) == v.ROLLBACK_POLICIES
    assert wave['wave_percent']['type'] == 'int' and '1-100' in wave['wave_percent']['description']
    rollback = _specs('rollback')['validate']['options']
    assert tuple(rollback['rollback_strategy']['choices']) == v.STRATEGIES
    assert tuple(rollback['rollback_target']['choices']) == v.ROLLBACK_TARGETS
    canary = _specs('canary')['validate']['options']
    assert canary['canary_count']['type'] == 'int'
    monitoring = _specs('monitoring')['main']['options']
    assert monitoring['monitoring_reload']['type'] == 'bool'


def _plan_schema():
    return json.loads((ROOT / 'src' / 'ant_network_migration_cli' / 'plan.schema.json').read_text())


def test_plan_schema_mirrors_the_validators():
    schema = _plan_schema()
    percent = schema['properties']['waves']['items']['properties']['percent']
    assert (percent['type'], percent['minimum'], percent['maximum']) == ('integer', 1, 100)
    assert schema['$defs']['name']['pattern'] == v.NAME_PATTERN
    assert schema['$defs']['duration']['oneOf'][1]['pattern'] == v.DURATION_PATTERN
    assert tuple(schema['properties']['rollback_policy']['enum']) == v.ROLLBACK_POLICIES


@pytest.mark.parametrize('value', [25, 1, 100, 0, 101, True, 25.0, '25', 25.5])
def test_a_plan_wave_is_accepted_exactly_when_the_validator_accepts_it(value):
    from ant_network_migration_cli import plan

    try:
        v.wave_percent(value)
        accepted = not isinstance(value, str)    # a plan is YAML/JSON: a number, not a string
    except v.InputError:
        accepted = False
    try:
        plan.validate({'waves': [{'percent': value}]})
        planned = True
    except plan.PlanError:
        planned = False
    assert planned is accepted


@pytest.mark.parametrize('value', ['30s', '5m', '2h', 7, '5 m', '1e3', -1])
def test_plan_durations_agree_with_the_validator(value):
    definition = _plan_schema()['$defs']['duration']
    try:
        v.duration(value, 'soak')
        accepted = not (isinstance(value, str) and value.isdigit())
    except v.InputError:
        accepted = False
    valid = jsonschema.Draft202012Validator(definition).is_valid(value)
    assert valid is accepted


def test_every_playbook_checks_its_inputs_with_the_one_validator():
    """The playbooks that take operator input run migration_inputs in their first play."""
    for name in ('promote.yml', 'canary.yml', 'pause.yml', 'resume.yml', 'rollback.yml', 'reconcile.yml',
                 'monitoring.yml'):
        text = (ROOT / 'playbooks' / name).read_text()
        assert 'autonomi.network_migration.migration_inputs' in text, name
    # No playbook templates an operator's free text.
    for path in (ROOT / 'playbooks').glob('*.yml'):
        text = path.read_text()
        assert not re.search(r'\{\{\s*(reason|operator|trigger)\b', text), path.name


@pytest.mark.parametrize('value,expected', [
    ([1, '10%', '25%'], [1, '10%', '25%']), (['50%'], ['50%']), (2, [2]), ('3', [3]), ([' 25% ', '2'], ['25%', 2]),
])
def test_batches_accept_host_counts_and_percentages(value, expected):
    assert v.batches(value, 'wave_batches') == expected


@pytest.mark.parametrize('value', [[], [0], ['0%'], ['150%'], ['abc'], [True], [-3], [1.5], {'a': 1}, None, 'x%'])
def test_batches_refuse_the_rest_naming_the_variable_and_form(value):
    with pytest.raises(v.InputError, match=r'wave_batches=.* is not accepted.*\[1, "10%", "25%"\]'):
        v.batches(value, 'wave_batches')


def test_fractions():
    assert v.fraction(0.4, 'share') == 0.4 and v.fraction('1', 'share') == 1.0
    for bad in (0, -0.1, 1.5, 'abc', True, None):
        with pytest.raises(v.InputError, match='share=.* above 0 and at most 1'):
            v.fraction(bad, 'share')
