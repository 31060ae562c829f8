# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Small helpers shared by the ledger's parts: timestamps, JSON columns, run ids, SQL bits.

``redact``, ``default_holder`` and ``controller_pid`` live in plugin_utils/redaction.py and
identity.py, the controller-process machinery (is a lock holder alive, which processes it left) in
plugin_utils/runtime/controller.py; they stay importable from the ledger package.
"""

from __future__ import annotations

import datetime
import json

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import identity, redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.errors import LedgerError

# The identity (run id, lock holder, controller pid, operator) and the redaction have their own
# homes, plugin_utils/identity.py and plugin_utils/redaction.py; re-exported for the ledger's callers.
ENV_RUN_ID = identity.ENV_RUN_ID
ENV_LOCK_HOLDER = identity.ENV_LOCK_HOLDER
ENV_CONTROLLER_PID = identity.ENV_CONTROLLER_PID
REDACTED = redaction.REDACTED
redact = redaction.redact
default_holder = identity.default_holder
controller_pid = identity.controller_pid
_current_user = identity.os_user


def _iso(epoch):
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).isoformat(timespec='seconds')


def _json(data):
    """A JSON column's text (extra vars, event data, summaries, verdicts): through the one redaction, so
    that no secret is stored whatever a caller passes (docs/security.md)."""
    return json.dumps(redact(data or {}), sort_keys=True, default=str)


def _unjson(text):
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {'raw': text}


def _run_id(value):
    """Run ids arrive as ints or as strings (ANT_MIGRATION_RUN_ID); store ints."""
    if value in (None, ''):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LedgerError(f'run id must be an integer, got {value!r}') from None


def _marks(values):
    return ', '.join('?' * len(values))


def _where(conditions):
    return ' WHERE ' + ' AND '.join(conditions) if conditions else ''


def meta_get(tx, key, default=None):
    row = tx.one('SELECT value FROM ledger_meta WHERE key = ?', (key,))
    if not row:
        return default
    try:
        return json.loads(row['value'])
    except ValueError:
        return default


def meta_set(tx, key, value):
    if value is None:
        tx.execute('DELETE FROM ledger_meta WHERE key = ?', (key,))
        return
    tx.execute('INSERT INTO ledger_meta (key, value) VALUES (?, ?) '
               'ON CONFLICT (key) DO UPDATE SET value = excluded.value', (key, json.dumps(value)))
