# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs (who ran which playbook, when, with which outcome) and the canary verdict."""

from __future__ import annotations

import os
import socket

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import run_kinds
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger._common import (
    _iso,
    _json,
    _marks,
    _run_id,
    _unjson,
    _where,
    redact,
)


class RunsMixin:
    """Ledger operations on runs and the canary verdict."""

    def _insert_run(self, tx, playbook, operator, extra_vars, kind, now, controller=None, pid=None, **event):
        """Insert a run row and its run_started event in ``tx``; returns the run id."""
        kind = run_kinds.normalise(kind)
        run_id = tx.insert(
            'INSERT INTO ledger_runs (playbook, operator, controller, pid, extra_vars, started_at, kind) '
            'VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id',
            (str(playbook), str(operator), controller or socket.gethostname(),
             pid if pid is not None else os.getpid(), _json(redact(extra_vars or {})), now, kind))
        self._event(tx, 'run_started', run_id, dict(event, playbook=str(playbook), operator=str(operator),
                                                    kind=kind), now)
        return run_id

    def start_run(self, playbook, operator, extra_vars=None, controller=None, pid=None, kind=None):
        """Record the start of a run of ``kind`` (run_kinds); returns its id. Secrets in extra_vars are redacted."""
        now = self._now()
        with self._db.transaction() as tx:
            return self._insert_run(tx, playbook, operator, extra_vars, kind, now, controller=controller, pid=pid)

    def end_run(self, run_id, outcome, summary=None):
        run_id = _run_id(run_id)
        now = self._now()
        with self._db.transaction() as tx:
            tx.execute('UPDATE ledger_runs SET ended_at = ?, outcome = ?, summary = ? WHERE id = ?',
                       (now, str(outcome), _json(summary) if summary is not None else None, run_id))
            self._event(tx, 'run_ended', run_id, {'outcome': str(outcome)}, now)

    def set_clock_offset(self, run_id, offset):
        """The run's controller clock minus Prometheus' (seconds), as its first gate measured it."""
        run_id = _run_id(run_id)
        if run_id is None:
            return
        with self._db.transaction() as tx:
            tx.execute('UPDATE ledger_runs SET clock_offset = ? WHERE id = ? AND clock_offset IS NULL',
                       (float(offset), run_id))

    def run(self, run_id):
        with self._db.transaction(write=False) as tx:
            row = tx.one('SELECT * FROM ledger_runs WHERE id = ?', (run_id,))
        return self._run_row(row) if row else None

    def runs(self, limit=20, kinds=None, since=None):
        """Newest first; ``kinds``: only runs of these kinds; ``since``: started at or after (epoch seconds)."""
        where, params = [], []
        if kinds:
            kinds = [kinds] if isinstance(kinds, str) else list(kinds)
            where.append(f'kind IN ({_marks(kinds)})')
            params += kinds
        if since is not None:
            where.append('started_at >= ?')
            params.append(float(since))
        with self._db.transaction(write=False) as tx:
            rows = tx.query(f'SELECT * FROM ledger_runs{_where(where)} ORDER BY id DESC LIMIT ?',
                            params + [int(limit)])
        return [self._run_row(row) for row in rows]

    @staticmethod
    def _run_row(row):
        out = dict(row)
        out['extra_vars'] = _unjson(row['extra_vars'])
        out['summary'] = _unjson(row['summary']) if row.get('summary') else None
        out['started_at'] = _iso(row['started_at'])
        out['ended_at'] = _iso(row['ended_at'])
        out['kind'] = row.get('kind') or run_kinds.OTHER
        return out

    # -- canary ---------------------------------------------------------------------------

    def set_canary_verdict(self, verdict, run_id=None, **data):
        """Store the canary verdict (e.g. passed / failed / inconclusive) with its evidence; also an event.

        canary_verdict() returns {verdict, at, run_id, data} with data's keys also at the top level.
        """
        now = self._now()
        run_id = _run_id(run_id)
        with self._db.transaction() as tx:
            tx.execute('INSERT INTO ledger_canary (id, verdict, at, run_id, data) VALUES (1, ?, ?, ?, ?) '
                       'ON CONFLICT (id) DO UPDATE SET verdict = excluded.verdict, at = excluded.at, '
                       'run_id = excluded.run_id, data = excluded.data', (str(verdict), now, run_id, _json(data)))
            self._event(tx, 'canary_verdict', run_id, dict(data, verdict=verdict), now)

    def canary_verdict(self):
        """The latest canary verdict {verdict, at, run_id, data} or None."""
        with self._db.transaction(write=False) as tx:
            row = tx.one('SELECT * FROM ledger_canary WHERE id = 1')
        if not row:
            return None
        data = _unjson(row['data'])
        out = dict(data)
        out.update(verdict=row['verdict'], at=_iso(row['at']), run_id=row['run_id'], data=data)
        return out
