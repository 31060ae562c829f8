"""Ledger test fixtures: every ledger test runs against SQLite and a real PostgreSQL server.

The PostgreSQL server is started once per session from the server binaries
(/usr/lib/postgresql/<v>/bin): initdb into a temporary directory, listening on 127.0.0.1 with a
free port and its socket in that directory. initdb refuses to run as root, so as root the server
runs as the ``postgres`` OS user. Missing binaries skip the PostgreSQL half locally and fail it
when the environment variable CI is set. Each test gets its own schema (search_path in the DSN).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from ledger_pg_server import PostgresServer, pg_bindir

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

BACKENDS = ('sqlite', 'postgresql')


@pytest.fixture(scope='session')
def postgres_server():
    bindir = pg_bindir()
    if not bindir:
        message = 'PostgreSQL server binaries not found (Debian: apt-get install postgresql)'
        if os.environ.get('CI'):
            pytest.fail(message + '; CI is set, so this is a failure')
        pytest.skip(message)
    server = PostgresServer(bindir)
    try:
        server.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = ''
        if os.path.exists(server.log):
            with open(server.log, encoding='utf-8', errors='replace') as handle:
                log = handle.read()[-2000:]
        server.stop()
        pytest.fail(f'cannot start PostgreSQL: {exc}\n{getattr(exc, "stderr", "")}\n{log}')
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def ledger_location(backend, request, tmp_path):
    """A fresh, empty ledger location for the backend under test."""
    if backend == 'sqlite':
        return str(tmp_path / 'ledger.sqlite3')
    server = request.getfixturevalue('postgres_server')
    return server.new_schema()


class FakeClock:
    def __init__(self, start=None):
        self.now = float(start if start is not None else time.time())

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def ledger(ledger_location, clock):
    handle = ledger_lib.open_ledger(ledger_location, clock=clock)
    yield handle
    handle.close()


@pytest.fixture
def open_ledger(ledger_location):
    """Open more handles on the same ledger (closed at teardown)."""
    handles = []

    def _open(**kwargs):
        handle = ledger_lib.open_ledger(ledger_location, **kwargs)
        handles.append(handle)
        return handle

    yield _open
    for handle in handles:
        handle.close()
