"""The SQLite ledger is never used across fork(): ansible-playbook forks its workers while the
migration_tracker callback has the ledger open, and a child that inherits an open SQLite connection
can read the file as "malformed" (https://www.sqlite.org/howtocorrupt.html, 2.6)."""

from __future__ import annotations

# pylint: disable=protected-access
import os

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib


def _in_child(check):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if check() else 3
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_inherits_no_open_connection_and_both_sides_keep_working(tmp_path):
    path = tmp_path / 'ledger.sqlite3'
    with ledger_lib.open_ledger(str(path)) as parent:
        parent.set_pause('before the fork', 'alice')
        backend = parent._db

        def child():
            if backend._conn is not None:
                return False                          # the parent's connection came along: unsafe
            with ledger_lib.open_ledger(str(path)) as book:
                book.resume('alice')                  # a worker writes through its own connection
            return True

        assert _in_child(child) == 0
        assert parent.get_flags()['paused'] is None   # the parent reopens and sees the child's write
        parent.set_pause('after the fork', 'bob')
    with ledger_lib.open_ledger(str(path)) as book:
        assert book.get_flags()['paused']['reason'] == 'after the fork'
