"""The CLI asks the collection's use cases (plugins/plugin_utils/services, guard.py) and decides nothing itself:
the canary verdict, may a run start (the guard with unrecorded switches, the failure budget), pause and
resume, and what status shows and exits with."""

from __future__ import annotations

import json

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_mod
from ant_network_migration_cli import errors, runs


@pytest.fixture
def no_run(monkeypatch):
    monkeypatch.setattr(runs, 'run_playbook', lambda *a, **k: pytest.fail('no playbook may run'))


@pytest.fixture
def recorded_runs(monkeypatch):
    calls = []

    def fake_run(name, **kwargs):
        calls.append((name, kwargs['extravars']))
        return runs.RunOutcome(name, 'successful', 0)

    monkeypatch.setattr(runs, 'run_playbook', fake_run)
    return calls


def book(ledger_path):
    return ledger_mod.open_ledger(str(ledger_path))


def plan(tmp_path, text='waves: [{percent: 50}]\n'):
    path = tmp_path / 'plan.yml'
    path.write_text(text)
    return path


@pytest.mark.parametrize('verdict', ['PASSED', 'Passed'])
def test_only_the_canary_services_passed_verdict_counts(invoke, tmp_path, inventory_path, ledger_path, no_run, verdict):
    """services/canary.passed(): the verdict word as the ledger records it; the wave's own precondition would
    refuse this canary, so the CLI says so before running anything (it used to lower-case the word)."""
    with book(ledger_path) as handle:
        handle.set_canary_verdict(verdict)
    result = invoke('-i', inventory_path, 'start', '--plan', plan(tmp_path), '--dry-run')
    assert result.exit_code == errors.EXIT_BAD_INPUT, result.output
    assert 'no canary stage and the ledger records no passed canary' in result.output


def test_a_switch_never_recorded_refuses_a_start_but_not_a_rollback(invoke, tmp_path, inventory_path, ledger_path,
                                                                   recorded_runs):
    """An intent nobody ended (ledger v6) is a halt for every run but a rollback (guard.decide over
    guard.snapshot_of, with the intents)."""
    with book(ledger_path) as handle:
        handle.open_intent('sim-host-02', 'dual_stack', run_id=None)
    for args in (('--dry-run',), ()):
        result = invoke('-i', inventory_path, 'start', '--plan', plan(tmp_path), *args)
        assert result.exit_code == errors.EXIT_REFUSED, result.output
        assert 'the switch of sim-host-02 to dual_stack was never recorded' in result.output
    assert recorded_runs == []
    result = invoke('rollback', '--yes')
    assert result.exit_code == 0, result.output
    assert [name for name, _ in recorded_runs] == ['rollback.yml']


def test_an_exhausted_failure_budget_refuses_a_start(invoke, tmp_path, inventory_path, ledger_path, no_run):
    """services/control.check(): the failure budget, as the wave's precondition asks it."""
    with book(ledger_path) as handle:
        handle.set_failure_budget(1)
        handle.record_failure('sim-host-01', 'antnode1', reason='crashed')
    result = invoke('-i', inventory_path, 'start', '--plan', plan(tmp_path))
    assert result.exit_code == errors.EXIT_REFUSED, result.output
    assert 'the failure budget is exhausted: budget: 1 of 1 failed node(s) used' in result.output


def test_resume_asks_the_control_service_about_unrecorded_switches(invoke, ledger_path, recorded_runs):
    """Neither paused nor halted, but a switch was never recorded: resume needs --ack (resume_decision)."""
    with book(ledger_path) as handle:
        handle.open_intent('sim-host-03', 'dual_stack', run_id=None)
    refused = invoke('resume')
    assert refused.exit_code == errors.EXIT_REFUSED, refused.output
    assert 'never recorded' in refused.output and 'resume --ack' in refused.output
    assert recorded_runs == []
    done = invoke('resume', '--ack', '--operator', 'ops')
    assert done.exit_code == 0, done.output
    assert recorded_runs == [('resume.yml', {'ack': True, 'operator': 'ops'})]
    assert 'resumed by ops (unrecorded switches acknowledged)' in done.output


