"""A throw-away PostgreSQL server for tests (used by tests/unit/ledger and tests/integration).

initdb into a temporary directory, listening on 127.0.0.1 with a free port and its socket in
that directory. initdb refuses to run as root, so as root the server runs as the ``postgres`` OS
user (the directory is handed to it).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile


def pg_bindir():
    candidates = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                        key=lambda p: int(p.split('/')[-3]) if p.split('/')[-3].isdigit() else 0)
    if candidates:
        return os.path.dirname(candidates[-1])
    initdb = shutil.which('initdb')
    return os.path.dirname(initdb) if initdb else None


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A throw-away PostgreSQL cluster for the test session."""

    def __init__(self, bindir):
        self.bindir = bindir
        self.root = tempfile.mkdtemp(prefix='ledger-pg-')
        self.data = os.path.join(self.root, 'data')
        self.log = os.path.join(self.root, 'server.log')
        self.port = _free_port()
        self.user = 'ledger'
        self._as_postgres = os.geteuid() == 0
        self._schemas = itertools.count(1)

    def _run(self, *args, check=True, timeout=120):
        cmd = [os.path.join(self.bindir, args[0])] + list(args[1:])
        if self._as_postgres:
            cmd = ['runuser', '-u', 'postgres', '--'] + cmd
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)

    def start(self):
        if self._as_postgres:
            shutil.chown(self.root, 'postgres', 'postgres')
        os.chmod(self.root, 0o700)
        self._run('initdb', '-D', self.data, '-U', self.user, '--auth=trust', '-E', 'UTF8', '--no-sync',
                  '--no-instructions')
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c max_connections=60 -c shared_buffers=32MB")
        self._run('pg_ctl', '-D', self.data, '-l', self.log, '-o', opts, '-w', '-t', '60', 'start')
        return self

    def stop(self):
        self._run('pg_ctl', '-D', self.data, '-m', 'immediate', '-w', 'stop', check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, schema=None, dbname='postgres'):
        dsn = f'postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}'
        if schema:
            dsn += f'?options=-csearch_path%3D{schema}'
        return dsn

    def new_schema(self):
        import psycopg

        name = f'ledger_test_{os.getpid()}_{next(self._schemas)}'
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA {name}')
        return self.dsn(schema=name)


def server_for_tests(pytest):
    """A started server for a test module, or the test skipped (failed under CI) without PostgreSQL's
    binaries; a free port taken before the server binds it is tried again. Stop it when done."""
    bindir = pg_bindir()
    if not bindir:
        message = 'PostgreSQL server binaries not found (Debian: apt-get install postgresql)'
        if os.environ.get('CI'):
            pytest.fail(message + '; CI is set, so this is a failure')
        pytest.skip(message)
    for attempt in range(3):
        server = PostgresServer(bindir)
        try:
            return server.start()
        except subprocess.CalledProcessError:
            server.stop()
            if attempt == 2:
                raise
    return None


@contextlib.contextmanager
def started_or_skipped():
    """server_for_tests as a context manager: the server is stopped afterwards."""
    import pytest

    server = server_for_tests(pytest)
    try:
        yield server
    finally:
        server.stop()
