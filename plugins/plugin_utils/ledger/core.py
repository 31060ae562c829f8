# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ledger's core: a backend, a clock, opening (schema creation and forward migration)."""

from __future__ import annotations

import time

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger._common import (
    _iso,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.errors import (
    LedgerForeignDatabase,
    LedgerNotFound,
    LedgerSchemaTooNew,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.location import missing_message
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.schema import (
    APPLICATION,
    META_TABLE,
    SCHEMA_VERSION,
    SQLITE_APPLICATION_ID,
    statements,
)


class LedgerCore:
    """Backend, clock, lifecycle and schema of a ledger; the parts add their operations."""

    def __init__(self, backend, clock=None, create=True):
        self._db = backend
        # Whose clock the ledger's times are: an injected one (tests), else the database server's when it has one
        # (PostgreSQL, shared by every controller and AWX job), else this controller's (SQLite: one controller).
        self._clock = clock or getattr(backend, 'server_time', None) or time.time
        self.location = backend.location
        self.dialect = backend.dialect
        self._migrate(create)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self):
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f'<Ledger {self.dialect} {self.location}>'

    def _now(self):
        return float(self._clock())

    def clock_now(self):
        """Now by the ledger's clock (the database server's for PostgreSQL, else this controller's)."""
        return self._now()

    def _migrate(self, create=True):
        """Create the schema (only when ``create``) or bring it forward; refuse foreign databases and future
        schemas, and a location that holds no ledger yet when it may not be created."""
        self._check_foreign_sqlite()
        with self._db.transaction(write=True) as tx:
            tables = self._db.tables(tx)
            if META_TABLE not in tables:
                if self.dialect == 'sqlite' and tables:
                    names = ', '.join(tables[:8])
                    raise LedgerForeignDatabase(
                        f'{self.location} is a SQLite database but not a migration ledger (it has the tables {names} '
                        f'and no {META_TABLE}); point the ledger option or ANT_MIGRATION_LEDGER at another file')
                if self.dialect == 'postgresql' and 'ledger_nodes' in tables:
                    raise LedgerForeignDatabase(
                        f'the PostgreSQL database {self.location} has a ledger_nodes table but no {META_TABLE}: it is '
                        'not a migration ledger this collection wrote; use another database or schema')
                if not create:
                    raise LedgerNotFound(missing_message(self.location))
                current = 0
            else:
                meta = {row['key']: row['value'] for row in tx.query('SELECT key, value FROM ledger_meta')}
                if meta.get('application') != APPLICATION:
                    raise LedgerForeignDatabase(
                        f'{self.location} has a {META_TABLE} table that does not belong to a migration ledger '
                        f"(application={meta.get('application')!r})")
                try:
                    current = int(meta.get('schema_version', ''))
                except ValueError:
                    raise LedgerForeignDatabase(
                        f"{self.location} has an unreadable schema version {meta.get('schema_version')!r}") from None
            if current > SCHEMA_VERSION:
                raise LedgerSchemaTooNew(
                    f'the ledger {self.location} has schema version {current}, newer than the {SCHEMA_VERSION} this '
                    'collection understands; it was written by a newer autonomi.network_migration. Upgrade the '
                    'collection on this controller (ansible-galaxy collection install --upgrade '
                    'autonomi.network_migration); nothing was changed')
            now = self._now()
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for stmt in statements(version, self.dialect):
                    tx.execute(stmt)
            if current < SCHEMA_VERSION:
                self._set_meta(tx, 'application', APPLICATION)
                self._set_meta(tx, 'schema_version', str(SCHEMA_VERSION))
                if current == 0:
                    self._set_meta(tx, 'created_at', _iso(now))
                else:
                    self._event(tx, 'schema_migrated', None, {'from': current, 'to': SCHEMA_VERSION})
        if self.dialect == 'sqlite' and self._db.application_id() != SQLITE_APPLICATION_ID:
            self._db.set_application_id(SQLITE_APPLICATION_ID)

    def _check_foreign_sqlite(self):
        if self.dialect != 'sqlite':
            return
        app_id = self._db.application_id()
        if app_id not in (0, SQLITE_APPLICATION_ID):
            raise LedgerForeignDatabase(f'{self.location} is a SQLite database of another application '
                                        f'(application_id {app_id:#x}), not a migration ledger')

    @staticmethod
    def _set_meta(tx, key, value):
        tx.execute('INSERT INTO ledger_meta (key, value) VALUES (?, ?) '
                   'ON CONFLICT (key) DO UPDATE SET value = excluded.value', (key, value))

    def schema_version(self):
        with self._db.transaction(write=False) as tx:
            row = tx.one("SELECT value FROM ledger_meta WHERE key = 'schema_version'")
        return int(row['value'])
