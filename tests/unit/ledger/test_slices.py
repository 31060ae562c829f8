"""The slices of one sliced AWX job: one run, one shared lock (plugins/plugin_utils/ledger/slices.py).

Each slice is its own controller process; here a slice is told apart by the controller pid the
callback exports (ANT_MIGRATION_CONTROLLER_PID), as on an execution node.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.identity import ENV_CONTROLLER_PID
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger import slices as slices_lib

AWX = {'awx_workflow_job_id': 77, 'awx_job_template_id': 9, 'awx_job_id': 78}
KEY = ledger_lib.awx_slice_key(AWX)
HOLDER = ledger_lib.slice_holder(KEY)


def as_slice(monkeypatch, pid):
    monkeypatch.setenv(ENV_CONTROLLER_PID, str(pid))
    return pid


def test_slice_key_needs_the_workflow_and_the_template():
    assert KEY == 'workflow 77 template 9'
    assert ledger_lib.awx_slice_key({'tower_workflow_job_id': 3, 'tower_job_template_id': 4}) == 'workflow 3 template 4'
    assert ledger_lib.awx_slice_key({'awx_job_id': 78}) is None            # a plain AWX job
    assert ledger_lib.awx_slice_key({'awx_workflow_job_id': 77}) is None   # a workflow without template id
    assert ledger_lib.awx_slice_key({'awx_workflow_job_id': '', 'awx_job_template_id': 9}) is None
    assert ledger_lib.awx_slice_key(None) is None


@pytest.fixture
def live_pids(monkeypatch):
    """The made-up slice pids of these tests are alive, unless a test kills one."""
    alive = {101, 102, 103, 201, 202, 301, 302, 303}
    monkeypatch.setattr(slices_lib, 'pid_alive', lambda pid: pid in alive)
    return alive


def test_slices_are_one_run_that_ends_with_the_last_with_the_worst_outcome(ledger, live_pids):
    first = ledger.join_run(KEY, 'rollback.yml', 'awx-operator', AWX, pid=101)
    second = ledger.join_run(KEY, 'rollback.yml', 'awx-operator', dict(AWX, awx_job_id=79), pid=102)
    third = ledger.join_run(KEY, 'rollback.yml', 'awx-operator', dict(AWX, awx_job_id=80), pid=103)
    assert first == second == third
    assert len(ledger.runs()) == 1
    assert ledger.leave_run(first, 'ok', {'transitions': 4, 'failed_nodes': []}, pid=102) is None
    assert ledger.run(first)['ended_at'] is None
    assert ledger.leave_run(first, 'halted', {'transitions': 1, 'failed_nodes': ['h1/antnode1']}, pid=101) is None
    assert ledger.leave_run(first, 'ok', {'transitions': 2, 'failed_nodes': []}, pid=103) == 'halted'
    run = ledger.run(first)
    assert run['outcome'] == 'halted' and run['ended_at']
    assert run['summary']['transitions'] == 7 and run['summary']['failed_nodes'] == ['h1/antnode1']
    assert len(run['summary']['slices']) == 3
    kinds = [e['kind'] for e in reversed(ledger.events(run_id=first, limit=50))]
    assert kinds.count('run_joined') == 3 and kinds.count('run_left') == 3 and kinds.count('run_ended') == 1


def test_the_run_ends_with_the_last_live_slice_and_a_killed_slice_counts_as_killed(ledger, live_pids):
    """A SIGKILLed slice never leaves: the last live slice on its host finds its process gone and ends the run."""
    run_id = ledger.join_run(KEY, 'rollout.yml', 'awx-operator', AWX, pid=301)
    ledger.join_run(KEY, 'rollout.yml', 'awx-operator', dict(AWX, awx_job_id=79), pid=302)
    ledger.join_run(KEY, 'rollout.yml', 'awx-operator', dict(AWX, awx_job_id=80), pid=303)
    live_pids.discard(301)                                  # slice 1 killed mid-run
    assert ledger.leave_run(run_id, 'ok', {'transitions': 2}, pid=302) is None   # slice 3 still runs
    assert ledger.leave_run(run_id, 'ok', {'transitions': 1}, pid=303) == 'killed'
    run = ledger.run(run_id)
    assert run['outcome'] == 'killed' and run['ended_at']
    assert [r['outcome'] for r in run['summary']['slices']].count('killed') == 1
    left = [e['data'] for e in ledger.events(run_id=run_id, kinds=['run_left'], limit=10)]
    assert any(d['outcome'] == 'killed' and d['slice'].endswith(' 301') for d in left), left


def test_a_slice_that_starts_after_the_others_ended_reopens_the_same_run(ledger, live_pids):
    run_id = ledger.join_run(KEY, 'rollout.yml', 'awx-operator', AWX, pid=201)
    assert ledger.leave_run(run_id, 'failed', {'transitions': 3}, pid=201) == 'failed'
    late = ledger.join_run(KEY, 'rollout.yml', 'awx-operator', dict(AWX, awx_job_id=90), pid=202)
    assert late == run_id and ledger.run(run_id)['ended_at'] is None
    assert ledger.leave_run(run_id, 'ok', {'transitions': 1}, pid=202) == 'failed'   # the earlier failure stays
    assert len(ledger.runs()) == 1


def test_another_job_of_the_same_workflow_template_pair_is_the_same_run_but_another_workflow_is_not(ledger):
    a = ledger.join_run(KEY, 'rollback.yml', 'op', AWX, pid=1)
    b = ledger.join_run('workflow 78 template 9', 'rollback.yml', 'op', AWX, pid=2)
    assert a != b


def test_slices_share_the_lock_until_the_last_leaves(ledger, monkeypatch):
    # Two live controller processes of this host play the two slices (a dead slice's lock is recovered).
    first, second = os.getpid(), os.getppid()
    as_slice(monkeypatch, first)
    ledger.acquire_lock(HOLDER, 'rollback.yml')
    as_slice(monkeypatch, second)
    ledger.acquire_lock(HOLDER, 'rollback.yml')        # not refused by the other slice
    with pytest.raises(ledger_lib.LedgerLocked):
        ledger.acquire_lock('someone@elsewhere pid 1', 'rollout.yml')
    # The slice that took the lock first ends: the lock stays with the job.
    assert ledger.release_controller_lock(first) is None
    assert ledger.lock()['holder'] == HOLDER
    with pytest.raises(ledger_lib.LedgerLocked):
        ledger.acquire_lock('someone@elsewhere pid 1', 'rollout.yml')
    assert ledger.heartbeat(None, second)                  # the remaining slice keeps it alive
    assert ledger.release_controller_lock(second) is not None
    assert ledger.lock() is None
    ledger.acquire_lock('someone@elsewhere pid 1', 'rollout.yml')


def test_release_lock_by_holder_waits_for_every_slice(ledger, monkeypatch):
    as_slice(monkeypatch, 401)
    ledger.acquire_lock(HOLDER, 'rollout.yml')
    as_slice(monkeypatch, 402)
    ledger.acquire_lock(HOLDER, 'rollout.yml')
    assert ledger.release_lock(HOLDER) is False          # slice 402 leaves, 401 still holds it
    assert ledger.lock()['holder'] == HOLDER
    as_slice(monkeypatch, 401)
    assert ledger.release_lock(HOLDER) is True
    assert ledger.lock() is None


def test_a_forced_unlock_forgets_the_slices(ledger, monkeypatch):
    as_slice(monkeypatch, 501)
    ledger.acquire_lock(HOLDER, 'rollout.yml')
    ledger.force_unlock('admin', 'the AWX job was cancelled')
    assert ledger.lock() is None
    as_slice(monkeypatch, 502)                             # another job's controller
    ledger.acquire_lock('someone@elsewhere pid 1', 'rollout.yml')
    assert ledger.release_controller_lock(501) is None    # a stale slice cannot release another's lock
    assert ledger.lock()['holder'] == 'someone@elsewhere pid 1'
