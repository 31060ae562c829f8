# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the ledger says about the migration: ``ant-network-migration status`` prints it and the
dashboard serves it (plugins/plugin_utils/ledger reads, nothing computed twice)."""

from __future__ import annotations

import datetime
import os

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import control, preflight

# Event the CLI records when it starts a plan; status reads the latest one.
PLAN_EVENT = 'plan_started'
GATE_EVENT_KINDS = ('gate_verdict',)
LAST_VERDICTS = 5


def exists(location):
    """A PostgreSQL DSN is taken to exist (the server says otherwise); a SQLite ledger when its file does."""
    return ledger.is_dsn(location) or os.path.exists(location)


def _last_gate_verdicts(handle):
    """The latest gate verdicts. The gate records each evaluation with its rules (value,
    threshold, verdict) and the tracker records the same verdict with the task that asked; keep
    the gate's own record when there is one, so each evaluation is listed once."""
    events = handle.events(kinds=list(GATE_EVENT_KINDS), limit=4 * LAST_VERDICTS)
    with_rules = [e for e in events if isinstance(e.get('data'), dict) and e['data'].get('rules')]
    return (with_rules or events)[:LAST_VERDICTS]


def _plan_target(handle, progress):
    """The last plan started from the CLI, with its completion deadline judged against the ETA."""
    events = handle.events(kinds=PLAN_EVENT, limit=1)
    if not events:
        return None
    data = dict(events[0]['data'] or {}, started_at=events[0]['at'])
    eta = progress.get('eta')
    deadline = data.get('deadline')
    if deadline and eta:
        late = (eta - datetime.datetime.fromisoformat(deadline)).total_seconds()
        data['on_track'] = late <= 0
        data['late_seconds'] = max(0, round(late))
    return data


def status_data(handle, detailed):
    """What `status` shows (and the dashboard serves): the collection's own status use case
    (services/control.py ``status()``: progress incl. whether the fleet was read and the nodes not ready, flags,
    the run lock with its heartbeat, unrecorded switches, the failure budget, the canary, migrated hosts, overdue
    soaks), plus whether the lock's holder is alive, the last migration run with its outcome
    (``last_migration_run()``), the last gate verdicts with their rules and the plan started from the CLI."""
    data = control.status(handle)
    data.pop('changed', None)
    data['lock_live'] = bool(data['lock']) and handle.live_lock() is not None
    data['budget_text'] = control.describe_budget(data['budget'])
    data['budget_exhausted'] = control.budget_exhausted(data['budget'])
    data['run'] = control.last_migration_run(handle)
    data['gate_verdicts'] = _last_gate_verdicts(handle)
    data['plan'] = _plan_target(handle, data['progress'])
    data['preflight'] = preflight.status(handle)
    if detailed:
        data['nodes'] = handle.nodes()
    else:
        data.pop('events', None)
    return data
