# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sliced AWX jobs: the slices of one job share one run and one run lock.

AWX (and Automation Platform) runs a job template with ``job_slice_count`` > 1 as a workflow job
whose nodes are the slices: each slice is its own ansible-playbook process, on any execution node,
with every N-th host of the inventory. Its extra vars carry ``awx_job_id`` (its own) and
``awx_workflow_job_id`` (the slice workflow, shared) and ``awx_job_template_id`` (shared); AWX
passes no slice number or count as an extra var (awx/main/models/unified_jobs.py awx_meta_vars).

The slices of one job are one run: the first slice creates the ledger run, the others join it
(a slice that starts after the others ended re-opens it), the run ends with the last slice and
its outcome is the worst of theirs. The lock holder is the job, not the process, so no slice is
refused by another's lock; the lock is released when its last participant (host and controller
pid of each slice) leaves. A halt written by any slice stops the others at their next guard
(transport_mode, the gate), because the halt mark is one row for the whole ledger.

Participants and the slice-to-run mapping live in ``ledger_meta`` (no schema change). The slice
identity (``awx_slice_key``, ``slice_holder``) is the run identity's: plugins/plugin_utils/identity.py.
"""

from __future__ import annotations

import json
import os
import socket

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import run_kinds
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.identity import SLICE_HOLDER_PREFIX
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger._common import (
    _json,
    _run_id,
    controller_pid,
    meta_get,
    meta_set,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.controller import pid_alive


def is_shared_holder(holder):
    return bool(holder) and str(holder).startswith(SLICE_HOLDER_PREFIX)


def me(pid=None):
    return '%s %s' % (socket.gethostname(), pid or controller_pid())


LOCK_PARTICIPANTS = 'lock_participants'


def lock_join(tx, pid=None):
    """Add this controller process to the participants of the shared lock (in the lock's transaction)."""
    members = meta_get(tx, LOCK_PARTICIPANTS, [])
    if me(pid) not in members:
        members.append(me(pid))
    meta_set(tx, LOCK_PARTICIPANTS, members)
    return members


def lock_leave(tx, pid=None):
    """Remove this controller process; returns the participants left (release the lock when none)."""
    members = [m for m in meta_get(tx, LOCK_PARTICIPANTS, []) if m != me(pid)]
    meta_set(tx, LOCK_PARTICIPANTS, members or None)
    return members


def lock_member(tx, pid=None):
    return me(pid) in meta_get(tx, LOCK_PARTICIPANTS, [])


def lock_reset(tx):
    meta_set(tx, LOCK_PARTICIPANTS, None)


def _alive_here(member):
    """Whether a participant ("hostname pid") runs on this host; None when it is another host's."""
    hostname, _sep, pid = member.rpartition(' ')
    if hostname != socket.gethostname():
        return None
    return pid.isdigit() and pid_alive(int(pid))


def all_gone(tx, heartbeat_stopped):
    """Whether every participant of the shared lock is gone: those on this host have no process, and those on
    other hosts stopped beating (``heartbeat_stopped``: the lock's heartbeat, refreshed by any live slice)."""
    members = meta_get(tx, LOCK_PARTICIPANTS, [])
    here = [_alive_here(m) for m in members]
    if any(alive for alive in here if alive is not None):
        return False
    elsewhere = any(alive is None for alive in here)
    return heartbeat_stopped or not elsewhere


def run_reset(tx, run_id):
    """A sliced run found dead: forget its live members (its slices will not leave it)."""
    meta_set(tx, 'slice_run_members %s' % run_id, None)
    meta_set(tx, 'slice_run_results %s' % run_id, None)


class SlicesMixin:
    """One run for the slices of one sliced job."""

    def join_run(self, key, playbook, operator, extra_vars=None, pid=None, kind=None):
        """Start the run of the sliced job ``key`` (a run of ``kind``) or join it; returns the run id."""
        now = self._now()
        pid = pid if pid is not None else os.getpid()
        with self._db.transaction() as tx:
            run_id = meta_get(tx, 'slice_run ' + key)
            row = tx.one('SELECT id, ended_at, outcome, summary FROM ledger_runs WHERE id = ?',
                         (run_id,)) if run_id else None
            if row is None:
                run_id = self._insert_run(tx, playbook, operator, extra_vars, kind, now, pid=pid, sliced_job=key)
                meta_set(tx, 'slice_run ' + key, run_id)
            elif row['ended_at'] is not None:
                # A slice AWX started after the others ended (no capacity meanwhile): the same run again.
                tx.execute('UPDATE ledger_runs SET ended_at = NULL WHERE id = ?', (run_id,))
                earlier = json.loads(row['summary']) if row.get('summary') else {}
                meta_set(tx, 'slice_run_results %s' % run_id, earlier.get('slices') or [
                    {'slice': 'earlier slices', 'outcome': row['outcome'], 'summary': earlier}])
            members = meta_get(tx, 'slice_run_members %s' % run_id, [])
            members.append(me(pid))
            meta_set(tx, 'slice_run_members %s' % run_id, members)
            self._event(tx, 'run_joined', run_id, {'sliced_job': key, 'slice': me(pid),
                                                   'awx_job_id': (extra_vars or {}).get('awx_job_id'),
                                                   'slices_running': len(members)}, now)
        return run_id

    def leave_run(self, run_id, outcome, summary=None, pid=None):
        """A slice ends: the run ends with the last slice, with the worst outcome of all slices."""
        run_id = _run_id(run_id)
        now = self._now()
        with self._db.transaction() as tx:
            others = [m for m in meta_get(tx, 'slice_run_members %s' % run_id, []) if m != me(pid)]
            # A slice of this host whose process is gone (SIGKILLed, OOM) will never leave: it ended, killed.
            # One on another host is known dead only by the lock's heartbeat (recover_lock closes the run then).
            dead = [m for m in others if _alive_here(m) is False]
            members = [m for m in others if m not in dead]
            meta_set(tx, 'slice_run_members %s' % run_id, members or None)
            results = meta_get(tx, 'slice_run_results %s' % run_id, [])
            for member in dead:
                results.append({'slice': member, 'outcome': 'killed', 'summary': None})
                self._event(tx, 'run_left', run_id, {'slice': member, 'outcome': 'killed', 'found_dead_by': me(pid),
                                                     'slices_running': len(members) + 1}, now)
            results.append({'slice': me(pid), 'outcome': str(outcome), 'summary': summary})
            self._event(tx, 'run_left', run_id, {'slice': me(pid), 'outcome': str(outcome),
                                                 'slices_running': len(members)}, now)
            if members:
                meta_set(tx, 'slice_run_results %s' % run_id, results)
                return None
            meta_set(tx, 'slice_run_results %s' % run_id, None)
            worst = run_kinds.worst([r['outcome'] for r in results])
            merged = {'slices': results,
                      'transitions': sum((r['summary'] or {}).get('transitions', 0) for r in results),
                      'failed_nodes': sorted({n for r in results
                                              for n in (r['summary'] or {}).get('failed_nodes', [])})}
            tx.execute('UPDATE ledger_runs SET ended_at = ?, outcome = ?, summary = ? WHERE id = ?',
                       (now, worst, _json(merged), run_id))
            self._event(tx, 'run_ended', run_id, {'outcome': worst, 'slices': len(results)}, now)
            return worst