def test_resume_and_pause_say_what_the_service_says(invoke, ledger_path, no_run):
    assert 'nothing to resume: migration is neither paused nor halted' in invoke('resume').output
    with book(ledger_path) as handle:
        handle.set_pause('first', 'alice')
    result = invoke('pause', '--reason', 'second')
    assert result.exit_code == 0 and 'already paused by alice: first' in result.output


def end_run(ledger_path, kind, outcome, failures=0):
    with book(ledger_path) as handle:
        run = handle.start_run(f'playbooks/{kind}-copy.yml', 'alice', kind=kind)
        handle.end_run(run, outcome, {'hosts': {'sim-host-01': {'failures': failures, 'ok': 3}}})
    return run


@pytest.mark.parametrize(('outcome', 'failures', 'code'), [
    ('ok', 0, 0), ('stopped_early', 0, 0), ('degraded', 1, 1), ('degraded', 0, 0), ('incomplete', 1, 1),
    ('halted', 1, 1), ('frozen', 1, 1), ('paused', 1, 1), ('killed', 0, 1), ('refused_locked', 1, 1)])
def test_status_exits_with_the_last_migration_runs_outcome(invoke, ledger_path, outcome, failures, code):
    """docs/operator-guide.md "Outcomes and exit codes": an outcome whose playbook fails makes status exit 1
    (a degraded rollback with rollback_degraded_fails off did not fail its playbook); a later run of another
    kind (status, pause) does not hide it."""
    run = end_run(ledger_path, 'rollback', outcome, failures)
    end_run(ledger_path, 'status', 'ok')
    result = invoke('status', '--json')
    assert result.exit_code == code, result.output
    shown = json.loads(result.stdout)['run']
    assert (shown['id'], shown['kind'], shown['stage'], shown['outcome'], shown['failed']) == (
        run, 'rollback', 'rollback', outcome, bool(code))
    table = invoke('status')
    assert table.exit_code == code and f'rollback (run {run}' in table.output and outcome in table.output


def test_status_while_a_run_is_under_way_exits_0(invoke, ledger_path):
    end_run(ledger_path, 'rollout', 'halted', 1)
    with book(ledger_path) as handle:
        handle.start_run('playbooks/rollout.yml', 'bob', kind='rollout')
    result = invoke('status', '--json')
    assert result.exit_code == 0
    run = json.loads(result.stdout)['run']
    assert run['running'] is True and run['failed'] is None and run['stage'] == 'wave'


def test_status_shows_lock_heartbeat_intents_budget_and_not_ready(invoke, ledger_path):
    with book(ledger_path) as handle:
        handle.acquire_lock('erin@ctl', 'rollout.yml')
        handle.open_intent('sim-host-04', 'dual_stack', run_id=None)
        handle.set_failure_budget(3)
        handle.record_failure('sim-host-01', 'antnode1', reason='crashed')
        handle.record_transitions([{'host': 'sim-host-01', 'service_name': 'antnode2', 'to_state': 'dual_stack_stable',
                                    'mode': 'dual_stack', 'ready': False}])
    data = json.loads(invoke('status', '--json').stdout)
    assert data['lock']['holder'] == 'erin@ctl' and data['lock']['heartbeat_at'] and data['lock_live'] is True
    assert [(i['host'], i['mode']) for i in data['intents']] == [('sim-host-04', 'dual_stack')]
    assert (data['budget']['used'], data['budget']['budget'], data['budget_exhausted']) == (1, 3, False)
    assert data['progress']['not_ready'] == 1 and data['progress']['fleet_read'] is True
    table = invoke('status').output
    assert 'held by erin@ctl' in table and 'last heartbeat' in table
    assert 'the switch of sim-host-04 to dual_stack was never recorded' in table
    assert 'budget: 1 of 3 failed node(s) used' in table and '1 node(s)' in table


def test_status_of_a_fresh_ledger_says_the_fleet_was_not_read(cli_runner, tmp_path):
    from ant_network_migration_cli.main import cli

    location = str(tmp_path / 'fresh.sqlite3')
    assert cli_runner.invoke(cli, ['--ledger', location, 'init']).exit_code == 0
    result = cli_runner.invoke(cli, ['--ledger', location, 'status'])
    assert result.exit_code == 0, result.output
    assert 'not read yet' in result.output and 'none yet' in result.output
