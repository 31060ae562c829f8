# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A ledger backup taken, restored into a scratch database and summarised (persistence only).

SQLite: the online backup API (``sqlite3.Connection.backup``) copies the ledger while other writers go
on; the copy is taken inside the read transaction that summarised the ledger, so the summary and the
copy are the same snapshot. PostgreSQL: ``pg_dump --format=custom``, restored with ``pg_restore`` into
a scratch database that is dropped afterwards. What the two summaries mean (do they agree) is decided by
plugins/plugin_utils/services/preflight.py; the restore procedure is docs/runbooks/ledger_restore.md.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.errors import LedgerError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.location import is_dsn

TABLES = ('ledger_runs', 'ledger_nodes', 'ledger_node_history', 'ledger_events', 'ledger_flags',
          'ledger_failures', 'ledger_canary', 'ledger_lock', 'ledger_intents', 'ledger_meta')
LATEST_EVENT = 'SELECT id, kind, at FROM ledger_events ORDER BY id DESC LIMIT 1'


class BackupError(LedgerError):
    """The backup could not be taken or restored; the message says which step and why."""


def summary(query, tables):
    """{table: row count, latest_event: {id, kind, at} or None}; ``query(sql)`` returns rows as tuples."""
    out = {'counts': {table: int(query('SELECT count(*) FROM %s' % table)[0][0]) for table in tables}}
    row = query(LATEST_EVENT) if 'ledger_events' in tables else []
    out['latest_event'] = {'id': int(row[0][0]), 'kind': str(row[0][1]), 'at': float(row[0][2])} if row else None
    return out


# ------------------------------------------------------------------------------------------ SQLite
def _sqlite_tables(conn):
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return [t for t in TABLES if t in names]


def backup_sqlite(path, dest):
    """Copy the ledger at ``path`` to ``dest`` with the online backup API; returns the live summary of
    the same snapshot."""
    if not os.path.isfile(path):
        raise BackupError('the ledger %s does not exist: nothing to back up' % path)
    try:
        source = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            source.execute('BEGIN')
            tables = _sqlite_tables(source)
            live = summary(lambda sql: source.execute(sql).fetchall(), tables)
            target = sqlite3.connect(dest)
            try:
                source.backup(target)
            finally:
                target.close()
            source.execute('COMMIT')
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise BackupError('the backup of %s to %s failed: %s' % (path, dest, exc)) from None
    live['tables'] = tables
    return live


def restore_sqlite(backup, scratch, tables):
    """Restore the backup file into the scratch database ``scratch`` (the backup API again, as the
    restore runbook does) and summarise it; an unreadable or corrupt backup raises BackupError."""
    try:
        source = sqlite3.connect('file:%s?mode=ro' % backup, uri=True)
        try:
            target = sqlite3.connect(scratch)
            try:
                source.backup(target)
                check = target.execute('PRAGMA integrity_check').fetchall()
                if [tuple(r) for r in check] != [('ok',)]:
                    raise BackupError('the restored copy fails its integrity check: %s'
                                      % '; '.join(str(r[0]) for r in check[:3]))
                return summary(lambda sql: target.execute(sql).fetchall(), tables)
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise BackupError('the backup %s does not restore: %s' % (backup, exc)) from None


# ------------------------------------------------------------------------------------------ PostgreSQL
def _pg_tool(name):
    found = shutil.which(name) or sorted(glob.glob('/usr/lib/postgresql/*/bin/%s' % name))
    if isinstance(found, list):
        found = found[-1] if found else None
    if not found:
        raise BackupError('%s is not installed (Debian: postgresql-client): the PostgreSQL ledger cannot be '
                          'backed up' % name)
    return found


def _pg_env(params):
    """libpq's environment for ``params`` (the password never goes on a command line)."""
    env = dict(os.environ)
    names = {'host': 'PGHOST', 'port': 'PGPORT', 'user': 'PGUSER', 'password': 'PGPASSWORD', 'dbname': 'PGDATABASE',
             'sslmode': 'PGSSLMODE', 'options': 'PGOPTIONS', 'sslrootcert': 'PGSSLROOTCERT'}
    for key, value in params.items():
        if key in names and value not in (None, ''):
            env[names[key]] = str(value)
    return env


