"""Every step's cost as the fleet grows: 1,000, 5,000 and 10,000 nodes on this machine (issue 24).

For each size (HOSTSxNODES, default 50x20, 250x20, 500x20) one simulated fleet (sharded as its size
needs, docs/simulator.md "Shards"; ready delay 2 s) runs every step, each figure printed with the load
average before and after it:

1. **fast rollback of the whole fleet**: ``playbooks/rollback.yml -e strategy=fast`` against the plain
   playbook an operator would write (bench/oneliner_rollback.yml: drop-in, one daemon-reload, one
   restart per host, then a wait on every node's metrics; and the same in one task), interleaved run by
   run (``--repeat``), forks ``--forks``: wall, controller CPU per host, success, every node ready. No
   Prometheus meanwhile (a fast rollback asks no gate; on a real fleet it runs elsewhere).
2. Prometheus (every 2 s up to 1,000 nodes, every 15 s above) with the collection's rules (minute
   windows above 1,000 nodes: inventories/sim-large-fleet.yml), then **one wave batch of 10 % of the
   hosts** (``rollout.yml -e wave=10``, one batch, its soak and gate) against the plain playbook
   switching the same hosts, on a SQLite ledger and again on PostgreSQL;
3. **the gate's queries and latency** (plugin_utils.alert_rules.evaluate, what migration_gate runs)
   over the whole fleet and over the batch's hosts;
4. **status**: ``ant-network-migration status``, the dashboard's ``/status`` and one WebSocket update
   (a ledger event to every client), against the wave's ledger and the fleet's Prometheus;
5. **the ledger**: write transactions and rows of the wave run on SQLite (every statement traced,
   bench/sqltrace/sitecustomize.py) and on PostgreSQL (pg_stat_database), and its size after a
   whole migration of the fleet (bench/ledger_growth.py, the same calls the callback makes).

At the end a table says how each step's cost grows from the smallest size to the largest. No figure is
asserted: this prints. The machine is shared, so every figure carries its load.

    .venv/bin/python bench/scale.py [--sizes 50x20,250x20,500x20] [--shards 0] [--repeat 2] [--forks 50]
        [--steps rollback,wave,gate,status,ledger] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dashboard as dashboard_bench  # noqa: E402
import ledger_growth  # noqa: E402
from rollback import (  # noqa: E402
    BIN,
    ROOT,
    TIME,
    Accounting,
    fmt,
    measure,
    run_variant,
    set_fleet_mode,
    timeline_env,
    wide_port_search,
    write_inventory,
)

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules  # noqa: E402
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import (  # noqa: E402
    PrometheusClient,
    PrometheusSettings,
)
from ant_fleet_sim import prometheus as prom  # noqa: E402
from ant_fleet_sim.testing import SimStack, wait_for  # noqa: E402

STEPS = ('rollback', 'wave', 'gate', 'status', 'ledger')
LARGE_VARS = ROOT / 'inventories' / 'sim-large-fleet.yml'
SIM_VARS = ROOT / 'inventories' / 'sim' / 'group_vars' / 'all'
TRACE_DIR = Path(__file__).resolve().parent / 'sqltrace'
PG_SERVER = ROOT / 'tests' / 'unit' / 'ledger' / 'ledger_pg_server.py'


def sim_tick(total):
    """The simulator's model step: 1 s up to 1,000 nodes, 5 s above (Prometheus scrapes every 15 s there;
    readiness and crashes are brought up to date by each scrape, not by the tick; docs/simulator.md)."""
    return 1.0 if total <= prom.SMALL_FLEET else 5.0


def load():
    return os.getloadavg()[0]


def say(text=''):
    print(text, flush=True)


class Size:
    """One fleet size and everything measured on it."""

    def __init__(self, hosts, nodes, args, tmp):
        self.hosts, self.nodes, self.args = hosts, nodes, args
        self.total = hosts * nodes
        self.large = self.total > prom.SMALL_FLEET
        self.tmp = tmp
        self.figures = {'nodes': self.total, 'hosts': hosts}
        self.stack = None

    # -- fleet ------------------------------------------------------------------------------------
    def start(self):
        wide_port_search(self.total)
        started = time.monotonic()
        self.stack = SimStack(self.tmp / 'fleet', hosts=self.hosts, nodes_per_host=self.nodes, prometheus=False,
                              ready_delay=self.args.ready_delay, restart_time=0.5, tick=sim_tick(self.total),
                              startup_timeout=1800, shards=self.args.shards).start()
        self.acct = Accounting(self.tmp, self.stack)
        self.inventory = write_inventory(self.tmp, self.stack, self.acct)
        self.figures['start_seconds'] = time.monotonic() - started
        self.figures['shards'] = self.stack.info.get('shards', 1)
        say('\n== %d nodes (%d hosts x %d), %d simulator process(es), started in %.0f s, load %.1f'
            % (self.total, self.hosts, self.nodes, self.figures['shards'], self.figures['start_seconds'], load()))

    def stop(self):
        if self.stack is not None:
            self.stack.stop()

    def window_vars(self):
        """Extra vars for every playbook: minute windows past 1,000 nodes (Prometheus scrapes every 15 s)."""
        return ['-e', '@%s' % LARGE_VARS] if self.large else []

    # -- 1. fast rollback -------------------------------------------------------------------------
    def rollback(self):
        runs = {}
        for rep in range(self.args.repeat):
            for variant in self.args.variants:
                set_fleet_mode(self.stack, 'dual_stack')
                before = load()
                r = run_variant(variant, self.stack, self.inventory, self.tmp, self.acct, self.args.forks,
                                timeline=self.tmp / 'timeline-rollback.log')
                r.pop('output', None)
                r.update(rep=rep, load=(before, load()))
                say('  %s  load %.1f -> %.1f' % (fmt(r, self.hosts), *r['load']))
                say('    where the time went: %s' % ', '.join('%s %.1f s' % kv for kv in r['phases']))
                runs.setdefault(variant, []).append(r)
        pairs = [c['wall'] / p['wall'] for c, p in zip(runs.get('collection', []), runs.get('plain', []), strict=False)
                 if c['ok'] and p['ok']]
        if pairs:
            say('  fast rollback: collection / plain playbook, wall, run by run: %s (median %.2f, worst %.2f)'
                % (' '.join('%.2f' % p for p in pairs), statistics.median(pairs), max(pairs)))
        self.figures['rollback'] = runs
        self.figures['rollback_ratio'] = pairs

    # -- 2. Prometheus, rules, one wave batch ------------------------------------------------------
    def prometheus(self):
        started = time.monotonic()
        self.stack.start_prometheus()
        self.stack.wait_targets_up(timeout=600)
        scrape = prom.info(self.stack.state)['scrape']
        run = self.play('monitoring.yml', ledger=self.tmp / 'monitoring.sqlite3')
        if run.returncode != 0:
            raise RuntimeError('monitoring.yml failed:\n%s' % (run.stdout[-3000:] + run.stderr[-2000:]))
        window, step = ('90s', '15s') if self.large else ('12s', '2s')
        wait_for(lambda: (self.stack.query_value('count_over_time(avg(instance:ant_partition_risk:ratio)[%s:%s])'
                                                 % (window, step)) or 0) >= 6,
                 timeout=900, interval=2.0, what='the recording rules over a full gate window')
        self.figures['prometheus'] = {'scrape': scrape, 'ready_seconds': time.monotonic() - started}
        say('  Prometheus: every %s (timeout %s), all %d targets up and a full gate window recorded in %.0f s'
            % (scrape['interval'], scrape['timeout'], self.total + 1, time.monotonic() - started))

    def play(self, playbook, *args, ledger, env=None):
        argv = [str(BIN / 'ansible-playbook'), str(ROOT / 'playbooks' / playbook), '-i', str(self.inventory),
                '-e', 'migration_prometheus_url=%s' % self.stack.prometheus_url,
                '-e', 'monitoring_rules_dir=%s' % (self.stack.state.prometheus_dir / 'rules'),
                *self.window_vars(), *args]
        return subprocess.run(argv, cwd=ROOT, env=self.env(ledger, env), capture_output=True, text=True)

    def env(self, ledger, extra=None):
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANT_MIGRATION_LEDGER=str(ledger),
                   ANSIBLE_NOCOLOR='1', ANT_MIGRATION_OPERATOR='bench', SIM_STATE_DIR=str(self.stack.state_dir))
        env.update(extra or {})
        return env

    def wave(self, backend, ledger, extra_env=None):
        """One wave of 10 % of the hosts in one batch (soak and gate), then the plain playbook on the same hosts."""
        batch = max(1, self.hosts // 10)
        argv = [str(BIN / 'ansible-playbook'), str(ROOT / 'playbooks' / 'rollout.yml'), '-i', str(self.inventory),
                '-e', 'migration_prometheus_url=%s' % self.stack.prometheus_url, *self.window_vars(),
                '-e', 'wave=10', '-e', 'wave_require_canary=false', '-e', '{"wave_batches": [%d]}' % batch,
                '-f', str(self.args.forks)]
        before = load()
        timeline = self.tmp / ('timeline-%s.log' % backend)
        timeline.write_text('')
        env = self.env(ledger, dict(timeline_env(timeline), **(extra_env or {})))
        r = measure('wave %s' % backend, argv, env, self.stack, self.acct, lambda n: True)
        output = r.pop('output')
        moved = sorted({n['host'] for n in self.stack.fleet()['nodes'] if n['mode'] == 'dual_stack'})
        r.update(load=(before, load()), hosts_moved=len(moved))
        r['ok'] = r['ok'] and len(moved) == batch
        say('  %s  load %.1f -> %.1f' % (fmt(r, batch), *r['load']))
        say('    %d hosts moved; where the time went: %s' % (len(moved), ', '.join(
            '%s %.1f s' % kv for kv in r['phases'])))
        if not r['ok']:
            errors = [line[:400] for line in output.splitlines()
                      if line.startswith(('fatal', 'failed', 'FAILED')) or '"msg"' in line or 'msg:' in line]
            say('\n'.join(errors)[-4000:])
        set_fleet_mode(self.stack, 'libp2p_only', hosts=moved)
        plain = None
        if moved:
            argv = [str(BIN / 'ansible-playbook'), 'bench/oneliner_rollback.yml', '-i', str(self.inventory),
                    '-e', 'target=dual_stack', '-e', 'wait=metrics', '-f', str(self.args.forks),
                    '--limit', ','.join(moved)]
            plain_cfg = self.tmp / 'plain.cfg'
            plain_cfg.write_text('[defaults]\ncollections_path = %s\nhost_key_checking = False\n'
                                 % (ROOT / 'collections'))
            env = dict(os.environ, ANSIBLE_CONFIG=str(plain_cfg), ANSIBLE_NOCOLOR='1')
            before = load()
            plain = measure('plain (same hosts)', argv, env, self.stack, self.acct,
                            lambda n: (n['mode'] == 'dual_stack') == (n['host'] in moved))
            plain.pop('output')
            plain['load'] = (before, load())
            say('  %s  load %.1f -> %.1f' % (fmt(plain, len(moved)), *plain['load']))
            set_fleet_mode(self.stack, 'libp2p_only', hosts=moved)
        return r, plain, moved

    def waves(self):
        sqlite = self.tmp / 'wave.sqlite3'
        trace = self.tmp / 'sqltrace.log'
        trace.write_text('')
        env = {'PYTHONPATH': os.pathsep.join(filter(None, [str(TRACE_DIR), os.environ.get('PYTHONPATH')])),
               'ANT_BENCH_SQL_TRACE': str(trace)}
        r, plain, moved = self.wave('sqlite', sqlite, env)
        self.moved = moved
        self.ledger = sqlite
        r['ledger'] = sql_trace_summary(trace)
        r['ledger']['bytes'] = ledger_growth.sqlite_bytes(sqlite)
        self.figures['wave'] = {'sqlite': r, 'plain': plain}
        say('    ledger (SQLite) during the wave run: %s' % ledger_summary_text(r['ledger']))
        if self.args.pg and 'postgresql' in self.args.wave_ledgers:
            with ledger_growth.pg_server() as server:
                dsn = server.new_schema()
                before = ledger_growth.pg_stats(server)
                r_pg, plain_pg, _ = self.wave('postgresql', dsn)
                r_pg['ledger'] = ledger_growth.pg_delta(before, ledger_growth.pg_stats(server))
                r_pg['ledger']['bytes'] = ledger_growth.pg_bytes(dsn)
                say('    ledger (PostgreSQL) during the wave run: %s' % ledger_summary_text(r_pg['ledger']))
            self.figures['wave'].update(postgresql=r_pg, plain_pg=plain_pg)

    # -- 3. the gate --------------------------------------------------------------------------------
    def gate(self):
        settings_vars = yaml.safe_load((SIM_VARS / 'alerts.yml').read_text())
        if self.large:
            settings_vars = yaml.safe_load(LARGE_VARS.read_text())
        ruleset = alert_rules.load_rules(overrides=settings_vars['migration_alert_overrides'],
                                         settings=settings_vars['migration_alert_settings'])
        client = PrometheusClient(PrometheusSettings(url=self.stack.prometheus_url))
        rows = {}
        batch_hosts = getattr(self, 'moved', None) or self.stack.host_names[:max(1, self.hosts // 10)]
        for label, scope in (('fleet', alert_rules.Scope()), ('batch', alert_rules.Scope(batch_hosts))):
            counts, times = [], []
            before = load()
            for _ in range(self.args.gate_repeat):
                queries = client.queries
                started = time.perf_counter()
                _, results = alert_rules.evaluate(client, ruleset, scope, min_samples=3)
                times.append(time.perf_counter() - started)
                counts.append(client.queries - queries)
            rows[label] = {'queries': sorted(set(counts)), 'median_s': statistics.median(times), 'max_s': max(times),
                           'verdicts': {res.rule.id: res.verdict for res in results}, 'load': (before, load())}
            row = rows[label]
            say('  gate over the %s (%d hosts): %s queries, median %.0f ms, max %.0f ms, verdicts %s  load %.1f -> %.1f'
                % (label, self.hosts if label == 'fleet' else len(batch_hosts), '/'.join(map(str, row['queries'])),
                   1000 * row['median_s'], 1000 * row['max_s'], ','.join(sorted(set(row['verdicts'].values()))),
                   *row['load']))
        client.close()
        self.figures['gate'] = rows

    # -- 4. status, dashboard, WebSocket ---------------------------------------------------------
    def status(self):
        ledger = getattr(self, 'ledger', None) or self.tmp / 'wave.sqlite3'
        if not Path(ledger).exists():
            # Without the wave step: a ledger that knows every node of the fleet, as a reconcile run leaves it.
            from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

            with ledger_lib.open_ledger(str(ledger), create=True) as book:
                book.record_transitions([{'host': n['host'], 'service_name': n['service_name'],
                                          'peer_id': n['peer_id'], 'to_state': None, 'mode': n['mode'],
                                          'reason': 'bench: the fleet as read'} for n in self.stack.fleet()['nodes']])
        cli = [str(BIN / 'ant-network-migration'), '--prometheus-url', self.stack.prometheus_url, 'status']
        env = dict(os.environ, ANT_MIGRATION_LEDGER=str(ledger))
        times, before = [], load()
        for _ in range(3):
            started = time.perf_counter()
            proc = subprocess.run(cli, env=env, capture_output=True, text=True, cwd=ROOT)
            times.append(time.perf_counter() - started)
        figures = {'cli_median_s': statistics.median(times), 'cli_rc': proc.returncode, 'cli_load': (before, load())}
        say('  ant-network-migration status: median %.2f s over 3 runs (rc %d)  load %.1f -> %.1f'
            % (figures['cli_median_s'], proc.returncode, *figures['cli_load']))
        import httpx

        from ant_network_migration_dashboard import testing as dash_testing

        before = load()
        with dash_testing.RunningService(str(ledger), self.stack.prometheus_url, poll_interval=1.0,
                                         prometheus_interval=15.0) as running:
            with httpx.Client(timeout=60) as client:
                client.get(running.url + '/status')
                serving = dashboard_bench.time_status(client, running.url, 50)
                size = len(client.get(running.url + '/status').content)
            latencies, during = asyncio.run(dashboard_bench.websocket_fanout(running, ledger, self.args.clients,
                                                                            running.url))
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

        with ledger_lib.open_ledger(str(ledger)) as book:
            book.resume('bench', reason='the benchmark paused it to time a WebSocket update')
        figures.update(status_median_s=statistics.median(serving),
                       status_p95_s=dashboard_bench.percentile(serving, 0.95), document_bytes=size,
                       ws_median_s=statistics.median(latencies), ws_max_s=max(latencies),
                       dashboard_load=(before, load()))
        say('  dashboard: GET /status median %.1f ms, p95 %.1f ms (%d KiB); one ledger event -> %d WebSocket clients '
            'updated in median %.0f ms, max %.0f ms (poll 1 s)  load %.1f -> %.1f' % (
                1000 * figures['status_median_s'], 1000 * figures['status_p95_s'], size // 1024, self.args.clients,
                1000 * figures['ws_median_s'], 1000 * figures['ws_max_s'], *figures['dashboard_load']))
        self.figures['status'] = figures

    # -- 5. the ledger after a whole migration ---------------------------------------------------
    def ledger_growth(self):
        before = load()
        result = ledger_growth.whole_migration(self.hosts, self.nodes, self.tmp, pg=self.args.pg)
        result['load'] = (before, load())
        self.figures['ledger'] = result
        say('  ledger after a whole migration of %d nodes (%d runs, %d batches): %s  load %.1f -> %.1f' % (
            self.total, result['runs'], result['batches'], ', '.join(
                '%s %.1f MiB (%.0f ms per batch, %d write transactions per batch)' % (
                    name, b['bytes'] / 2 ** 20, 1000 * b['batch_seconds'], b['transactions_per_batch'])
                for name, b in result['backends'].items()), *result['load']))


def sql_trace_summary(trace):
    """Write transactions and written rows per table, from the statements bench/sqltrace traced."""
    transactions = 0
    rows = {}
    statements = 0
    for line in trace.read_text().splitlines():
        parts = line.split(' ', 2)
        if len(parts) < 3:
            continue
        statement = parts[2].strip()
        upper = statement.upper()
        if upper.startswith('BEGIN IMMEDIATE'):
            transactions += 1
        for verb, marker in (('INSERT', ' INTO '), ('UPDATE', 'UPDATE '), ('DELETE', ' FROM ')):
            if upper.startswith(verb):
                statements += 1
                table = upper.split(marker, 1)[1].split()[0].strip('"(') if marker in upper else '?'
                rows[table.lower()] = rows.get(table.lower(), 0) + 1
    return {'write_transactions': transactions, 'statements': statements, 'rows': rows}


def ledger_summary_text(figures):
    """SQLite: write transactions and rows per table (traced); PostgreSQL: commits, rows, WAL (server counters)."""
    rows = figures.get('rows') or {}
    if figures.get('write_transactions') is None:
        return ('%d commits (reads included), rows inserted %d / updated %d / deleted %d, %.1f MiB of WAL, '
                'ledger %.1f MiB') % (
            figures['commits'], rows.get('inserted', 0), rows.get('updated', 0), rows.get('deleted', 0),
            figures['wal_bytes'] / 2 ** 20, figures.get('bytes', 0) / 2 ** 20)
    return '%d write transactions, %d rows written (%s), ledger %.1f MiB' % (
        figures['write_transactions'], sum(rows.values()),
        ', '.join('%s %d' % kv for kv in sorted(rows.items(), key=lambda kv: -kv[1])),
        figures.get('bytes', 0) / 2 ** 20)


def growth(name, small, large, factor):
    """How a cost grew from the smallest to the largest fleet: constant, linear or worse (per size factor)."""
    if small is None or large is None or small <= 0:
        return '%-44s n/a' % name
    ratio = large / small
    kind = 'constant' if ratio < factor ** 0.25 else 'sublinear' if ratio < factor * 0.7 else \
        'linear' if ratio < factor * 1.5 else 'worse than linear'
    return '%-44s %10.3g -> %10.3g  x%5.1f for x%.0f nodes: %s' % (name, small, large, ratio, factor, kind)


def summary(sizes):
    done = [s for s in sizes if s.figures.get('nodes')]
    if len(done) < 2:
        return
    a, b = done[0].figures, done[-1].figures
    factor = b['nodes'] / a['nodes']

    def best(fig, variant, key):
        runs = [r for r in (fig.get('rollback') or {}).get(variant, []) if r['ok']]
        return min(r[key] for r in runs) if runs else None

    def per_host(fig, variant):
        c = best(fig, variant, 'controller')
        return c / fig['hosts'] if c is not None else None

    def get(fig, *path):
        for key in path:
            if not isinstance(fig, dict) or key not in fig:
                return None
            fig = fig[key]
        return fig

    def rows_written(fig):
        return sum((get(fig, 'wave', 'sqlite', 'ledger', 'rows') or {}).values()) or None

    say('\n== how each step grows, %d -> %d nodes' % (a['nodes'], b['nodes']))
    lines = [
        growth('simulator start-up (s)', a.get('start_seconds'), b.get('start_seconds'), factor),
        growth('fast rollback wall, collection (s)', best(a, 'collection', 'wall'), best(b, 'collection', 'wall'),
               factor),
        growth('fast rollback wall, plain playbook (s)', best(a, 'plain', 'wall'), best(b, 'plain', 'wall'), factor),
        growth('controller CPU per host, collection (s)', per_host(a, 'collection'), per_host(b, 'collection'), factor),
        growth('wave batch of 10 % wall (s)', get(a, 'wave', 'sqlite', 'wall'), get(b, 'wave', 'sqlite', 'wall'),
               factor),
        growth('wave batch controller CPU (s)', get(a, 'wave', 'sqlite', 'controller'),
               get(b, 'wave', 'sqlite', 'controller'), factor),
        growth('wave run: ledger rows written', rows_written(a), rows_written(b), factor),
        growth('gate over the fleet, median (s)', get(a, 'gate', 'fleet', 'median_s'),
               get(b, 'gate', 'fleet', 'median_s'), factor),
        growth('status CLI (s)', get(a, 'status', 'cli_median_s'), get(b, 'status', 'cli_median_s'), factor),
        growth('dashboard GET /status (s)', get(a, 'status', 'status_median_s'), get(b, 'status', 'status_median_s'),
               factor),
        growth('WebSocket update (s)', get(a, 'status', 'ws_median_s'), get(b, 'status', 'ws_median_s'), factor),
        growth('ledger after a whole migration, SQLite (bytes)', get(a, 'ledger', 'backends', 'sqlite', 'bytes'),
               get(b, 'ledger', 'backends', 'sqlite', 'bytes'), factor),
    ]
    for line in lines:
        say('  ' + line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='50x20,250x20,500x20', help='HOSTSxNODES, comma-separated')
    parser.add_argument('--shards', type=int, default=0, help='simulator processes (0: as the size needs)')
    parser.add_argument('--forks', type=int, default=50)
    parser.add_argument('--ready-delay', type=float, default=2.0)
    parser.add_argument('--repeat', type=int, default=2, help='runs of each rollback variant, interleaved')
    parser.add_argument('--variants', default='collection,plain,plain_one_task')
    parser.add_argument('--steps', default=','.join(STEPS), help=', '.join(STEPS))
    parser.add_argument('--gate-repeat', type=int, default=5)
    parser.add_argument('--clients', type=int, default=50, help='WebSocket clients of the dashboard')
    parser.add_argument('--no-pg', dest='pg', action='store_false', help='skip the PostgreSQL ledger')
    parser.add_argument('--wave-ledgers', default='sqlite,postgresql',
                        help='ledgers the wave batch runs against (the SQLite run always comes first)')
    parser.add_argument('--json', help='write every figure here')
    args = parser.parse_args(argv)
    args.variants = [v for v in args.variants.split(',') if v]
    steps = [s for s in args.steps.split(',') if s]
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error('unknown step(s) %s; expected some of %s' % (', '.join(sorted(unknown)), ', '.join(STEPS)))
    if not os.access(TIME, os.X_OK):
        parser.error('%s (GNU time) is needed for the per-process CPU split: apt-get install time' % TIME)
    say('scale benchmark: %d cores, load %.1f, sizes %s, steps %s' % (os.cpu_count(), load(), args.sizes,
                                                                     ','.join(steps)))
    sizes = []
    for spec in args.sizes.split(','):
        hosts, nodes = (int(x) for x in spec.lower().split('x'))
        with tempfile.TemporaryDirectory(prefix='scale-bench-') as tmp:
            size = Size(hosts, nodes, args, Path(tmp))
            sizes.append(size)
            try:
                size.start()
                if 'rollback' in steps:
                    size.rollback()
                if {'wave', 'gate', 'status'} & set(steps):
                    size.prometheus()
                if 'wave' in steps:
                    size.waves()
                if 'gate' in steps:
                    size.gate()
                if 'status' in steps:
                    size.status()
            except Exception as exc:  # a failed step is reported; the fleet is stopped either way
                size.figures['error'] = repr(exc)
                say('  FAILED: %r' % exc)
            finally:
                size.stop()
            if 'ledger' in steps:
                size.ledger_growth()
            if args.json:
                Path(args.json).write_text(json.dumps([s.figures for s in sizes], indent=1, default=str))
    summary(sizes)
    failed = [s for s in sizes if s.figures.get('error')]
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
