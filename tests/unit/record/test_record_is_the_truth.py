# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the ledger says equals what was done: readiness, write-ahead intents, a run's outcome, hosts the
inventory no longer has. Plain ledger and tracker; the real runs are in tests/scenarios/test_record_truth.py."""

from __future__ import annotations

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard, run_kinds
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import (
    MigrationTracker,
    TrackerConfig,
    transition_items,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import control


@pytest.fixture
def book(tmp_path):
    with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as handle:
        yield handle


def hung_rollback_result():
    """transport_mode's result for a fast rollback where antnode1 was restarted but never seen ready (hung):
    its metrics could not be read, so neither its previous nor its current mode is known."""
    return {'mode': 'libp2p_only', 'changed': True, 'nodes': [
        {'service_name': 'antnode1', 'previous_mode': None, 'mode': None, 'result': 'not_ready',
         'seconds_waited': 10.5, 'error': 'metrics cannot be read: timed out'},
        {'service_name': 'antnode2', 'previous_mode': 'dual_stack', 'mode': 'libp2p_only', 'result': 'switched',
         'seconds_to_ready': 1.2}]}


def test_a_node_not_ready_after_a_rollback_is_recorded_in_its_configured_mode_and_not_ready(book):
    for service in ('antnode1', 'antnode2'):
        book.record_transition('h1', service, None, 'dual_stack_stable', mode='dual_stack')
    book.record_transitions(transition_items('h1', hung_rollback_result()))
    hung, fine = book.node('h1', 'antnode1'), book.node('h1', 'antnode2')
    assert (hung['state'], hung['mode'], hung['ready']) == ('rolled_back', 'libp2p_only', False)
    assert (fine['state'], fine['mode'], fine['ready']) == ('rolled_back', 'libp2p_only', True)
    progress = book.progress()
    assert progress['not_ready'] == 1 and progress['dual_stack'] == 0 and progress['by_state']['rolled_back'] == 2


def test_an_intent_is_ended_with_its_result_in_one_transaction(book):
    book.record_transition('h1', 'antnode1', None, 'libp2p_only', mode='libp2p_only')
    book.open_intent('h1', 'dual_stack', run_id=7)
    assert [i['host'] for i in book.intents()] == ['h1']
    items = [{'host': 'h1', 'service_name': 'antnode1', 'mode': 'dual_stack', 'ready': True, 'reason': 'x'}]
    book.close_intent('h1', items, run_id=7)
    assert book.intents() == [] and book.node('h1', 'antnode1')['state'] == 'dual_stack_testing'


def test_a_failed_write_leaves_the_intent_and_the_old_row(book):
    book.record_transition('h1', 'antnode1', None, 'libp2p_only', mode='libp2p_only')
    book.open_intent('h1', 'dual_stack', run_id=7)
    with pytest.raises(ledger_lib.LedgerError):
        book.close_intent('h1', [{'host': 'h1', 'service_name': 'antnode1', 'to_state': 'no-such-state'}])
    assert [i['host'] for i in book.intents()] == ['h1']
    assert book.node('h1', 'antnode1')['state'] == 'libp2p_only'


def test_an_unrecorded_switch_of_another_run_counts_as_a_halt_until_acknowledged(book):
    book.open_intent('h2', 'dual_stack', run_id=3)
    mine = guard.Actor(run_id=4)
    refused = guard.check(book, mine)
    assert not refused.allowed and refused.refused == guard.UNRECORDED and 'h2' in refused.reason
    assert 'reconcile' in refused.reason
    # A rollback passes it, as it passes a halt; the run that wrote the intent is not blocked by it.
    assert guard.check(book, mine, ignore_pause=True, allow_rollback=True).allowed
    assert guard.check(book, guard.Actor(run_id=3)).allowed
    assert control.resume(book, 'alice')['refused'] == 'halted'
    assert book.intents()                                   # nothing cleared without ack
    done = control.resume(book, 'alice', ack=True)
    assert done['changed'] and 'unrecorded switches acknowledged' in done['msg']
    assert book.intents() == [] and guard.check(book, mine).allowed
    assert book.events(kinds=['intents_acknowledged'])[0]['data']['intents'][0]['host'] == 'h2'


def test_hosts_switched_side_by_side_without_the_tracker_are_in_flight_not_unrecorded(book):
    """Without the tracker (no run id) two hosts of one ansible-playbook switch at once: the other host's open
    intent is this controller's, in flight; another controller's, or a dead one's, is unrecorded."""
    mine = guard.Actor(run_id=None, holder=None, controller_pid=100, hostname='ctl')
    book.open_intent('h1', 'dual_stack', run_id=None, holder=mine.in_flight_holder())
    assert guard.check(book, mine).allowed
    refused = guard.check(book, guard.Actor(run_id=None, holder=None, controller_pid=200, hostname='ctl'))
    assert not refused.allowed and refused.refused == guard.UNRECORDED and 'h1' in refused.reason


def test_the_conclusion_is_the_runs_outcome(tmp_path):
    location = str(tmp_path / 'l.sqlite3')
    tracker = MigrationTracker(TrackerConfig(ledger=location), environ={})
    run = tracker.start_playbook('fleet-recovery.yml', kind='rollback')
    control.record_conclusion(tracker.ledger, 'rollback', 'degraded', run_id=run)
    # The conclude task failed (degraded fails the job): the run is degraded, not merely failed.
    tracker.end_playbook({'localhost': {'failures': 1}})
    with ledger_lib.open_ledger(location) as book:
        assert book.run(run)['outcome'] == 'degraded'
    assert run_kinds.run_outcome('succeeded') == 'ok' and run_kinds.run_outcome('passed') == 'ok'
    assert run_kinds.worst(['ok', 'degraded', 'failed', 'stopped_early']) == 'failed'


def test_the_summary_names_migrated_hosts_the_inventory_lacks_and_unrecorded_switches(tmp_path):
    location = str(tmp_path / 'l.sqlite3')
    with ledger_lib.open_ledger(location) as book:
        book.record_transition('gone-host', 'antnode1', None, 'dual_stack_stable', mode='dual_stack')
        book.record_transition('h1', 'antnode1', None, 'dual_stack_stable', mode='dual_stack')
        book.open_intent('h1', 'iroh_primary', run_id=99)
    tracker = MigrationTracker(TrackerConfig(ledger=location), environ={})
    tracker.start_playbook('status.yml', kind='status')
    tracker.inventory_hosts = ['h1', 'localhost']
    lines = tracker.end_playbook({})
    outside = [line for line in lines if line.startswith('NOT IN THE INVENTORY')]
    assert outside and 'gone-host (antnode1)' in outside[0] and 'h1' not in outside[0]
    assert any(line.startswith('UNRECORDED: the switch of h1 to iroh_primary') for line in lines)


def test_schema_v6_migrates_an_older_ledger_forward(tmp_path):
    import sqlite3

    path = tmp_path / 'old.sqlite3'
    with ledger_lib.open_ledger(str(path)) as book:
        book.record_transition('h1', 'antnode1', None, 'dual_stack_stable', mode='dual_stack')
    db = sqlite3.connect(str(path))
    db.execute('DROP TABLE ledger_intents')
    db.execute('ALTER TABLE ledger_nodes DROP COLUMN ready')
    db.execute('ALTER TABLE ledger_runs DROP COLUMN clock_offset')
    db.execute("UPDATE ledger_meta SET value = '5' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with ledger_lib.open_ledger(str(path)) as book:
        assert book.schema_version() == 6 and book.intents() == []
        assert book.node('h1', 'antnode1')['ready'] is None
