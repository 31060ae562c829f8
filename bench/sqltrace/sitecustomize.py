"""Benchmarks only: every SQLite statement of this process, appended to the file in ANT_BENCH_SQL_TRACE.

bench/scale.py puts this directory on PYTHONPATH of the ansible-playbook it measures, so that the
ledger's writes (callback, action plugins) are counted without changing the collection: each
statement is one line ``<pid> <unix time> <statement>``. Without the variable nothing changes.
"""

from __future__ import annotations

import os

_TRACE = os.environ.get('ANT_BENCH_SQL_TRACE')

if _TRACE:
    import sqlite3
    import time

    _connect = sqlite3.connect

    def _traced_connect(*args, **kwargs):
        conn = _connect(*args, **kwargs)

        def trace(statement):
            with open(_TRACE, 'a') as out:
                out.write('%d %.6f %s\n' % (os.getpid(), time.time(), ' '.join(statement.split())[:200]))

        conn.set_trace_callback(trace)
        return conn

    sqlite3.connect = _traced_connect
