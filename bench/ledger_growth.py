"""The ledger through a whole migration: its writes per batch and its size at the end, SQLite and PostgreSQL.

A whole migration of HOSTS x NODES is played through the migration_tracker's own code
(plugins/plugin_utils/runtime/tracker.py, what the callback runs in ansible-playbook), fed the
results the collection's modules return, in the runs an operator makes: a canary (one host), then
for each stage (dual_stack, iroh_primary, iroh_only) the waves 10, 25, 50 and 100 %, each run
reading the whole fleet first (transport_info: an observation per node) and switching its share in
batches of 10 % of the hosts (transport_mode to the stage, node_health after the soak promoting the
healthy nodes, the gate's verdict event). Per batch it counts the ledger's write transactions and the
time spent in them; at the end it prints the ledger's size (SQLite file with its WAL; PostgreSQL
tables with their indexes and TOAST).

    .venv/bin/python bench/ledger_growth.py [--sizes 50x20,250x20,500x20] [--no-pg]

bench/scale.py calls :func:`whole_migration` for each size, and uses the PostgreSQL helpers here for
the wave batch it runs against a PostgreSQL ledger.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ant_network_migration_common import collection

# The collection as ansible-playbook finds it (ansible.cfg's collections_path: ./collections).
collection.install()

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime import tracker as tracker_lib

ROOT = Path(__file__).resolve().parents[1]
PG_SERVER = ROOT / 'tests' / 'unit' / 'ledger' / 'ledger_pg_server.py'
STAGES = (('dual_stack', 'dual_stack_testing', 'dual_stack_stable', 'libp2p_only', 'rollout.yml', 'rollout'),
          ('iroh_primary', 'iroh_primary', None, 'dual_stack', 'promote.yml', 'promote'),
          ('iroh_only', 'iroh_only', None, 'iroh_primary', 'finalize.yml', 'finalize'))
WAVES = (10, 25, 50, 100)


# ---------------------------------------------------------------------------------------- sizes
def sqlite_bytes(path):
    path = Path(path)
    return sum(p.stat().st_size for p in (path, Path(str(path) + '-wal')) if p.exists())


@contextlib.contextmanager
def pg_server():
    """The tests' throw-away PostgreSQL server (tests/unit/ledger/ledger_pg_server.py)."""
    spec = importlib.util.spec_from_file_location('ledger_pg_server', PG_SERVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bindir = module.pg_bindir()
    if bindir is None:
        raise RuntimeError('PostgreSQL is not installed (scripts/setup.sh --test installs it)')
    server = module.PostgresServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


def _pg(dsn):
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def pg_bytes(dsn):
    """Tables, indexes and TOAST of the ledger's schema."""
    with _pg(dsn) as conn:
        row = conn.execute("SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                           "JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE c.relkind = 'r' AND n.nspname = current_schema()").fetchone()
    return int(row[0])


def pg_stats(server):
    """The server's counters: rows written, transactions, WAL bytes (pg_stat_database, pg_current_wal_lsn)."""
    with _pg(server.dsn()) as conn:
        conn.execute('SELECT pg_stat_clear_snapshot()')
        row = conn.execute("SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, "
                           "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') FROM pg_stat_database "
                           "WHERE datname = current_database()").fetchone()
    return dict(zip(('commits', 'inserted', 'updated', 'deleted', 'wal_bytes'), (int(v) for v in row), strict=True))


def pg_delta(before, after, settle=1.5):
    """What was written between two pg_stats (backends report their counters within a second)."""
    rows = {k: after[k] - before[k] for k in ('inserted', 'updated', 'deleted')}
    return {'commits': after['commits'] - before['commits'], 'rows': rows, 'wal_bytes': after['wal_bytes'] -
            before['wal_bytes'], 'write_transactions': None}


# ---------------------------------------------------------------------------------------- a migration
class CountingLedger:
    """Counts the write transactions of a ledger and the time spent in them."""

    def __init__(self, book):
        self.book = book
        self.writes = 0
        self.seconds = 0.0
        db = book._db
        original = db.transaction

        @contextlib.contextmanager
        def transaction(write=True):
            started = time.perf_counter()
            with original(write=write) as tx:
                yield tx
            if write:
                self.writes += 1
            self.seconds += time.perf_counter() - started

        db.transaction = transaction


def node_results(host, nodes, mode, previous, peer_ids):
    return [{'service_name': 'antnode%d' % n, 'peer_id': peer_ids[(host, n)], 'result': 'switched', 'mode': mode,
             'previous_mode': previous, 'version': '0.4.6', 'seconds_to_ready': 2.4} for n in range(1, nodes + 1)]


def whole_migration(hosts, nodes, tmp, pg=True):
    """Play a whole migration into a SQLite ledger (and a PostgreSQL one); per-batch writes and final sizes."""
    names = ['sim-host-%0*d' % (max(2, len(str(hosts))), i + 1) for i in range(hosts)]
    peer_ids = {(h, n): '12D3KooW%s%d' % (h.replace('-', ''), n) for h in names for n in range(1, nodes + 1)}
    backends = {'sqlite': str(Path(tmp) / ('growth-%dx%d.sqlite3' % (hosts, nodes)))}
    result = {'backends': {}}
    with contextlib.ExitStack() as stack:
        if pg:
            server = stack.enter_context(pg_server())
            backends['postgresql'] = server.new_schema()
        for name, location in backends.items():
            ledger_lib.open_ledger(location, create=True).close()    # as `ant-network-migration init` makes it
            figures = _play(location, names, nodes, peer_ids)
            figures['bytes'] = sqlite_bytes(location) if name == 'sqlite' else pg_bytes(location)
            result['backends'][name] = figures
            result['runs'], result['batches'] = figures.pop('runs'), figures.pop('batches_total')
    return result


def _play(location, names, nodes, peer_ids):
    os.environ.pop(ledger_lib.ENV_LOCK_HOLDER, None)
    config = tracker_lib.TrackerConfig(ledger=location, operator='bench')
    opened = {}

    def open_counting(loc, create=False):
        book = ledger_lib.open_ledger(loc, create=create)
        opened['counter'] = CountingLedger(book)
        return book

    batch_writes, batch_seconds, runs = [], [], 0
    tracker = tracker_lib.MigrationTracker(config, open_ledger=open_counting, environ={})
    batch = max(1, len(names) // 10)
    done = 0

    def run(playbook, kind, extra_vars, hosts_to_switch, mode, previous, intent, promote):
        nonlocal runs
        runs += 1
        tracker.start_playbook(playbook, extra_vars, lock=True, kind=kind)
        counter = opened['counter']
        tracker.start_batch('Read the fleet', names)
        for host in names:
            tracker.result(host, 'autonomi.network_migration.transport_info', {'nodes': [
                {'service_name': 'antnode%d' % n, 'peer_id': peer_ids[(host, n)], 'mode': previous if host in
                 hosts_to_switch else None, 'version': '0.4.6', 'status': 'Running'} for n in range(1, nodes + 1)]})
        for start in range(0, len(hosts_to_switch), batch):
            hosts = hosts_to_switch[start:start + batch]
            writes, seconds = counter.writes, counter.seconds
            tracker.start_batch('Switch', hosts)
            tracker.task_start('autonomi.network_migration.transport_mode')
            for host in hosts:
                tracker.result(host, 'autonomi.network_migration.transport_mode',
                               {'mode': mode, 'nodes': node_results(host, nodes, mode, previous, peer_ids)},
                               task_vars={tracker_lib.INTENT_VAR: intent})
            for host in hosts:
                tracker.result(host, 'autonomi.network_migration.node_health', {'nodes': [
                    {'service_name': 'antnode%d' % n, 'peer_id': peer_ids[(host, n)], 'mode': mode,
                     'state': 'healthy', 'status': 'Running', 'connected_peers': 40} for n in range(1, nodes + 1)]},
                    task_vars={tracker_lib.INTENT_VAR: promote} if promote else {})
            tracker.ledger.record_event('gate_verdict', run_id=tracker.run_id, verdict='pass', hosts=hosts,
                                        source='migration_gate')
            batch_writes.append(counter.writes - writes)
            batch_seconds.append(counter.seconds - seconds)
        tracker.end_playbook({h: {'ok': 3} for h in hosts_to_switch})

    run('canary.yml', 'canary', {}, names[:1], 'dual_stack', 'libp2p_only', 'dual_stack_testing', 'dual_stack_stable')
    for mode, intent, promote, previous, playbook, kind in STAGES:
        done = 1 if mode == 'dual_stack' else 0
        for wave in WAVES:
            upto = -(-len(names) * wave // 100)
            hosts = names[done:upto]
            done = max(done, upto)
            if hosts:
                run(playbook, kind, {'wave': wave}, hosts, mode, previous, intent, promote)
    return {'runs': runs, 'batches_total': len(batch_writes),
            'transactions_per_batch': statistics.median(batch_writes) if batch_writes else 0,
            'batch_seconds': statistics.median(batch_seconds) if batch_seconds else 0.0,
            'batch_seconds_max': max(batch_seconds) if batch_seconds else 0.0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='50x20,250x20,500x20')
    parser.add_argument('--no-pg', dest='pg', action='store_false')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='ledger-growth-') as tmp:
        for spec in args.sizes.split(','):
            hosts, nodes = (int(x) for x in spec.split('x'))
            before = os.getloadavg()[0]
            started = time.monotonic()
            result = whole_migration(hosts, nodes, tmp, pg=args.pg)
            print('%d nodes (%d x %d): %d runs, %d batches of %d hosts, %.0f s, load %.1f -> %.1f' % (
                hosts * nodes, hosts, nodes, result['runs'], result['batches'], max(1, hosts // 10),
                time.monotonic() - started, before, os.getloadavg()[0]), flush=True)
            for name, figures in result['backends'].items():
                print('  %-10s %6.1f MiB after the whole migration; per batch %d write transactions, %.0f ms '
                      '(median; max %.0f ms)' % (name, figures['bytes'] / 2 ** 20, figures['transactions_per_batch'],
                                                 1000 * figures['batch_seconds'], 1000 * figures['batch_seconds_max']),
                      flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
