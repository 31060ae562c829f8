# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The EDA event source's rollback guard, driven with Alertmanager payloads and a real ledger (no rulebook).

The source is a trust boundary: anyone who can post to it could otherwise roll the fleet back. Forged,
unknown, incomplete and replayed alerts start nothing and block nothing; one firing starts one rollback.
"""

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
          rule_id='network_partition_risk', description='partition risk is 100%', starts='2026-11-29T21:00:00Z',
          fingerprint='f1'):
    labels = {'alertname': name, 'severity': severity, 'figure': figure}
    if rule_id:
        labels['rule_id'] = rule_id
    return {'status': status, 'labels': labels, 'startsAt': starts, 'fingerprint': fingerprint,
            'annotations': {'summary': 's', 'description': description,
                            'runbook_url': 'https://x/docs/runbooks/%s.md' % rule_id}}


ERROR_RATE = dict(name='HighErrorRateIroh', figure='error_rate', rule_id='high_error_rate_iroh', fingerprint='f2')


@pytest.fixture
def guard(source, tmp_path):
    clock = {'now': 1_000_000.0}
    return source.RollbackGuard(str(tmp_path / 'ledger.sqlite3'), dispatch_timeout=600,
                                clock=lambda: clock['now']), clock


def migration(guard, *alerts):
    return [e['migration'] for e in guard.events_for({'alerts': list(alerts)})]


def end_rollback(path):
    with ledger_lib.open_ledger(str(path)) as book:
        run = book.start_run('/x/project/fleet-recovery.yml', 'eda', kind='rollback')
        book.end_run(run, 'ok')
        return run


def test_one_rollback_per_firing_for_its_whole_lifetime(guard, tmp_path):
    guard, clock = guard
    first = migration(guard, alert())[0]
    assert first['actionable'] is True and first['trigger'] == 'alert:NetworkPartitionRisk'
    assert first['strategy'] == 'fast'
    # The rollback has not taken the lock yet: a second firing starts nothing.
    second = migration(guard, alert())[0]
    assert second['actionable'] is False and 'still running' in second['why']
    # It runs (lock held by the rollback run; its playbook file is named anything, its kind is rollback).
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3')) as book:
        run = book.start_run('/x/project/fleet-recovery.yml', 'eda', kind='rollback')
        book.acquire_lock('eda@controller', 'fleet-recovery.yml', run_id=run)
    third = migration(guard, alert())[0]
    assert third['actionable'] is False and 'lock is held by eda@controller' in third['why']
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3')) as book:
        book.release_lock('eda@controller', run_id=run)
        book.end_run(run, 'ok')
    # Alertmanager repeats the notification after the rollback ended while the alert still fires:
    # the same firing (fingerprint and startsAt) starts nothing, however late, from any source instance.
    clock['now'] += 3600
    repeat = migration(guard, alert())[0]
    assert repeat['actionable'] is False and 'already started a rollback' in repeat['why']
    restarted = type(guard)(str(tmp_path / 'ledger.sqlite3'), dispatch_timeout=600)
    assert migration(restarted, alert())[0]['actionable'] is False
    # It resolves; a new firing of the same alert may act again.
    assert migration(guard, alert(status='resolved'))[0]['actionable'] is False
    again = migration(guard, alert(starts='2026-11-29T23:00:00Z'))[0]
    assert again['actionable'] is True, again['why']
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3')) as book:
        kinds = [e['kind'] for e in book.events(kinds=['alert_fired', 'alert_resolved'], limit=10)]
    assert kinds == ['alert_fired', 'alert_resolved', 'alert_fired']


def test_a_run_of_another_kind_ending_does_not_end_the_rollback_in_flight(guard, tmp_path):
    guard, _clock = guard
    assert migration(guard, alert())[0]['actionable'] is True
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3')) as book:
        other = book.start_run('/x/project/rollback.yml', 'bob', kind='status')
        book.end_run(other, 'ok')
    assert 'still running' in migration(guard, alert(**ERROR_RATE))[0]['why']
    end_rollback(tmp_path / 'ledger.sqlite3')
    assert migration(guard, alert(**ERROR_RATE))[0]['actionable'] is True


def test_a_rollout_holding_the_lock_handles_the_alert(guard, tmp_path):
    guard, _clock = guard
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3')) as book:
        book.acquire_lock('operator@controller', 'rollout.yml')
    event = migration(guard, alert())[0]
    assert event['actionable'] is False and event['lock']['playbook'] == 'rollout.yml'
    assert guard.dispatched_at is None


@pytest.mark.parametrize('kwargs, why', [
    # A rule that is not the collection's, with every label an attacker can set.
    ({'name': 'NodeDiskFull', 'rule_id': 'node_disk_full', 'figure': 'disk'}, "not one of the collection's"),
    # The collection's warning rule, claiming to be critical: the rules decide, not the label.
    ({'name': 'IrohLatencySpike', 'rule_id': 'iroh_latency_spike', 'figure': 'latency_p95'}, 'does not roll back'),
    # A real rule id under another alert's name.
    ({'name': 'SomethingElse'}, 'is not the name of rule network_partition_risk'),
    ({'rule_id': None, 'name': 'NodeDown'}, "not one of the collection's"),
    ({'status': 'pending'}, 'not firing'),
    ({'status': 'resolved'}, 'resolved'),
])
def test_forged_unknown_and_incomplete_alerts_start_nothing_and_block_nothing(guard, kwargs, why):
    guard, _clock = guard
    event = migration(guard, alert(**kwargs))[0]
    assert event['actionable'] is False and why in event['why']
    assert guard.dispatched_at is None
    # The real alert that follows is not blocked.
    assert migration(guard, alert(fingerprint='real'))[0]['actionable'] is True


def test_events_carry_only_validated_fields(guard):
    guard, _clock = guard
    evil = "{{ lookup('ansible.builtin.pipe', 'id') }} {% raw %}"
    raw = alert(description=evil)
    raw['labels']['extra'] = '{{ 7 * 7 }}'
    event = guard.events_for({'alerts': [raw], 'receiver': 'page{{x}}'})[0]
    assert set(event) == {'migration', 'alert', 'meta'}
    assert event['alert'] == {'alertname': 'NetworkPartitionRisk', 'status': 'firing'}
    assert event['meta'] == {'receiver': 'page__x__'}
    assert '{{' not in repr({k: v for k, v in event['migration'].items() if k != 'reason_b64'})
    assert evil in base64.b64decode(event['migration']['reason_b64']).decode()


def test_an_unreadable_ledger_starts_nothing(source, tmp_path):
    (tmp_path / 'not-a-ledger').write_text('garbage, not SQLite')
    guard = source.RollbackGuard(str(tmp_path / 'not-a-ledger'))
    event = migration(guard, alert())[0]
    assert event['actionable'] is False and 'cannot be read' in event['why']


def test_partition_first_and_only_one_actionable_per_notification(guard):
    guard, _clock = guard
    events = guard.events_for({'alerts': [alert(**ERROR_RATE), alert()]})
    assert [e['alert']['alertname'] for e in events] == ['NetworkPartitionRisk', 'HighErrorRateIroh']
    assert [e['migration']['actionable'] for e in events] == [True, False]
    assert [e['migration']['strategy'] for e in events] == ['fast', 'gradual']


def test_a_dispatch_that_never_ran_stops_blocking_after_the_timeout(guard):
    guard, clock = guard
    assert migration(guard, alert())[0]['actionable'] is True
    clock['now'] += 601
    assert migration(guard, alert(**ERROR_RATE))[0]['actionable'] is True


def test_the_listener_needs_a_token_and_compares_it_in_constant_time(source):
    for args in ({}, {'token': ''}, {'token': '   ', 'host': '0.0.0.0'}):
        with pytest.raises(ValueError, match='needs a token'):
            source.listen_settings(args)
    assert source.listen_settings({'token': 's3cret', 'port': '6000'}) == ('127.0.0.1', 6000, 's3cret')
    assert source.authorized('Bearer s3cret', 's3cret')
    assert not source.authorized('Bearer s3cre', 's3cret') and not source.authorized(None, 's3cret')
    assert not source.authorized('s3cret', 's3cret')


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
    event = migration(guard, alert())[0]
    assert event['actionable'] is True, event['why']
