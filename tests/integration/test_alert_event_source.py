# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The EDA event source's rollback guard, driven with Alertmanager payloads and a real ledger (no rulebook)."""

from __future__ import annotations

import base64
import importlib.util
import subprocess

import pytest
from alerting_stack import ROOT

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

SOURCE = ROOT / 'extensions' / 'eda' / 'plugins' / 'event_source' / 'alertmanager.py'


@pytest.fixture(scope='module')
def source():
    spec = importlib.util.spec_from_file_location('eda_alertmanager_source', SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alert(name='NetworkPartitionRisk', status='firing', severity='critical', figure='partition_risk',
          rule_id='network_partition_risk', description='partition risk is 100%'):
    labels = {'alertname': name, 'severity': severity, 'figure': figure}
    if rule_id:
        labels['rule_id'] = rule_id
    return {'status': status, 'labels': labels, 'startsAt': '2026-11-29T21:00:00Z',
            'annotations': {'summary': 's', 'description': description,
                            'runbook_url': 'https://x/docs/runbooks/%s.md' % rule_id}}


@pytest.fixture
def guard(source, tmp_path):
    clock = {'now': 1_000_000.0}
    return source.RollbackGuard(str(tmp_path / 'ledger.sqlite3'), dispatch_timeout=600,
                                clock=lambda: clock['now']), clock


def test_one_rollback_per_firing_until_it_ends(guard, tmp_path):
    guard, clock = guard
    first = guard.events_for({'alerts': [alert()]})[0]['migration']
    assert first['actionable'] is True and first['trigger'] == 'alert:NetworkPartitionRisk'
    # The rollback has not taken the lock yet: a second firing starts nothing.
    second = guard.events_for({'alerts': [alert()]})[0]['migration']
    assert second['actionable'] is False and 'still running' in second['why']
    # It runs (lock held by the rollback run; its playbook file is named anything, its kind is rollback).
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3')) as book:
        run = book.start_run('/x/project/fleet-recovery.yml', 'eda', kind='rollback')
        book.acquire_lock('eda@controller', 'fleet-recovery.yml', run_id=run)
    third = guard.events_for({'alerts': [alert()]})[0]['migration']
    assert third['actionable'] is False and 'lock is held by eda@controller' in third['why']
    # A run that merely has "rollback" in its file name but is of another kind ending changes nothing.
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3')) as book:
        book.release_lock('eda@controller', run_id=run)
        other = book.start_run('/x/project/rollback.yml', 'bob', kind='status')
        book.end_run(other, 'ok')
    assert guard.events_for({'alerts': [alert()]})[0]['migration']['actionable'] is False
    # The rollback run ended: the next firing may start a rollback again.
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3')) as book:
        book.end_run(run, 'ok')
    assert guard.events_for({'alerts': [alert()]})[0]['migration']['actionable'] is True


def test_a_rollout_holding_the_lock_handles_the_alert(guard, tmp_path):
    guard, _clock = guard
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3')) as book:
        book.acquire_lock('operator@controller', 'rollout.yml')
    event = guard.events_for({'alerts': [alert()]})[0]['migration']
    assert event['actionable'] is False and event['lock']['playbook'] == 'rollout.yml'
    assert guard.dispatched_at is None


@pytest.mark.parametrize('kwargs, why', [
    ({'status': 'resolved'}, 'not firing'),
    ({'severity': 'warning', 'name': 'IrohLatencySpike', 'figure': 'latency_p95'}, 'not critical'),
    ({'rule_id': None, 'name': 'NodeDown'}, 'not a migration alert'),
])
def test_only_firing_critical_migration_alerts_are_actionable(guard, kwargs, why):
    guard, _clock = guard
    event = guard.events_for({'alerts': [alert(**kwargs)]})[0]['migration']
    assert event['actionable'] is False and why in event['why']


def test_an_unreadable_ledger_starts_nothing(source, tmp_path):
    (tmp_path / 'not-a-ledger').write_text('garbage, not SQLite')
    guard = source.RollbackGuard(str(tmp_path / 'not-a-ledger'))
    event = guard.events_for({'alerts': [alert()]})[0]['migration']
    assert event['actionable'] is False and 'cannot be read' in event['why']


def test_partition_first_and_only_one_actionable_per_notification(guard):
    guard, _clock = guard
    events = guard.events_for({'alerts': [
        alert('HighErrorRateIroh', figure='error_rate', rule_id='high_error_rate_iroh'), alert()]})
    assert [e['alert']['labels']['alertname'] for e in events] == ['NetworkPartitionRisk', 'HighErrorRateIroh']
    assert [e['migration']['actionable'] for e in events] == [True, False]


def test_a_dispatch_that_never_ran_stops_blocking_after_the_timeout(guard):
    guard, clock = guard
    assert guard.events_for({'alerts': [alert()]})[0]['migration']['actionable'] is True
    clock['now'] += 601
    assert guard.events_for({'alerts': [alert()]})[0]['migration']['actionable'] is True


def test_alert_text_is_carried_as_data(guard):
    guard, _clock = guard
    evil = "{{ lookup('ansible.builtin.pipe', 'id') }} {% raw %}"
    event = guard.events_for({'alerts': [alert(name='Bad{{name}}', description=evil)]})[0]['migration']
    assert event['trigger'] == 'alert:Bad__name__'
    assert evil in base64.b64decode(event['reason_b64']).decode()


def test_a_lock_left_by_a_dead_controller_does_not_block_the_rollback(guard, tmp_path, monkeypatch):
    """The controller of a rollout died and left its lock: the alert still starts the rollback,
    which takes the lock over (the guard's and the ledger's one definition of a live lock)."""
    guard, _clock = guard
    gone = subprocess.Popen(['true'])
    gone.wait()
    monkeypatch.setenv('ANT_MIGRATION_CONTROLLER_PID', str(gone.pid))
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3')) as book:
        book.acquire_lock('operator@controller', 'rollout.yml')
        assert book.lock() and book.live_lock() is None
    monkeypatch.delenv('ANT_MIGRATION_CONTROLLER_PID')
    event = guard.events_for({'alerts': [alert()]})[0]['migration']
    assert event['actionable'] is True, event['why']
