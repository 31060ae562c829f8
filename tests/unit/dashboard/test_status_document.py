"""The /status document from a real ledger through the dashboard's own reader: what the ledger records
(the lock and its heartbeat, unrecorded switches, the failure budget, nodes not ready, a fresh ledger,
the runs with their outcomes) and the stage of a run from the kind recorded with it."""

from __future__ import annotations

import subprocess
import sys

import jsonschema

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import identity
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ant_network_migration_dashboard import sources, status, testing

SCHEMA = status.load_schema()


def document(location):
    reader = sources.LedgerReader(str(location))
    try:
        data, error = reader.snapshot()
    finally:
        reader.close()
    assert error is None, error
    doc = status.build({'data': data, 'error': None, 'checked_at': 0, 'last_ok_at': 0},
                       {'data': None, 'error': 'not asked', 'checked_at': 0}, status.History(('libp2p', 'iroh')))
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
    return doc


def test_the_stage_is_the_recorded_kind_not_the_playbook_name(tmp_path):
    """A renamed copy of rollback.yml is still a rollback; a run of a playbook called rollout.yml that declares
    itself a status run is a status run."""
    location = tmp_path / 'l.sqlite3'
    with ledger_lib.open_ledger(str(location)) as book:
        book.start_run('/srv/site/playbooks/emergency-back.yml', 'ops', kind='rollback')
    run = document(location)['run']
    assert (run['kind'], run['stage'], run['running'], run['failed']) == ('rollback', 'rollback', True, None)
    with ledger_lib.open_ledger(str(location)) as book:
        book.start_run('playbooks/rollout.yml', 'ops', kind='status')
    assert document(location)['run']['stage'] == 'status'


def test_the_document_carries_what_the_ledger_records(tmp_path, monkeypatch):
    location = tmp_path / 'l.sqlite3'
    testing.fill_ledger(location, hosts=3, nodes_per_host=2, dual_hosts=1)
    gone = subprocess.Popen([sys.executable, '-c', 'pass'])
    gone.wait()
    with ledger_lib.open_ledger(str(location)) as book:
        run = book.start_run('playbooks/rollout.yml', 'alice', kind='rollout')
        book.end_run(run, 'halted')
        book.record_transitions([{'host': 'sim-host-01', 'service_name': 'antnode1', 'to_state': 'dual_stack_stable',
                                  'mode': 'dual_stack', 'ready': False}])
        book.open_intent('sim-host-02', 'dual_stack', run_id=run)
        book.set_failure_budget(2)
        book.record_failure('sim-host-01', 'antnode1', reason='not ready', run_id=run)
        book.record_failure('sim-host-01', 'antnode2', reason='crashed', run_id=run)
        monkeypatch.setenv(identity.ENV_CONTROLLER_PID, str(gone.pid))       # a controller that is gone
        book.acquire_lock('bob@ctl', 'rollback.yml')
        book.start_run('playbooks/status.yml', 'carol', kind='status')
    doc = document(location)
    assert doc['migration']['fleet_read'] is True and doc['migration']['not_ready'] == 1
    assert [(i['host'], i['mode'], i['run_id']) for i in doc['intents']] == [('sim-host-02', 'dual_stack', run)]
    budget = doc['budget']
    assert (budget['used'], budget['budget'], budget['exhausted']) == (2, 2, True)
    assert budget['text'].startswith('budget: 2 of 2 failed node(s) used')
    lock = doc['lock']
    assert lock['holder'] == 'bob@ctl' and lock['heartbeat_at'] and lock['live'] is False
    # The latest run (a status run) and the latest migration run, whose outcome fails its playbook.
    assert doc['run']['stage'] == 'status'
    migration = doc['migration_run']
    assert (migration['id'], migration['stage'], migration['outcome'], migration['failed']) == (
        run, 'wave', 'halted', True)


def test_a_fresh_ledger_says_it_has_not_read_the_fleet(tmp_path):
    location = tmp_path / 'l.sqlite3'
    ledger_lib.open_ledger(str(location)).close()
    doc = document(location)
    assert doc['migration']['fleet_read'] is False
    assert doc['intents'] == [] and doc['lock'] is None and doc['run'] is None and doc['migration_run'] is None
    assert doc['budget']['exhausted'] is False


def test_the_preflight_is_shown_as_status_shows_it(tmp_path):
    """None recorded, a failed preflight naming its items, then a waiver of the gate: the document's result and
    the line `status` prints (services/preflight.describe), valid against the schema each time."""
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import preflight

    location = tmp_path / 'l.sqlite3'
    ledger_lib.open_ledger(str(location)).close()
    none = document(location)['preflight']
    assert none['result'] == 'none' and none['text'].startswith('preflight: none recorded')
    with ledger_lib.open_ledger(str(location)) as book:
        book.record_event(preflight.EVENT, result='failed', failed_items=['backup'], waived_items=['thresholds'],
                          items=[], operator='alice')
    failed = document(location)['preflight']
    assert (failed['result'], failed['failed_items'], failed['waived_items'], failed['operator']) == (
        'failed', ['backup'], ['thresholds'], 'alice')
    assert failed['text'].startswith('preflight: failed ') and '(failed: backup) (waived: thresholds)' in failed['text']
    with ledger_lib.open_ledger(str(location)) as book:
        preflight.gate(book, '24h', 'maintenance window agreed with on-call', 'bob')
    waived = document(location)['preflight']
    assert (waived['result'], waived['operator'], waived['reason']) == (
        'waived', 'bob', 'maintenance window agreed with on-call')
    assert waived['text'].startswith('preflight: waived by bob ')
