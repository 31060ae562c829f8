# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every run ends: a recovered lock closes its dead run; a dead slice or a dead controller on another host
is found by its stopped heartbeat, so a relaunch is not refused for the lock's whole stale timeout."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.identity import ENV_CONTROLLER_PID
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.controller import Heartbeat

AWX = {'awx_workflow_job_id': 77, 'awx_job_template_id': 9, 'awx_job_id': 78}
KEY = ledger_lib.awx_slice_key(AWX)


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / 'l.sqlite3')


def gone_pid():
    proc = subprocess.Popen(['true'])
    proc.wait()
    return proc.pid


def test_a_recovered_lock_closes_its_dead_run_as_killed_naming_what_it_left_unrecorded(path, clock, monkeypatch):
    monkeypatch.setenv(ENV_CONTROLLER_PID, str(gone_pid()))
    with ledger_lib.open_ledger(path, clock=clock) as book:
        dead_run = book.start_run('rollout.yml', 'alice', kind='rollout')
        book.acquire_lock('alice@here', 'rollout.yml', run_id=dead_run)
        book.open_intent('h3', 'dual_stack', run_id=dead_run)
    monkeypatch.delenv(ENV_CONTROLLER_PID)
    clock.now += 5
    with ledger_lib.open_ledger(path, clock=clock) as book:
        new_run = book.start_run('rollout.yml', 'bob', kind='rollout')
        book.acquire_lock('bob@here', 'rollout.yml', run_id=new_run)
        dead = book.run(dead_run)
        assert dead['outcome'] == 'killed' and dead['ended_at']
        assert dead['summary']['hosts_not_done'] == ['h3'] and 'is gone' in dead['summary']['why']
        assert book.run(new_run)['ended_at'] is None


def _foreign_lock(book, run_id, started, beat):
    """A lock taken by a controller on another host (an AWX container), its heartbeat last refreshed at ``beat``."""
    book.acquire_lock('carol@awx-node-7 pid 42', 'rollout.yml', run_id=run_id)
    with book._db.transaction() as tx:
        tx.execute("UPDATE ledger_lock SET holder_host = 'awx-node-7', holder_pid = 42, started_at = ?, "
                   'heartbeat_at = ? WHERE id = 1', (started, beat))


def test_a_controller_on_another_host_that_stopped_beating_is_dead(path, clock):
    with ledger_lib.open_ledger(path, clock=clock) as book:
        run = book.start_run('rollout.yml', 'carol', kind='rollout')
        _foreign_lock(book, run, started=clock.now - 200, beat=clock.now - 60)
        with pytest.raises(ledger_lib.LedgerLocked):     # beat 60 s ago: alive
            book.acquire_lock('dave@here', 'rollout.yml')
        clock.now += ledger_lib.HEARTBEAT_DEAD           # no beat for 150 s > HEARTBEAT_DEAD
        book.acquire_lock('dave@here', 'rollout.yml')
        assert book.run(run)['outcome'] == 'killed'
        assert 'stopped its heartbeat' in book.events(kinds=['lock_recovered'])[0]['data']['reason']


def test_a_lock_that_never_beat_waits_for_its_stale_timeout(path, clock):
    """A holder that never refreshed its heartbeat may have no heartbeat thread: only stale_after frees it."""
    with ledger_lib.open_ledger(path, clock=clock) as book:
        _foreign_lock(book, None, started=clock.now - 300, beat=clock.now - 300)
        with pytest.raises(ledger_lib.LedgerLocked):
            book.acquire_lock('dave@here', 'rollout.yml', stale_after=900)
        clock.now += 700
        book.acquire_lock('dave@here', 'rollout.yml', stale_after=900)


def test_a_sliced_job_whose_slices_all_died_does_not_block_a_relaunch(path, clock, monkeypatch):
    holder = ledger_lib.slice_holder(KEY)
    with ledger_lib.open_ledger(path, clock=clock) as book:
        run = book.join_run(KEY, 'rollback.yml', 'awx', AWX, pid=gone_pid())
        for pid in (gone_pid(), gone_pid()):
            monkeypatch.setenv(ENV_CONTROLLER_PID, str(pid))
            book.acquire_lock(holder, 'rollback.yml', run_id=run)
        monkeypatch.delenv(ENV_CONTROLLER_PID)
        clock.now += 5
        book.acquire_lock('eve@here', 'rollback.yml')     # every slice here is gone: no 15-minute wait
        assert book.run(run)['outcome'] == 'killed'


def test_a_live_slice_on_another_host_keeps_the_shared_lock_until_it_stops_beating(path, clock, monkeypatch):
    holder = ledger_lib.slice_holder(KEY)
    with ledger_lib.open_ledger(path, clock=clock) as book:
        run = book.join_run(KEY, 'rollback.yml', 'awx', AWX, pid=11)
        monkeypatch.setenv(ENV_CONTROLLER_PID, str(gone_pid()))
        book.acquire_lock(holder, 'rollback.yml', run_id=run)
        with book._db.transaction() as tx:   # a second slice on another execution node joined the lock
            tx.execute("UPDATE ledger_meta SET value = ? WHERE key = 'lock_participants'",
                       ('["%s %s", "awx-node-3 4242"]' % (socket.gethostname(), 999999),))
        monkeypatch.delenv(ENV_CONTROLLER_PID)
        clock.now += 30
        book.heartbeat(holder)                                # the remote slice beats
        clock.now += 30
        with pytest.raises(ledger_lib.LedgerLocked):
            book.acquire_lock('eve@here', 'rollback.yml')
        clock.now += ledger_lib.HEARTBEAT_DEAD + 1
        book.acquire_lock('eve@here', 'rollback.yml')
        assert 'every slice' in book.events(kinds=['lock_recovered'])[0]['data']['reason']


def test_the_heartbeat_thread_beats_until_stopped():
    beats = []
    beat = Heartbeat(lambda: beats.append(time.monotonic()), 0.05).start()
    deadline = time.monotonic() + 10
    while len(beats) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    beat.stop()
    assert len(beats) >= 3
    count = len(beats)
    time.sleep(0.2)
    assert len(beats) <= count + 1
