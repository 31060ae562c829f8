# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The guard: may run R touch host H now? One function, used by every caller.

``decide()`` is pure: it judges a ``Snapshot`` of the ledger (flags, lock, the fleet's node modes)
for an ``Actor`` (this run: its lock holder string, whether its controller process is alive)
and a request (host, target mode, rollback or not). ``check()`` reads the snapshot from a ledger
and decides. Callers: the ``transport_mode`` action plugin (before a host is touched and between
node batches), ``Ledger.assert_can_proceed`` (the batch check of ``migration_ledger op=check``),
the gate (before it evaluates), the ``migration_tracker`` callback (its summary and batch starts),
the CLI (start, rollback) and the EDA event source. See docs/architecture.md.

The rules, in the order they are applied:

1. ``controller_gone``: the controller process of this run is gone (a worker that outlived a
   killed ``ansible-playbook``): refused, whatever else holds.
2. ``halted``: refused, unless the request is a rollback (``allow_rollback`` and ``ignore_pause``):
   a rollback must always be possible.
3. ``paused``: refused unless ``ignore_pause`` (rollbacks pass it).
4. ``locked``: the run lock is held by another holder than this run: refused.
5. ``partition``: a move to ``iroh_only`` while any other node of the fleet runs ``libp2p_only``
   (the host's own nodes are checked live by the module): refused.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.identity import (
    ENV_LOCK_HOLDER,
    controller_pid,
    run_id,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.controller import pid_alive
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.wording import shown

ALLOWED = 'allowed'
CONTROLLER_GONE = 'controller_gone'
HALTED = 'halted'
PAUSED = 'paused'
LOCKED = 'locked'
PARTITION = 'partition'
UNRECORDED = 'unrecorded'
REFUSALS = (CONTROLLER_GONE, HALTED, UNRECORDED, PAUSED, LOCKED, PARTITION)


@dataclass
class Snapshot:
    """What the ledger says now. ``node_modes`` ({host/service: mode}) is needed only for iroh_only."""
    flags: dict = field(default_factory=dict)
    lock: dict | None = None
    node_modes: dict | None = None
    intents: list = field(default_factory=list)


@dataclass
class Actor:
    """Who asks: this run's lock holder string, its controller process, whether that still lives."""
    holder: str | None = None
    controller_alive: bool = True
    controller_pid: int | None = None
    hostname: str | None = None
    run_id: int | None = None

    @classmethod
    def from_environment(cls, environ=None, parent_pid=None):
        """The actor of this process, from what the callback exported before the workers forked.

        A worker forked by ``ansible-playbook`` has the controller as its parent; when the controller
        dies the worker is re-parented, and the controller is neither its parent nor an ancestor.
        """
        environ = os.environ if environ is None else environ
        pid = controller_pid(environ)
        alive = True
        if pid != os.getpid():
            parent = os.getppid() if parent_pid is None else parent_pid
            alive = parent == pid or _is_ancestor(pid)
        return cls(holder=environ.get(ENV_LOCK_HOLDER), controller_alive=alive, controller_pid=pid,
                   hostname=socket.gethostname(), run_id=run_id(environ))

    def in_flight_holder(self):
        """Who an open intent of this run names: the lock holder, else this controller (a run without the tracker)."""
        return self.holder or '%s pid %s' % (self.hostname, self.controller_pid)

    def owns(self, lock):
        """Whether ``lock`` is this run's: the same holder string, or taken for this very controller."""
        if not lock:
            return True
        if self.holder is not None and lock.get('holder') == self.holder:
            return True
        return (self.controller_pid is not None and lock.get('pid') == self.controller_pid
                and lock.get('host') == self.hostname)


def _is_ancestor(pid):
    """Whether ``pid`` is an ancestor of this process (Linux /proc; elsewhere: whether it exists)."""
    current = os.getppid()
    try:
        for _step in range(64):
            if current == pid:
                return True
            if current <= 1:
                return False
            with open(f'/proc/{current}/stat', encoding='ascii', errors='replace') as handle:
                current = int(handle.read().rsplit(')', 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return pid_alive(pid)
    return False


@dataclass
class Decision:
    allowed: bool
    refused: str = ALLOWED
    reason: str | None = None
    notes: list = field(default_factory=list)

    @property
    def note(self):
        return '; '.join(self.notes) if self.notes else None


def describe_flag(word, flag):
    """``the migration is paused (reason; by who at when[, source S])`` — how every caller names a flag."""
    flag = flag or {}
    who = flag.get('operator') or 'unknown operator'
    when = flag.get('at') or 'unknown time'
    text = f"the migration is {word} ({flag.get('reason') or 'no reason given'}; by {who} at {when}"
    if flag.get('source'):
        text += f", source {flag['source']}"
    return text + ')'


def describe_lock(lock):
    text = (f"the run lock is held by {lock.get('holder')} (playbook {lock.get('playbook')}, run {lock.get('run_id')}, "
            f"since {lock.get('started_at')})")
    orphans = lock.get('gone_controller_processes')
    if orphans:
        text += (f"; its controller process {lock.get('pid')} is gone but {len(orphans)} process(es) it started still"
                 f" run (pids {shown(orphans)}): they end with the task in flight, try again then")
    return text


def unrecorded(intents, actor, lock=None):
    """The write-ahead intents nobody will end: not this run's, not the live lock holder's run's, not this
    controller's (a switch in flight, of a run without the tracker too: its hosts are switched side by side).
    A switch whose result was never recorded - the ledger was unwritable, or its run died with its workers -
    leaves one; nobody knows what it did."""
    live_run = (lock or {}).get('run_id')

    def in_flight(intent):
        if intent.get('run_id') is not None and intent['run_id'] in (actor.run_id, live_run):
            return True
        return bool(intent.get('holder')) and intent['holder'] == actor.in_flight_holder()

    return [i for i in intents or () if not in_flight(i)]


def describe_intents(intents):
    return ('the switch of %s to %s was never recorded (intent since %s, run %s)'
            % (shown(sorted(i['host'] for i in intents)), ', '.join(sorted({i['mode'] for i in intents})),
               min(str(i.get('at')) for i in intents), ', '.join(sorted({str(i.get('run_id')) for i in intents}))))


def decide(snapshot, actor=None, host=None, mode=None, ignore_pause=False, allow_rollback=False, check_lock=True):
    """May ``actor`` touch ``host`` (switching it to ``mode``) now? Returns a Decision.

    ``host`` None asks about the run as a whole (a batch check, a gate). ``check_lock`` False for
    callers that hold no lock by design (a read-only gate outside a run).
    """
    actor = actor or Actor()
    flags = snapshot.flags or {}
    halted, paused = flags.get('halted'), flags.get('paused')
    notes = []
    if not actor.controller_alive:
        return Decision(False, CONTROLLER_GONE, (
            f'the controller process {actor.controller_pid} of this run is gone; a worker that outlived it '
            'does not touch hosts on its own. Re-run the playbook: it gates what was switched without a verdict.'))
    if halted:
        if ignore_pause and allow_rollback:
            notes.append(describe_flag('halted', halted) + '; ignored for a rollback')
        else:
            return Decision(False, HALTED, describe_flag('halted', halted) + (
                '; not touching the fleet. Investigate, then acknowledge the halt (resume with ack), '
                'or run a rollback.'))
    unended = unrecorded(snapshot.intents, actor, snapshot.lock)
    if unended:
        if ignore_pause and allow_rollback:
            notes.append(describe_intents(unended) + '; ignored for a rollback')
        else:
            return Decision(False, UNRECORDED, describe_intents(unended) + (
                ': the ledger does not know what those nodes run, which counts as a halt. Compare the ledger with '
                'the hosts (playbooks/reconcile.yml -e fix=true), then acknowledge (resume with ack).'))
    if paused:
        if ignore_pause:
            notes.append(describe_flag('paused', paused) + '; ignored (ignore_pause)')
        else:
            return Decision(False, PAUSED, describe_flag('paused', paused) + (
                '; not touching the fleet. Resume the migration first.'))
    lock = snapshot.lock
    if check_lock and lock and not actor.owns(lock):
        return Decision(False, LOCKED, describe_lock(lock) + (
            ': another rollout or rollback is running. If that process is gone, the lock is taken over '
            'after its stale timeout, or release it explicitly (CLI: unlock --reason ...)'))
    if mode == _modes.IROH_ONLY:
        others = {node: node_mode for node, node_mode in (snapshot.node_modes or {}).items()
                  if not (host and node.startswith(f'{host}/'))}
        blockers = _modes.partition_violations(_modes.IROH_ONLY, others)
        if blockers:
            return Decision(False, PARTITION, (
                f'cannot switch to iroh_only while {len(blockers)} node(s) of the fleet still run libp2p_only '
                f'according to the ledger ({shown(blockers)}); iroh_only and libp2p_only nodes cannot reach '
                'each other'))
    return Decision(True, ALLOWED, None, notes)


def snapshot_of(ledger, with_modes=False):
    """Read a Snapshot from an open Ledger (the fleet's modes only when asked: for iroh_only)."""
    return Snapshot(flags=ledger.get_flags(), lock=ledger.live_lock(),
                    node_modes=ledger.node_modes() if with_modes else None, intents=ledger.intents())


def check(ledger, actor=None, host=None, mode=None, ignore_pause=False, allow_rollback=False, check_lock=True):
    """Read the ledger and decide (see decide())."""
    snap = snapshot_of(ledger, with_modes=mode == _modes.IROH_ONLY)
    return decide(snap, actor or Actor.from_environment(), host=host, mode=mode, ignore_pause=ignore_pause,
                  allow_rollback=allow_rollback, check_lock=check_lock)
