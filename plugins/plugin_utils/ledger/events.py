# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The event log: gate verdicts, alerts, halts, pauses, rollbacks, lock changes, ..."""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger._common import (
    _iso,
    _json,
    _marks,
    _run_id,
    _unjson,
    _where,
    meta_get,
    meta_set,
)

ALERT_KEY = 'alert_acted '

EVENT_KINDS = (
    'gate_verdict', 'alert_fired', 'alert_resolved', 'halt', 'halt_ack', 'pause', 'resume',
    'rollback', 'canary_verdict', 'lock_acquired', 'lock_released', 'lock_recovered',
    'lock_override', 'node_failed', 'reconcile', 'run_started', 'run_ended', 'schema_migrated', 'orphan_stopped',
    'run_joined', 'run_left', 'preflight', 'preflight_waived', 'rehearsal', 'announcement_failed',
)


class EventsMixin:
    """Appending and reading events; every other part logs through ``_event`` in its transaction."""

    def _event(self, tx, kind, run_id, data, at=None):
        run_id = _run_id(run_id)
        return tx.insert('INSERT INTO ledger_events (kind, at, run_id, data) VALUES (?, ?, ?, ?) RETURNING id',
                         (str(kind), at if at is not None else self._now(), run_id, _json(data)))

    def record_event(self, kind, run_id=None, **data):
        """Append an event (gate_verdict, alert_fired, rollback, ...) with JSON data; returns its id."""
        run_id = _run_id(run_id)
        with self._db.transaction() as tx:
            return self._event(tx, kind, run_id, data)

    def events(self, kinds=None, limit=50, run_id=None, since=None):
        """Newest first. ``kinds``: a kind or a list of kinds; ``since``: epoch seconds."""
        run_id = _run_id(run_id)
        where, params = [], []
        if kinds:
            kinds = [kinds] if isinstance(kinds, str) else list(kinds)
            where.append(f'kind IN ({_marks(kinds)})')
            params += kinds
        if run_id is not None:
            where.append('run_id = ?')
            params.append(run_id)
        if since is not None:
            where.append('at >= ?')
            params.append(float(since))
        sql = f'SELECT * FROM ledger_events{_where(where)} ORDER BY at DESC, id DESC LIMIT ?'
        with self._db.transaction(write=False) as tx:
            rows = tx.query(sql, params + [int(limit)])
        return [{'id': r['id'], 'kind': r['kind'], 'at': _iso(r['at']), 'run_id': r['run_id'],
                 'data': _unjson(r['data'])} for r in rows]

    # -- alerts acted on -------------------------------------------------------------------

    def claim_alert(self, fingerprint, starts_at, **data):
        """Remember that a rollback was started for this firing of an alert (``fingerprint`` and its
        ``starts_at``) until it resolves; returns None when claimed now, else the earlier claim (one
        rollback per firing, for its whole lifetime: repeats and re-deliveries start nothing). Atomic."""
        key = ALERT_KEY + str(fingerprint)
        now = self._now()
        with self._db.transaction() as tx:
            earlier = meta_get(tx, key)
            if earlier and earlier.get('starts_at') == str(starts_at):
                return earlier
            claim = dict(data, starts_at=str(starts_at), at=_iso(now))
            meta_set(tx, key, claim)
            self._event(tx, 'alert_fired', None, dict(data, fingerprint=str(fingerprint), starts_at=str(starts_at),
                                                      acted=True), now)
        return None

    def release_alert(self, fingerprint, **data):
        """The alert resolved: forget its claim (its next firing may act again); True when there was one."""
        key = ALERT_KEY + str(fingerprint)
        with self._db.transaction() as tx:
            earlier = meta_get(tx, key)
            if not earlier:
                return False
            meta_set(tx, key, None)
            self._event(tx, 'alert_resolved', None, dict(data, fingerprint=str(fingerprint),
                                                         starts_at=earlier.get('starts_at')))
        return True
