# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one guard: every branch of "may run R touch host H now"."""

from __future__ import annotations

import os
import socket

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

PAUSE = {'reason': 'looking at latency', 'operator': 'alice', 'at': '2026-11-27T05:00:00Z'}
HALT = {'reason': 'gate failed', 'operator': 'migration_tracker', 'at': '2026-11-27T05:01:00Z', 'source': 'gate'}
LOCK = {'holder': 'alice@ctl-1 pid 100', 'host': 'ctl-1', 'pid': 100, 'playbook': 'rollout.yml', 'run_id': 7,
        'started_at': '2026-11-27T05:00:00Z'}
US = guard.Actor(holder='alice@ctl-1 pid 100', controller_pid=100, hostname='ctl-1')
OTHER = guard.Actor(holder='bob@ctl-2 pid 200', controller_pid=200, hostname='ctl-2')
FLEET = {'h1/antnode1': 'iroh_primary', 'h1/antnode2': 'libp2p_only', 'h2/antnode1': 'libp2p_only'}


def decide(flags=None, lock=None, modes=None, actor=US, **kwargs):
    return guard.decide(guard.Snapshot(flags=flags or {}, lock=lock, node_modes=modes), actor, **kwargs)


def test_nothing_in_the_way_allows():
    decision = decide()
    assert decision.allowed and decision.refused == guard.ALLOWED and decision.reason is None and not decision.notes


def test_a_dead_controller_refuses_first_whatever_else_holds():
    gone = guard.Actor(holder=US.holder, controller_alive=False, controller_pid=100, hostname='ctl-1')
    decision = decide(flags={'halted': HALT}, actor=gone, ignore_pause=True, allow_rollback=True)
    assert not decision.allowed and decision.refused == guard.CONTROLLER_GONE
    assert 'controller process 100 of this run is gone' in decision.reason


@pytest.mark.parametrize('ignore_pause,allow_rollback,allowed', [
    (False, False, False), (True, False, False), (False, True, False), (True, True, True)])
def test_a_halt_lets_only_a_rollback_through(ignore_pause, allow_rollback, allowed):
    decision = decide(flags={'halted': HALT, 'paused': PAUSE}, ignore_pause=ignore_pause,
                      allow_rollback=allow_rollback)
    assert decision.allowed is allowed
    if allowed:
        assert 'ignored for a rollback' in decision.note and 'ignored (ignore_pause)' in decision.note
    else:
        assert decision.refused == guard.HALTED
        assert decision.reason.startswith('the migration is halted (gate failed; by migration_tracker at '
                                          '2026-11-27T05:01:00Z, source gate)')


def test_a_pause_refuses_unless_ignored():
    decision = decide(flags={'paused': PAUSE})
    assert not decision.allowed and decision.refused == guard.PAUSED
    assert 'the migration is paused (looking at latency; by alice' in decision.reason
    assert 'Resume the migration first' in decision.reason
    assert decide(flags={'paused': PAUSE}, ignore_pause=True).allowed


def test_the_lock_of_another_run_refuses_even_a_rollback():
    decision = decide(lock=LOCK, actor=OTHER, ignore_pause=True, allow_rollback=True)
    assert not decision.allowed and decision.refused == guard.LOCKED
    assert 'held by alice@ctl-1 pid 100 (playbook rollout.yml, run 7' in decision.reason
    assert decide(lock=LOCK, actor=OTHER, check_lock=False).allowed


def test_the_lock_is_ours_by_holder_or_by_controller():
    assert decide(lock=LOCK, actor=US).allowed
    # a role took the lock for this controller under another holder string
    same_controller = guard.Actor(holder=None, controller_pid=100, hostname='ctl-1')
    assert decide(lock=LOCK, actor=same_controller).allowed
    other_host = guard.Actor(holder=None, controller_pid=100, hostname='ctl-9')
    assert decide(lock=LOCK, actor=other_host).refused == guard.LOCKED
    assert decide(lock=None, actor=OTHER).allowed


def test_iroh_only_refused_while_another_node_runs_libp2p_only():
    decision = decide(modes=FLEET, host='h1', mode='iroh_only')
    assert not decision.allowed and decision.refused == guard.PARTITION
    assert 'while 1 node(s) of the fleet still run libp2p_only according to the ledger (h2/antnode1)' in \
        decision.reason
    # the host's own nodes are the module's business (it reads them live)
    assert decide(modes={'h1/antnode2': 'libp2p_only'}, host='h1', mode='iroh_only').allowed
    # other targets never meet the partition rule
    assert decide(modes=FLEET, host='h1', mode='iroh_primary').allowed
    assert decide(modes=FLEET, host='h1', mode='libp2p_only', allow_rollback=True, ignore_pause=True).allowed


def test_many_blockers_are_shortened():
    modes = {f'h{i}/antnode1': 'libp2p_only' for i in range(2, 20)}
    decision = decide(modes=modes, host='h1', mode='iroh_only')
    assert 'and 8 more' in decision.reason


def test_order_of_the_rules():
    # halted before paused before locked before partition
    assert decide(flags={'halted': HALT, 'paused': PAUSE}, lock=LOCK, actor=OTHER, modes=FLEET,
                  mode='iroh_only').refused == guard.HALTED
    assert decide(flags={'paused': PAUSE}, lock=LOCK, actor=OTHER, modes=FLEET,
                  mode='iroh_only').refused == guard.PAUSED
    assert decide(lock=LOCK, actor=OTHER, modes=FLEET, mode='iroh_only').refused == guard.LOCKED


def test_actor_from_environment(monkeypatch):
    env = {ledger_lib.ENV_CONTROLLER_PID: str(os.getppid()), ledger_lib.ENV_LOCK_HOLDER: 'me@here pid 1'}
    actor = guard.Actor.from_environment(env)
    assert actor.controller_alive and actor.holder == 'me@here pid 1' and actor.controller_pid == os.getppid()
    assert actor.hostname == socket.gethostname()
    # the controller is an ancestor, not the parent (a nested process): still alive
    assert guard.Actor.from_environment(env, parent_pid=1).controller_alive
    # re-parented, and the old controller is no ancestor any more: gone
    dead = {ledger_lib.ENV_CONTROLLER_PID: '999999999'}
    assert not guard.Actor.from_environment(dead, parent_pid=1).controller_alive
    # the controller itself
    assert guard.Actor.from_environment({ledger_lib.ENV_CONTROLLER_PID: str(os.getpid())}).controller_alive


def test_check_reads_the_ledger(tmp_path, monkeypatch):
    monkeypatch.delenv(ledger_lib.ENV_LOCK_HOLDER, raising=False)
    monkeypatch.delenv(ledger_lib.ENV_CONTROLLER_PID, raising=False)
    with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as ledger:
        assert guard.check(ledger).allowed
        ledger.set_pause('hands off', 'alice')
        assert guard.check(ledger).refused == guard.PAUSED
        ledger.resume('alice')
        ledger.acquire_lock('carol@elsewhere pid 5', 'rollout.yml')
        assert guard.check(ledger).allowed  # taken for this very controller process
        assert guard.check(ledger, OTHER).refused == guard.LOCKED
        ledger.record_observation('h2', 'antnode1', mode='libp2p_only')
        assert guard.check(ledger, host='h1', mode='iroh_only').refused == guard.PARTITION
        with pytest.raises(ledger_lib.LedgerLocked):
            ledger.assert_can_proceed(holder='bob@ctl-2 pid 200')
