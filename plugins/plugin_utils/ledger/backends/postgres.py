# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PostgreSQL backend of the ledger (for AWX, whose jobs run in throw-away containers).

psycopg 3 is imported lazily, so the SQLite ledger works on controllers without it. Every
write transaction first takes a transaction-scoped advisory lock, which gives writers the same
one-at-a-time semantics as SQLite's BEGIN IMMEDIATE (read-modify-write of a node, the run lock).
"""

from __future__ import annotations

import contextlib
import threading
import time

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.errors import (
    LedgerError,
    LedgerUnavailable,
)

# Key of the advisory lock that serialises ledger writers ("ANML").
WRITE_LOCK_KEY = 0x414E4D4C
CONNECT_TIMEOUT = 10
# A connection idle for longer than this is checked before use: servers and proxies drop idle
# connections, and the callback keeps one open for a whole playbook.
IDLE_CHECK_AFTER = 30.0


def redact_dsn(dsn):
    """The DSN with its password replaced, for messages and logs."""
    return redaction.redact_location(dsn)


def dsn_secrets(dsn, psycopg=None):
    """The password of ``dsn`` (as libpq reads it, else as redaction.location_secrets tells it), for redacting
    messages that might quote it (libpq's own errors quote parts of a DSN they cannot read)."""
    secrets = redaction.location_secrets(dsn)
    if psycopg is not None:
        try:
            password = psycopg.conninfo.conninfo_to_dict(dsn).get('password')
        except psycopg.Error:
            password = None
        if password:
            secrets.append(password)
    return [secret for secret in secrets if secret]


class _Tx:
    """The statements of one transaction; SQL uses ``?`` placeholders (turned into ``%s``)."""

    def __init__(self, conn):
        self._conn = conn

    @staticmethod
    def _sql(sql):
        return sql.replace('?', '%s')

    def query(self, sql, params=()):
        with self._conn.cursor() as cur:
            cur.execute(self._sql(sql), tuple(params) or None)
            return [dict(row) for row in cur.fetchall()] if cur.description else []

    def one(self, sql, params=()):
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql, params=()):
        with self._conn.cursor() as cur:
            cur.execute(self._sql(sql), tuple(params) or None)
            return cur.rowcount

    def insert(self, sql, params=()):
        with self._conn.cursor() as cur:
            cur.execute(self._sql(sql), tuple(params) or None)
            return cur.fetchone()['id']


class PostgresBackend:
    dialect = 'postgresql'

    def __init__(self, dsn, connect_timeout=CONNECT_TIMEOUT):
        self.dsn = dsn
        self.location = redact_dsn(dsn)
        self._connect_timeout = connect_timeout
        self._lock = threading.RLock()
        try:
            import psycopg  # pylint: disable=import-outside-toplevel
            from psycopg.rows import dict_row  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise LedgerUnavailable(
                f'the ledger {self.location} is a PostgreSQL DSN but psycopg 3 is not installed on this controller; '
                "install it (pip install 'psycopg[binary]') or use a SQLite ledger path") from None
        import psycopg.conninfo  # noqa: F401  # pylint: disable=import-outside-toplevel
        self._psycopg = psycopg
        self._dict_row = dict_row
        self._conn = None
        self._last_used = 0.0
        self._secrets = dsn_secrets(dsn, psycopg)
        self._connect()

    def _detail(self, exc):
        """The driver's message on one line, with no part of the DSN's password (whole or as libpq quotes it)."""
        return redaction.redact_text(' '.join(str(exc).split()), secrets=self._secrets)

    def _connect(self):
        psycopg = self._psycopg
        try:
            psycopg.conninfo.conninfo_to_dict(self.dsn)
        except psycopg.Error:
            # libpq's reason quotes the part it cannot read, which may be a piece of the password: not shown.
            raise LedgerUnavailable(
                f'the PostgreSQL ledger {self.location} is not a DSN libpq can read; write it as a URI with every '
                'special character of the user and password percent-encoded (@ %40, : %3A, / %2F, ? %3F, # %23, '
                "a blank %20) or as key/value pairs with the password quoted (password='...')") from None
        try:
            self._conn = psycopg.connect(self.dsn, autocommit=True, row_factory=self._dict_row,
                                         connect_timeout=self._connect_timeout,
                                         application_name='autonomi.network_migration')
        except psycopg.Error as exc:
            raise LedgerUnavailable(
                f'cannot connect to the PostgreSQL ledger {self.location}: {self._detail(exc)}; check the DSN '
                '(ANT_MIGRATION_LEDGER or the ledger option), the server and the credentials') from None

    @contextlib.contextmanager
    def transaction(self, write=True):
        psycopg = self._psycopg
        with self._lock:
            self._ensure_connection()
            try:
                with self._conn.transaction():
                    tx = _Tx(self._conn)
                    if write:
                        tx.query('SELECT pg_advisory_xact_lock(?)', (WRITE_LOCK_KEY,))
                    yield tx
            except psycopg.OperationalError as exc:
                raise LedgerUnavailable(f'the PostgreSQL ledger {self.location} failed: {self._detail(exc)}') from None
            except psycopg.Error as exc:
                # Permissions, a search_path naming a missing schema, ...: say so, as a ledger error.
                raise LedgerError(f'the PostgreSQL ledger {self.location} refused a statement: {self._detail(exc)} '
                                  f'({exc.__class__.__name__})') from None

    def _ensure_connection(self):
        psycopg = self._psycopg
        now = time.monotonic()
        if self._conn is not None and not self._conn.closed and not self._conn.broken \
                and now - self._last_used > IDLE_CHECK_AFTER:
            try:
                self._conn.execute('SELECT 1')
            except psycopg.Error:
                self._conn.close()
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._connect()
        self._last_used = now

    def server_time(self):
        """The database server's clock (epoch seconds): the one clock of a ledger shared by several controllers."""
        with self.transaction(write=False) as tx:
            return float(tx.one('SELECT EXTRACT(EPOCH FROM clock_timestamp()) AS now')['now'])

    def tables(self, tx):
        rows = tx.query('SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()')
        return sorted(row['table_name'] for row in rows)

    def application_id(self):
        return None

    def set_application_id(self, value):
        return None

    def close(self):
        with self._lock:
            if self._conn is not None:
                self._conn.close()
