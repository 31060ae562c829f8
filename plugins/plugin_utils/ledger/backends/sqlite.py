# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SQLite backend of the ledger: one file, WAL journal, busy timeout, BEGIN IMMEDIATE writes."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
import weakref

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.errors import (
    LedgerError,
    LedgerForeignDatabase,
    LedgerNotFound,
    LedgerUnavailable,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.location import missing_message

SQLITE_MAGIC = b'SQLite format 3\x00'
BUSY_TIMEOUT_MS = 30000
# The ledger holds reasons, operators and (redacted) extra vars: its file is its owner's only, and so are
# the directories created for it. SQLite gives the -wal and -shm files the database file's mode.
FILE_MODE = 0o600
DIR_MODE = 0o700
# SQLite's primary result codes for a full disk: SQLITE_FULL, and SQLITE_IOERR (what a failed write of
# the WAL or its index often gives instead) when the file system has no room left.
SQLITE_FULL = 13
SQLITE_IOERR = 10
NEARLY_FULL_BYTES = 1 << 20

# SQLite must not be used across fork(): a child inherits the parent's connections and SQLite's
# per-process lock bookkeeping of the file (https://www.sqlite.org/howtocorrupt.html, 2.6), and a
# connection the child then opens to the same file can read it as "malformed". ansible-playbook forks
# a worker for every task while the migration_tracker callback has the ledger open; so every open
# backend closes its idle connection before a fork and opens it again when next used.
_OPEN_BACKENDS = weakref.WeakSet()


def _close_before_fork():
    for backend in list(_OPEN_BACKENDS):
        backend._suspend()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(before=_close_before_fork)


def _make_private_dirs(path):
    """Create ``path`` and every missing parent with DIR_MODE (os.makedirs gives its mode to the last one only);
    directories that exist are the operator's and stay as they are."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise


class _Tx:
    """The statements of one transaction; SQL uses ``?`` placeholders."""

    def __init__(self, conn):
        self._conn = conn

    def query(self, sql, params=()):
        cur = self._conn.execute(sql, tuple(params))
        return [dict(row) for row in cur.fetchall()]

    def one(self, sql, params=()):
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql, params=()):
        return self._conn.execute(sql, tuple(params)).rowcount

    def insert(self, sql, params=()):
        """Run an INSERT ... RETURNING id and return the id."""
        return self._conn.execute(sql, tuple(params)).fetchone()[0]


class SQLiteBackend:
    dialect = 'sqlite'

    def __init__(self, path, busy_timeout_ms=BUSY_TIMEOUT_MS, create=True):
        self.path = os.path.abspath(os.path.expanduser(path))
        self.location = self.path
        self._lock = threading.RLock()
        self._busy_ms = int(busy_timeout_ms)
        self._conn = None
        if not self._check_file():
            if not create:
                raise LedgerNotFound(missing_message(self.path))
            self._create_file()
        self._open()
        _OPEN_BACKENDS.add(self)

    def _create_file(self):
        """The ledger's directories (0700) and its empty file (0600), created with those modes: no moment
        in which another user could open them."""
        parent = os.path.dirname(self.path)
        try:
            _make_private_dirs(parent)
        except OSError as exc:
            raise LedgerUnavailable(
                f'cannot create the directory {parent} for the SQLite ledger: {self._os_reason(exc, parent)}; '
                'set ANT_MIGRATION_LEDGER or the [autonomi_network_migration] ledger option to a writable path'
            ) from None
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0), FILE_MODE))
        except FileExistsError:
            pass   # another process created it meanwhile: open it as it is
        except OSError as exc:
            raise LedgerUnavailable(f'cannot create the SQLite ledger {self.path}: {self._os_reason(exc, parent)}') \
                from None

    @staticmethod
    def _os_reason(exc, path):
        if exc.errno == errno.ENOSPC:
            return f'no space left on device on {path}'
        return exc.strerror or str(exc)

    def _open(self):
        busy_timeout_ms = self._busy_ms
        try:
            # isolation_level=None: no implicit transactions, we issue BEGIN ourselves.
            # check_same_thread=False: Ansible calls callbacks from its main and results threads;
            # self._lock serialises them.
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000.0, isolation_level=None,
                                         check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f'PRAGMA busy_timeout = {int(busy_timeout_ms)}')
            self._conn.execute('PRAGMA foreign_keys = ON')
            self._set_wal()
            # FULL: a committed transaction survives a power cut too, not only a killed process.
            self._conn.execute('PRAGMA synchronous = FULL')
        except sqlite3.DatabaseError as exc:
            self._conn = None
            self._raise_open_error(exc)

    def _connection(self):
        if self._conn is None:
            self._open()
        return self._conn

    def _suspend(self):
        """Close the connection when it is idle (before a fork); the next use opens it again."""
        if not self._lock.acquire(blocking=False):
            return  # another thread is in a transaction: nothing to do safely
        try:
            if self._conn is not None and not self._conn.in_transaction:
                self._conn.close()
                self._conn = None
        finally:
            self._lock.release()

    def _check_file(self):
        """Whether the ledger file exists; refuses a directory, an unreadable file and a foreign one."""
        if os.path.isdir(self.path):
            example = os.path.join(self.path, 'ledger.sqlite3')
            raise LedgerUnavailable(
                f'the SQLite ledger path {self.path} is a directory; give a file path such as {example}')
        if not os.path.exists(self.path):
            return False
        try:
            with open(self.path, 'rb') as handle:
                head = handle.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise LedgerUnavailable(f'cannot read the SQLite ledger {self.path}: {exc.strerror or exc}') from None
        if head and head != SQLITE_MAGIC:
            raise LedgerForeignDatabase(
                f'{self.path} is not a SQLite database (it starts with {head[:16]!r}), so it is not a migration '
                'ledger; check ANT_MIGRATION_LEDGER / the [autonomi_network_migration] ledger option, '
                'or move the file away')
        return True

    def _set_wal(self):
        # Switching to WAL needs a moment of exclusive access; retry while another opener holds it.
        for _attempt in range(50):
            try:
                mode = self._conn.execute('PRAGMA journal_mode = WAL').fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if 'locked' not in str(exc) and 'busy' not in str(exc):
                    raise
                threading.Event().wait(0.1)
        else:
            mode = self._conn.execute('PRAGMA journal_mode').fetchone()[0]
        if str(mode).lower() != 'wal':
            raise LedgerUnavailable(f'cannot switch the SQLite ledger {self.path} to WAL journal mode (got {mode}); '
                                    'is it on a network file system? Put the ledger on a local disk or use PostgreSQL')

    def _no_space(self, exc):
        """"no space left on device on <path>" when ``exc`` is SQLite's word for a full file system."""
        code = getattr(exc, 'sqlite_errorcode', None)
        primary = code & 0xff if isinstance(code, int) else None
        if primary != SQLITE_FULL and primary != SQLITE_IOERR and 'disk is full' not in str(exc) \
                and 'disk I/O error' not in str(exc):
            return None
        try:
            stats = os.statvfs(os.path.dirname(self.path))
            free = stats.f_bavail * stats.f_frsize
        except OSError:
            free = None
        if primary == SQLITE_FULL or 'disk is full' in str(exc) or (free is not None and free < NEARLY_FULL_BYTES):
            where = f' ({free} bytes free)' if free is not None else ''
            return (f'no space left on device on {self.path}{where}: the ledger could not write (SQLite: {exc}); '
                    'nothing of the refused write was recorded. Free space on that file system or move the ledger')
        return None

    def _raise_open_error(self, exc):
        msg = str(exc)
        full = self._no_space(exc)
        if full:
            raise LedgerUnavailable(full) from None
        if 'not a database' in msg or 'malformed' in msg or 'encrypted' in msg:
            raise LedgerForeignDatabase(f'{self.path} is not a readable SQLite ledger ({msg}); check the ledger '
                                        'location or move the file away and let a new ledger be created') from None
        if 'locked' in msg or 'busy' in msg:
            raise LedgerUnavailable(f'the SQLite ledger {self.path} stayed locked by another writer for longer than '
                                    f'the busy timeout ({self._busy_ms} ms): {msg}') from None
        raise LedgerUnavailable(f'cannot open the SQLite ledger {self.path}: {msg}') from None

    @contextlib.contextmanager
    def transaction(self, write=True):
        with self._lock:
            conn = self._connection()
            try:
                conn.execute('BEGIN IMMEDIATE' if write else 'BEGIN')
            except sqlite3.DatabaseError as exc:
                self._raise_open_error(exc)
            try:
                yield _Tx(conn)
                conn.execute('COMMIT')
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute('ROLLBACK')
                    except sqlite3.Error:
                        if not isinstance(exc, sqlite3.Error):
                            raise
                        # SQLite rolled back itself (a full disk, an I/O error): report the first error.
                if isinstance(exc, sqlite3.Error):
                    full = self._no_space(exc)
                    if full:
                        raise LedgerUnavailable(full) from None
                    kind = LedgerUnavailable if isinstance(exc, sqlite3.OperationalError) else LedgerError
                    raise kind(f'the SQLite ledger {self.path} failed: {exc}') from None
                raise

    def tables(self, tx):
        rows = tx.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        return sorted(row['name'] for row in rows)

    def application_id(self):
        with self._lock:
            return self._connection().execute('PRAGMA application_id').fetchone()[0]

    def set_application_id(self, value):
        with self._lock:
            self._connection().execute(f'PRAGMA application_id = {int(value)}')

    def close(self):
        with self._lock:
            _OPEN_BACKENDS.discard(self)
            if self._conn is not None:
                self._conn.close()
                self._conn = None
