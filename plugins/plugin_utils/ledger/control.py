# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Operator and run control: pause, halt, resume, and the run lock."""

from __future__ import annotations

import socket
import time

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger import slices
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger._common import (
    _iso,
    _json,
    _run_id,
    controller_pid,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.errors import (
    HaltNeedsAcknowledgement,
    LedgerError,
    LedgerHalted,
    LedgerLocked,
    LedgerPaused,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.controller import (
    controller_processes,
    pid_is_holder,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.wording import shown

_REFUSAL_ERRORS = {'halted': LedgerHalted, 'paused': LedgerPaused, 'locked': LedgerLocked}

# A lock whose holder has not sent a heartbeat for this long is taken over (with a logged event).
DEFAULT_STALE_AFTER = 900
# A live controller's migration_tracker refreshes the lock's heartbeat this often (a thread of its own, also
# through long waits); a lock whose heartbeat stopped for HEARTBEAT_DEAD seconds belongs to a dead controller.
HEARTBEAT_EVERY = 30.0
HEARTBEAT_DEAD = 3 * HEARTBEAT_EVERY
# How long a run started right after a crash waits for the dead controller's processes to end (a node
# batch in flight: up to a ready timeout, 60 s by default, after the restart) before it is refused.
ORPHAN_WAIT = 180


class ControlMixin:
    """Flags (pause, halt) and the run lock."""

    # -- flags: pause and halt --------------------------------------------------------------

    def get_flags(self):
        """{'paused': None | {reason, operator, at}, 'halted': None | {reason, operator, at, source, cause}}.

        A halt's ``cause``: ``verdict`` (a judgment on the nodes), ``no_verdict`` (nobody could judge
        them: monitoring down, no data) or None (not said; treated as a verdict).
        """
        with self._db.transaction(write=False) as tx:
            rows = tx.query('SELECT * FROM ledger_flags')
        flags = {'paused': None, 'halted': None}
        for row in rows:
            entry = {'reason': row['reason'], 'operator': row['operator'], 'at': _iso(row['at'])}
            if row['name'] == 'halt':
                entry['source'] = row['source']
                entry['cause'] = row.get('cause')
                flags['halted'] = entry
            elif row['name'] == 'pause':
                flags['paused'] = entry
        return flags

    def set_pause(self, reason, operator, run_id=None):
        run_id = _run_id(run_id)
        now = self._now()
        with self._db.transaction() as tx:
            tx.execute('INSERT INTO ledger_flags (name, reason, operator, source, at, run_id) '
                       "VALUES ('pause', ?, ?, NULL, ?, ?) ON CONFLICT (name) DO UPDATE SET reason = excluded.reason, "
                       'operator = excluded.operator, at = excluded.at, run_id = excluded.run_id',
                       (str(reason), str(operator), now, run_id))
            self._event(tx, 'pause', run_id, {'reason': reason, 'operator': operator}, now)
        return self.get_flags()['paused']

    def set_halt(self, reason, operator, source, run_id=None, cause=None, **data):
        """Halt the migration. An existing halt keeps its first reason (the cause); the new one is logged.

        ``cause``: ``verdict`` or ``no_verdict`` (see get_flags); kept with the first halt.
        """
        run_id = _run_id(run_id)
        now = self._now()
        with self._db.transaction() as tx:
            existing = tx.one("SELECT * FROM ledger_flags WHERE name = 'halt'")
            if existing is None:
                tx.execute("INSERT INTO ledger_flags (name, reason, operator, source, at, run_id, cause) "
                           "VALUES ('halt', ?, ?, ?, ?, ?, ?)",
                           (str(reason), str(operator), str(source), now, run_id, cause))
            self._event(tx, 'halt', run_id, dict(data, reason=reason, operator=operator, source=source, cause=cause,
                                                 already_halted=existing is not None), now)
        return self.get_flags()['halted']

    def resume(self, operator, ack=False, reason=None, run_id=None):
        """Clear the pause; clear a halt only with ``ack=True``. Returns {'cleared': [...]}.

        Raises HaltNeedsAcknowledgement (a LedgerError) when halted and ack is not given; nothing
        is cleared then, not even the pause.
        """
        run_id = _run_id(run_id)
        now = self._now()
        with self._db.transaction() as tx:
            rows = {row['name']: row for row in tx.query('SELECT * FROM ledger_flags')}
            halt = rows.get('halt')
            if halt is not None and not ack:
                raise HaltNeedsAcknowledgement(
                    f"the migration is halted ({halt['reason']}, by {halt['operator']} via {halt['source']} at "
                    f"{_iso(halt['at'])}); a halt needs an explicit acknowledgement once its cause is understood: "
                    'resume with ack (CLI: resume --ack; playbook: -e ack=true)')
            intents = tx.query('SELECT * FROM ledger_intents ORDER BY host')
            if intents and not ack:
                raise HaltNeedsAcknowledgement(
                    f"the switch of {', '.join(i['host'] for i in intents)} was never recorded: compare the ledger "
                    'with the hosts (playbooks/reconcile.yml -e fix=true), then resume with ack (CLI: resume --ack; '
                    'playbook: -e ack=true)')
            if intents:
                tx.execute('DELETE FROM ledger_intents')
                self._event(tx, 'intents_acknowledged', run_id, {
                    'operator': operator, 'reason': reason,
                    'intents': [{'host': i['host'], 'mode': i['mode'], 'run_id': i['run_id'], 'at': _iso(i['at'])}
                                for i in intents]}, now)
            cleared = sorted(rows)
            if cleared:
                tx.execute('DELETE FROM ledger_flags')
            if halt is not None:
                self._event(tx, 'halt_ack', run_id, {'operator': operator, 'reason': reason,
                                                     'halt_reason': halt['reason'], 'halt_source': halt['source']}, now)
            if cleared:
                self._event(tx, 'resume', run_id, {'operator': operator, 'reason': reason, 'ack': bool(ack),
                                                   'cleared': cleared}, now)
        return {'cleared': ['halted' if name == 'halt' else 'paused' for name in cleared]
                + (['unrecorded'] if intents else [])}

    def assert_can_proceed(self, holder=None, host=None, mode=None, ignore_pause=False, allow_rollback=False):
        """Raise LedgerHalted / LedgerPaused / LedgerLocked if the guard refuses; returns the flags.

        The decision is the guard's (plugin_utils/guard.py); this is its adapter for callers that
        want an exception. ``holder`` defaults to the ANT_MIGRATION_LOCK_HOLDER the callback exported.
        """
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils import (  # noqa: I001
            guard,  # pylint: disable=import-outside-toplevel  # the guard reads the ledger: no import cycle
        )
        actor = guard.Actor.from_environment()
        if holder is not None:
            actor.holder, actor.controller_pid = holder, None  # judged by this holder string alone
        decision = guard.check(self, actor, host=host, mode=mode, ignore_pause=ignore_pause,
                               allow_rollback=allow_rollback)
        if not decision.allowed:
            error = _REFUSAL_ERRORS.get(decision.refused, LedgerError)
            if error is LedgerLocked:
                lock = self.lock() or {}
                raise LedgerLocked(decision.reason, holder=lock.get('holder'), started_at=lock.get('started_at'),
                                   playbook=lock.get('playbook'), run_id=lock.get('run_id'))
            raise error(decision.reason)
        return self.get_flags()

    # -- the run lock -----------------------------------------------------------------------

    @staticmethod
    def _lock_row(row):
        if not row or not row.get('holder'):
            return None
        return {'holder': row['holder'], 'host': row['holder_host'], 'pid': row['holder_pid'],
                'playbook': row['playbook'], 'run_id': row['run_id'], 'started_at': _iso(row['started_at']),
                'heartbeat_at': _iso(row['heartbeat_at']), '_heartbeat': row['heartbeat_at'],
                '_started': row['started_at']}

    def _lock_in(self, tx):
        """The lock row read in transaction ``tx`` (see _lock_row), or None when the lock is free."""
        return self._lock_row(tx.one('SELECT * FROM ledger_lock WHERE id = 1'))

    def _locked_message(self, lock):
        age = self._now() - (lock['_heartbeat'] or 0)
        return (f"the migration ledger is locked by {lock['holder']} since {lock['started_at']} (playbook "
                f"{lock['playbook']}, run {lock['run_id']}, last heartbeat {age:.0f} s ago): another rollout or "
                'rollback is running. If that process is gone, the lock is taken over after its stale timeout, '
                'or release it explicitly with force_unlock (CLI: unlock --reason ...)')

    @staticmethod
    def _public(lock):
        return {k: v for k, v in lock.items() if not k.startswith('_')} if lock else None

    def lock(self):
        """The current lock ({holder, host, pid, playbook, run_id, started_at, heartbeat_at}) or None."""
        with self._db.transaction(write=False) as tx:
            return self._public(self._lock_in(tx))

    def live_lock(self):
        """The lock, or None when it is free or its holder is gone from this host with every process
        it started (the next acquire_lock() recovers it). What the guard judges. A lock whose holder
        is gone but whose processes still run carries their pids in ``gone_controller_processes``."""
        with self._db.transaction(write=False) as tx:
            lock = self._lock_in(tx)
        if lock:
            dead, workers = self._holder_state(lock)
            if dead and not workers:
                return None
            if dead:
                # A killed controller whose workers still run: say so, the holder's pid alone looks stale.
                return dict(self._public(lock), gone_controller_processes=workers)
        return self._public(lock)

    def wait_for_gone_controller(self, timeout=None, progress=None, poll=0.5):
        """When the lock's controller is gone from this host but processes it started still run (a
        killed ``ansible-playbook``'s workers finish the task or node batch in flight, then stop), wait
        up to ``timeout`` seconds (default ORPHAN_WAIT) for them to end. ``progress(message)`` is called
        once when there is something to wait for. Returns the pids still running then ([] when none):
        a run started right after a crash waits instead of being refused ("try again in a moment")."""
        timeout = ORPHAN_WAIT if timeout is None else timeout
        with self._db.transaction(write=False) as tx:
            lock = self._lock_in(tx)
        if not lock or slices.is_shared_holder(lock['holder']):
            return []
        dead, workers = self._holder_state(lock)
        if not (dead and workers):
            return []
        if progress is not None:
            progress(f"the run lock's holder {lock['holder']} (playbook {lock['playbook']}, run {lock['run_id']}) is "
                     f"gone but {len(workers)} process(es) it started still run (pids "
                     f"{shown(workers)}): waiting up to {timeout:.0f} s for them to end")
        deadline = time.monotonic() + timeout
        while workers and time.monotonic() < deadline:
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
            workers = controller_processes(lock['pid'])
        return workers

    @staticmethod
    def _holder_state(lock):
        """(controller gone from this host, pids of the processes it started that still run).

        Gone also when its pid now belongs to a process started after the lock was taken (pid reuse)."""
        dead = (lock['host'] == socket.gethostname() and lock['pid'] is not None
                and not pid_is_holder(lock['pid'], lock['_started']))
        return dead, (controller_processes(lock['pid']) if dead else [])

    def acquire_lock(self, holder, playbook, stale_after=DEFAULT_STALE_AFTER, run_id=None):
        """Take the run lock or raise LedgerLocked naming the holder, its start time and playbook.

        Re-entrant for the same holder. A lock is taken over, with a ``lock_recovered`` event, when
        its heartbeat is older than ``stale_after`` seconds or its holder process on this very host
        is gone.
        """
        now = self._now()
        host, pid = socket.gethostname(), controller_pid()
        run_id = _run_id(run_id)
        with self._db.transaction() as tx:
            lock = self._lock_in(tx)
            if lock and lock['holder'] != holder:
                age = now - (lock['_heartbeat'] or 0)
                dead, workers = self._holder_state(lock)
                shared = slices.is_shared_holder(lock['holder'])
                if shared:
                    # A sliced AWX job: dead only when every slice is - here (its process gone) and elsewhere
                    # (no heartbeat: a live slice's controller beats every HEARTBEAT_EVERY seconds).
                    dead = slices.all_gone(tx, self._heartbeat_stopped(lock, age))
                    workers = []
                elif not dead and self._heartbeat_stopped(lock, age):
                    dead = True   # a controller on another host (an AWX job's container) that stopped beating
                if workers:
                    raise LedgerLocked(
                        f"the migration ledger is locked by {lock['holder']} (playbook {lock['playbook']}, run "
                        f"{lock['run_id']}): its controller process {lock['pid']} is gone but "
                        f"{len(workers)} process(es) it started still run (pids {shown(workers)}); "
                        'they stop after the node batch in flight. Try again in a moment', holder=lock['holder'],
                        started_at=lock['started_at'], playbook=lock['playbook'], run_id=lock['run_id'])
                if age <= stale_after and not dead:
                    raise LedgerLocked(self._locked_message(lock), holder=lock['holder'],
                                       started_at=lock['started_at'], playbook=lock['playbook'],
                                       run_id=lock['run_id'])
                if not dead:
                    why = f'no heartbeat for {age:.0f} s (stale after {stale_after} s)'
                elif shared:
                    why = f'every slice of the sliced job is gone (last heartbeat {age:.0f} s ago)'
                elif lock['host'] == host and not self._heartbeat_stopped(lock, age):
                    why = f"its process {lock['pid']} on {host} is gone"
                else:
                    why = f"its controller on {lock['host']} stopped its heartbeat {age:.0f} s ago"
                self._event(tx, 'lock_recovered', run_id,
                            {'previous_holder': lock['holder'], 'previous_playbook': lock['playbook'],
                             'previous_run_id': lock['run_id'], 'previous_started_at': lock['started_at'],
                             'reason': why, 'new_holder': holder}, now)
                self._end_dead_run(tx, lock, why, now)
                lock = None
            if lock is None:
                tx.execute('UPDATE ledger_lock SET holder = ?, holder_host = ?, holder_pid = ?, playbook = ?, '
                           'run_id = ?, started_at = ?, heartbeat_at = ? WHERE id = 1',
                           (holder, host, pid, str(playbook), run_id, now, now))
                self._event(tx, 'lock_acquired', run_id, {'holder': holder, 'playbook': str(playbook)}, now)
                slices.lock_reset(tx)
            else:
                tx.execute('UPDATE ledger_lock SET heartbeat_at = ?, run_id = COALESCE(?, run_id) WHERE id = 1',
                           (now, run_id))
            if slices.is_shared_holder(holder):
                # The slices of one sliced AWX job hold the lock together (see ledger/slices.py).
                slices.lock_join(tx, pid)
            return self._public(self._lock_in(tx))

    @staticmethod
    def _heartbeat_stopped(lock, age):
        """Whether the lock's controller stopped beating: it beat at least once after taking the lock (so a
        heartbeat runs: the migration_tracker's thread, every HEARTBEAT_EVERY s), and not for HEARTBEAT_DEAD s."""
        beating = (lock['_heartbeat'] or 0) > (lock['_started'] or 0) + 1
        return beating and age > HEARTBEAT_DEAD

    def _end_dead_run(self, tx, lock, why, now):
        """The run of a lock found dead ends now as ``killed``, saying when and why, and which hosts it had
        started switching without recording the result (their intents)."""
        run_id = lock.get('run_id')
        if run_id is None:
            return
        row = tx.one('SELECT ended_at FROM ledger_runs WHERE id = ?', (run_id,))
        if row is None or row['ended_at'] is not None:
            return
        unrecorded = [r['host'] for r in tx.query('SELECT host FROM ledger_intents WHERE run_id = ? ORDER BY host',
                                                  (run_id,))]
        summary = {'found_dead_at': _iso(now), 'why': why, 'holder': lock['holder'],
                   'hosts_not_done': unrecorded}
        tx.execute('UPDATE ledger_runs SET ended_at = ?, outcome = ?, summary = ? WHERE id = ?',
                   (now, 'killed', _json(summary), run_id))
        slices.run_reset(tx, run_id)
        self._event(tx, 'run_ended', run_id, dict(summary, outcome='killed'), now)

    def heartbeat(self, holder=None, pid=None):
        """Refresh the lock's heartbeat; False when it is not held by ``holder`` (any more).

        Without ``holder``: the lock taken on this host for the controller process ``pid``
        (default: this controller), whatever its holder string — the callback keeps the lock of
        its playbook alive this way even when a role took it.
        """
        with self._db.transaction() as tx:
            if holder is not None:
                return tx.execute('UPDATE ledger_lock SET heartbeat_at = ? WHERE id = 1 AND holder = ?',
                                  (self._now(), holder)) == 1
            if slices.lock_member(tx, pid):
                return tx.execute('UPDATE ledger_lock SET heartbeat_at = ? WHERE id = 1 AND holder IS NOT NULL',
                                  (self._now(),)) == 1
            return tx.execute('UPDATE ledger_lock SET heartbeat_at = ? WHERE id = 1 AND holder IS NOT NULL '
                              'AND holder_host = ? AND holder_pid = ?',
                              (self._now(), socket.gethostname(), pid or controller_pid())) == 1

    def release_controller_lock(self, pid=None, run_id=None, reason='run ended'):
        """Release the lock if it was taken on this host for controller process ``pid``; returns the lock."""
        run_id = _run_id(run_id)
        with self._db.transaction() as tx:
            lock = self._lock_in(tx)
            if lock and slices.is_shared_holder(lock['holder']):
                if not slices.lock_member(tx, pid) or slices.lock_leave(tx, pid):
                    return None     # not ours, or other slices of the job still hold it
            elif not lock or lock['host'] != socket.gethostname() or lock['pid'] != (pid or controller_pid()):
                return None
            tx.execute('UPDATE ledger_lock SET holder = NULL, holder_host = NULL, holder_pid = NULL, '
                       'playbook = NULL, run_id = NULL, started_at = NULL, heartbeat_at = NULL WHERE id = 1')
            self._event(tx, 'lock_released', run_id, {'holder': lock['holder'], 'reason': reason})
        return self._public(lock)

    def release_lock(self, holder, run_id=None):
        """Release the lock if ``holder`` holds it; returns whether it did."""
        run_id = _run_id(run_id)
        with self._db.transaction() as tx:
            if slices.is_shared_holder(holder) and slices.lock_leave(tx):
                return False        # other slices of the job still hold it
            done = tx.execute('UPDATE ledger_lock SET holder = NULL, holder_host = NULL, holder_pid = NULL, '
                              'playbook = NULL, run_id = NULL, started_at = NULL, heartbeat_at = NULL '
                              'WHERE id = 1 AND holder = ?', (holder,)) == 1
            if done:
                self._event(tx, 'lock_released', run_id, {'holder': holder})
        return done

    def force_unlock(self, operator, reason):
        """Explicit override: release whoever holds the lock, logged with operator and reason."""
        if not reason:
            raise LedgerError('force_unlock needs a reason (why is the holder known to be gone?)')
        with self._db.transaction() as tx:
            lock = self._lock_in(tx)
            tx.execute('UPDATE ledger_lock SET holder = NULL, holder_host = NULL, holder_pid = NULL, playbook = NULL, '
                       'run_id = NULL, started_at = NULL, heartbeat_at = NULL WHERE id = 1')
            slices.lock_reset(tx)
            self._event(tx, 'lock_override', None, {
                'operator': operator, 'reason': reason,
                'previous_holder': lock['holder'] if lock else None,
                'previous_playbook': lock['playbook'] if lock else None,
                'previous_run_id': lock['run_id'] if lock else None,
                'previous_started_at': lock['started_at'] if lock else None})
        return self._public(lock)
