# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit log: every migration activity the ledger holds (events and node transitions), oldest first, each
with who, when, what and the run it belongs to ("keep detailed logs of all migration activities")."""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction


def history(ledger, limit=100000):
    """[{at, who, what, run_id, run, data}] oldest first. ``who``: the operator the event names, else its
    run's; ``run``: the run's playbook and kind. Secrets are redacted."""
    runs = {}

    def run_of(run_id):
        if run_id is not None and run_id not in runs:
            runs[run_id] = ledger.run(run_id)
        return runs.get(run_id)

    records = []
    for event in ledger.events(limit=limit):
        data = event['data'] if isinstance(event['data'], dict) else {}
        records.append((event['at'], 0, event['id'], event['kind'], event['run_id'], data))
    for move in ledger.history(limit=limit):
        data = {k: move.get(k) for k in ('node_id', 'from_state', 'to_state', 'from_mode', 'to_mode', 'version',
                                         'reason', 'seconds_to_ready') if move.get(k) is not None}
        records.append((move['at'], 1, move['id'], 'node_transition', move.get('run_id'), data))
    out = []
    for at, _order, _id, what, run_id, data in sorted(records, key=lambda r: (r[0], r[1], r[2])):
        run = run_of(run_id)
        out.append({'at': at, 'who': data.get('operator') or (run or {}).get('operator'), 'what': what,
                    'run_id': run_id, 'run': {'playbook': run['playbook'], 'kind': run['kind']} if run else None,
                    'data': redaction.redact(data)})
    return out