def _run(argv, env, what):
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise BackupError('%s failed: %s' % (what, redaction.redact_text(proc.stderr.strip()[-400:])))


def _pg_summary(conn, tables=None):
    if tables is None:
        present = {r[0] for r in conn.execute('SELECT table_name FROM information_schema.tables '
                                              'WHERE table_schema = current_schema()').fetchall()}
        tables = [t for t in TABLES if t in present]
    out = summary(lambda sql: conn.execute(sql).fetchall(), tables)
    out['tables'] = tables
    return out


def backup_postgres(dsn, dest):
    """pg_dump of the ledger's database to ``dest``, taken in the snapshot the live summary was read in
    (a REPEATABLE READ transaction exports it; pg_dump --snapshot uses it): the same state, as for SQLite."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            snapshot = conn.execute('SELECT pg_export_snapshot()').fetchone()[0]
            live = _pg_summary(conn)
            _run([_pg_tool('pg_dump'), '--format=custom', '--no-owner', '--snapshot', snapshot, '--file', dest],
                 _pg_env(params), 'pg_dump of the ledger')
            conn.rollback()
    except psycopg.Error as exc:
        raise BackupError('the backup of the PostgreSQL ledger failed: %s' % redaction.redact_text(exc)) from None
    return live


def restore_postgres(dsn, backup, tables):
    """pg_restore of ``backup`` into a scratch database next to the ledger's, summarised, then dropped."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    scratch = '%s_preflight_restore' % (params.get('dbname') or params.get('user') or 'ledger')
    admin = make_conninfo(dsn, dbname=params.get('dbname') or 'postgres')
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL('DROP DATABASE IF EXISTS {}').format(sql.Identifier(scratch)))
            conn.execute(sql.SQL('CREATE DATABASE {}').format(sql.Identifier(scratch)))
        try:
            _run([_pg_tool('pg_restore'), '--no-owner', '--exit-on-error', '--dbname', scratch, backup],
                 _pg_env(dict(params, dbname=scratch)),
                 'pg_restore of the backup into the scratch database %s' % scratch)
            with psycopg.connect(make_conninfo(dsn, dbname=scratch), connect_timeout=10) as restored:
                return _pg_summary(restored, tables)
        finally:
            with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql.SQL('DROP DATABASE IF EXISTS {}').format(sql.Identifier(scratch)))
    except psycopg.Error as exc:
        raise BackupError('the scratch database %s: %s' % (scratch, redaction.redact_text(exc))) from None


# ------------------------------------------------------------------------------------------ both
def take_and_restore(location, backup_dir=None, corrupt=None):
    """Back the ledger at ``location`` up into ``backup_dir`` (default: ``backups/`` beside a SQLite ledger, a
    new temporary directory for PostgreSQL), restore
    it into a scratch database and return ``{backup, live, restored}`` (restored None and ``error`` set
    when the restore failed). ``corrupt(path)``: called on the backup file before the restore (tests)."""
    postgres = is_dsn(location)
    directory = backup_dir or (tempfile.mkdtemp(prefix='ledger-backup-') if postgres
                               else os.path.join(os.path.dirname(os.path.abspath(location)), 'backups'))
    os.makedirs(directory, exist_ok=True)
    backup = os.path.join(directory, 'ledger-backup.%s' % ('pgdump' if postgres else 'sqlite3'))
    if os.path.exists(backup):
        os.unlink(backup)
    live = backup_postgres(location, backup) if postgres else backup_sqlite(location, backup)
    if corrupt:
        corrupt(backup)
    out = {'backup': backup, 'backend': 'postgresql' if postgres else 'sqlite', 'live': live,
           'restored': None, 'error': None}
    try:
        if postgres:
            out['restored'] = restore_postgres(location, backup, live['tables'])
        else:
            with tempfile.TemporaryDirectory(prefix='ledger-restore-') as scratch:
                out['restored'] = restore_sqlite(backup, os.path.join(scratch, 'scratch.sqlite3'), live['tables'])
    except BackupError as exc:
        out['error'] = str(exc)
    return out
