"""Issue 22, case 3: one trust rule for every variable the collection reads that can come from -e.

The variables are derived from the files (collection_variables.py), never listed here: a variable a role or a
playbook starts to read is injected by these tests the day it appears. Each is given a
``{{ lookup('pipe', 'touch <marker>') }}``; the run must be refused (or take the value as data) and no marker
may appear. Before the rule, control_reason, wave_percent, rollback_reason and migration_prometheus_url each ran
the command, and ``-e '{"migration_inputs": {...}}'`` replaced the checked values (a wave of 150 went through).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import collection_variables as cv
import pytest
import yaml

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import validation

ROOT = cv.ROOT
PLAYBOOK = str(Path(sys.executable).parent / 'ansible-playbook')
INVENTORY = '[fleet]\nsim-host-01 ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable
# Read by the callback when the playbook starts (before any task): a template there stops the playbook at once.
READ_AT_START = ('migration_lock', 'migration_ledger_init')
TEMPLATE = "{{ lookup('pipe', 'touch %s') }}"


def injected(marker_dir, names):
    """Every name given a command that leaves a marker; lists and mappings carry it inside."""
    options = validation.known_inputs()
    values = {}
    for name in names:
        template = TEMPLATE % (marker_dir / name)
        kind = (options.get(name) or {}).get('type')
        values[name] = {'k': [template]} if kind == 'dict' else [template] if kind == 'list' else template
    return values


def play(playbook, tmp_path, *args, env=None):
    inventory = tmp_path / 'inventory.ini'
    inventory.write_text(INVENTORY)
    environ = dict(env or __import__('os').environ, ANT_MIGRATION_LEDGER=str(tmp_path / 'ledger.sqlite3'),
                   ANSIBLE_NOCOLOR='1')
    return subprocess.run([PLAYBOOK, '-i', str(inventory), str(ROOT / 'playbooks' / playbook), *args],
                          capture_output=True, text=True, timeout=600, cwd=str(ROOT), env=environ)


@pytest.fixture
def markers(tmp_path):
    directory = tmp_path / 'markers'
    directory.mkdir()
    return directory


# -- the rule itself, for each variable ------------------------------------------------------------------

def test_the_derivation_finds_what_the_issue_names():
    names = set(cv.read_variables())
    assert {'control_reason', 'wave_percent', 'rollback_reason', 'migration_prometheus_url'} <= names
    assert 'migration_inputs' in cv.assigned_variables()


@pytest.mark.parametrize('name', [n for n in cv.read_variables() if validation.in_namespace(n)])
def test_every_namespace_variable_with_a_template_is_refused(name, markers):
    problems = validation.extra_var_problems(injected(markers, [name]))
    assert len(problems) == 1 and problems[0].startswith(name + '='), problems


def test_every_variable_the_collection_reads_is_an_input_or_its_own():
    """A prefixed variable is a declared input (roles' options, SETTINGS) or set by the collection itself, which an
    extra var must not replace; the rule refuses the latter because it is no input."""
    known, assigned = validation.known_inputs(), cv.assigned_variables()
    for name in cv.read_variables():
        if validation.in_namespace(name):
            assert name in known or name in assigned, name
    for name in assigned - set(known):
        if validation.in_namespace(name):
            assert 'not an input' in validation.extra_var_problems({name: 'x'})[0], name
    assert set(validation.SETTINGS) <= set(cv.read_variables())


@pytest.mark.parametrize('name', [n for n in cv.read_variables() if not validation.in_namespace(n)])
def test_every_playbook_input_is_read_as_written(name):
    """The short names (wave, reason, ...) are declared by a playbook's migration_inputs task, read raw: free text
    is data (no Jinja of the collection refers to it), anything else refuses a template by its kind."""
    declared = cv.declared_inputs()
    assert name in declared, name
    assert name not in cv.referenced(), name
    for kind, _where in declared[name]:
        if kind == 'text':
            continue
        with pytest.raises(validation.InputError):
            validation.validate(kind, TEMPLATE % '/nonexistent', name, choices=['fast'])


def test_the_role_argument_specs_carry_the_ranges_the_validate_steps_check():
    """The ranges stated in the argument specs (the rule's source) and the minimums of the roles' own validate
    steps agree."""
    options = validation.role_options()
    for path in sorted(ROOT.glob('roles/*/tasks/validate.yml')):
        for task in yaml.safe_load(path.read_text()):
            inputs = (task.get('autonomi.network_migration.migration_inputs') or {}).get('inputs') or {}
            for name, spec in inputs.items():
                bounds = validation.spec_range(options[name])
                if spec['kind'] == 'count':
                    assert bounds and bounds[0] == spec.get('minimum', 0), name
                if spec['kind'] == 'fraction':
                    assert bounds == (0.0, 1.0, True), name
    assert validation.spec_range(options['wave_percent']) == (1.0, 100.0, False)


@pytest.mark.parametrize('name,value,accepted', [
    ('wave_percent', '150', False), ('wave_percent', '25', True), ('wave_percent', '25.0', False),
    ('wave_max_partition_risk', 0, False), ('wave_max_partition_risk', '0.5', True),
    ('canary_count', 0, False), ('dashboard_poll_interval', '0', False), ('dashboard_poll_interval', 0.5, True),
    ('rollback_strategy', 'sideways', False), ('monitoring_reload', 'maybe', False),
    ('migration_monitoring_hosts', 'prom:&fleet', True), ('migration_monitoring_hosts', 'a b', False),
    ('wave_percnt', 25, False), ('migration_inputs', {'wave': 25}, False)])
def test_role_options_given_with_e_are_checked_by_their_spec(name, value, accepted):
    assert (validation.extra_var_problems({name: value}) == []) is accepted


# -- through ansible-playbook -------------------------------------------------------------------------

@pytest.mark.parametrize('playbook', cv.playbooks())
def test_every_variable_injected_into_every_playbook_runs_nothing(playbook, tmp_path, markers):
    names = [n for n in cv.read_variables() if n not in READ_AT_START]
    extra = tmp_path / 'extra.json'
    extra.write_text(json.dumps(injected(markers, names)))
    proc = play(playbook, tmp_path, '-e', '@%s' % extra)
    output = proc.stdout + proc.stderr
    assert sorted(p.name for p in markers.iterdir()) == [], output[-3000:]
    assert proc.returncode != 0, output[-3000:]
    assert 'Bad input, refused before any host was read' in output, output[-3000:]
    own = {name for name, declared in cv.declared_inputs().items()
           if any(where == 'playbooks/%s' % playbook for _kind, where in declared)}
    for name in names:
        if validation.in_namespace(name) and name not in own:   # its own inputs: checked by kind, one per alias set
            assert '%s=' % name in output, name


@pytest.mark.parametrize('name', READ_AT_START)
def test_what_the_callback_reads_at_the_start_refuses_a_template(name, tmp_path, markers):
    proc = play('status.yml', tmp_path, '-e', '%s="%s"' % (name, TEMPLATE % (markers / name)))
    assert proc.returncode != 0 and 'The playbook was not started' in proc.stdout + proc.stderr
    assert list(markers.iterdir()) == []


@pytest.mark.parametrize('playbook,name,args', [
    ('pause.yml', 'control_reason', ['-e', 'reason=maintenance']),
    ('rollout.yml', 'wave_percent', ['-e', 'wave=25']),
    ('rollback.yml', 'rollback_reason', []),
    ('status.yml', 'migration_prometheus_url', []),
])
def test_the_variables_the_issue_names_run_nothing(playbook, name, args, tmp_path, markers):
    """As the issue typed them: -e key="{{ lookup('pipe', ...) }}"."""
    proc = play(playbook, tmp_path, *args, '-e', '%s="%s"' % (name, TEMPLATE % (markers / name)))
    output = proc.stdout + proc.stderr
    assert list(markers.iterdir()) == [], output[-3000:]
    assert proc.returncode != 0 and '%s=' % name in output and 'never templated' in output, output[-3000:]


def test_the_checked_inputs_cannot_be_replaced_from_outside(tmp_path):
    """-e '{"migration_inputs": {...}}' replaced what migration_inputs had checked: a wave of 150 went through."""
    forged = {'migration_inputs': {'wave': 150, 'stage': 'dual_stack', 'wave_playbook': 'rollout.yml'}}
    proc = play('rollout.yml', tmp_path, '-e', 'wave=25', '-e', json.dumps(forged))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and 'migration_inputs=' in output and 'not an input' in output, output[-3000:]
    assert 'Read the fleet' not in output


def test_free_text_given_with_e_is_data(tmp_path, markers):
    """A reason is stored and shown as written; the command in it never runs."""
    reason = 'because ' + TEMPLATE % (markers / 'reason')
    proc = play('pause.yml', tmp_path, '-e', json.dumps({'reason': reason}))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert list(markers.iterdir()) == []
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3')) as book:
        assert book.get_flags()['paused']['reason'] == reason
