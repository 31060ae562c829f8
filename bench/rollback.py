"""Fast rollback: the collection against the plain playbook per host, CPU split by process kind.

For each fleet size (hosts x nodes, default 10x20, 20x20, 50x20) a simulated fleet on free ports
(SimStack, no Prometheus: a fast rollback asks no gate) is put in dual_stack, then rolled back to
libp2p_only by each variant, one after the other in the same run on the same machine:

- collection: ``playbooks/rollback.yml -e strategy=fast`` with the ledger (SQLite) and the
  migration_tracker callback, forks ``--forks``.
- plain (the anchor, issue 24): bench/oneliner_rollback.yml - one ``ansible.builtin.command`` per host
  writing every node's drop-in, one daemon-reload, one restart of every node, then an ``until`` loop
  until every node's metrics show the target mode and more than 5 peers; forks ``--forks``, no callback.
  plain_one_task: the same switch and wait in one command per host.
- oneliner_wait (issue 14's anchor, whose ``antctl status --json`` wait does not wait), oneliner_ready
  (a wait on ``antctl status``, which asks every node), oneliner (no wait: the floor).

Each run ends with every node in libp2p_only (checked; the collection and the wait variant also
ready). CPU is split per process kind (only the first runs on the controller of a real fleet):
controller (ansible-playbook, its workers, the shells that start modules), modules (the module
processes, measured through an interpreter wrapper with GNU time), node tools (every antctl and
systemctl call, through wrappers with GNU time; subtracted from the modules that started them)
and the simulator (its daemon's /proc/<pid>/stat). Ratios compare runs of the same invocation.

Both switch the way the collection does since the systemd toggle: the transport-mode drop-in of
every node, ``systemctl daemon-reload``, ``systemctl restart`` of the node services.

    .venv/bin/python bench/rollback.py [--sizes 10x20,20x20,50x20] [--forks 50] [--repeat 1]
        [--background 20x20]   # another fleet + Prometheus loading the machine meanwhile
        [--variants collection,plain,plain_one_task,oneliner_wait,oneliner_ready,oneliner]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from ant_network_migration_common import collection

# The collection as ansible-playbook finds it (ansible.cfg's collections_path: ./collections).
collection.install()

from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import DROPIN_NAME
from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import dropin_text
from ant_fleet_sim import layout
from ant_fleet_sim.testing import SimStack, wait_for

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf('SC_CLK_TCK')
TIME = '/usr/bin/time'
VARIANTS = ('collection', 'plain', 'plain_one_task', 'oneliner_wait', 'oneliner_ready', 'oneliner')
# The plain playbook's options per variant (bench/oneliner_rollback.yml): its readiness wait, one task or two.
PLAIN_VARIANTS = {
    'plain': ('wait=metrics', 'one_task=false'),            # issue 24: switch, then a wait on every node's metrics
    'plain_one_task': ('wait=metrics', 'one_task=true'),    # the same in one command per host
    'oneliner_wait': ('wait=json', 'one_task=false'),       # issue 14 as written: antctl status --json
    'oneliner_ready': ('wait=table', 'one_task=false'),     # antctl status, which asks every node
    'oneliner': ('wait=none', 'one_task=false'),            # no wait: the floor
}


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def proc_cpu(pid):
    """CPU seconds of ``pid`` and of its child processes (a sharded simulator's workers)."""
    with open('/proc/%d/stat' % pid) as fh:
        fields = fh.read().rsplit(')', 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / CLK_TCK
    try:
        children = open('/proc/%d/task/%d/children' % (pid, pid)).read().split()
    except OSError:
        children = []
    for child in children:
        try:
            total += proc_cpu(int(child))
        except OSError:
            pass
    return total


def api(stack, method, path, body=None, timeout=600, raw=False):
    """The simulator's control API: the JSON answer (``raw``: the bytes)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(stack.api_url + path, data=data, method=method,
                                 headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
    return body if raw else json.loads(body or b'null')


def switch_hosts(stack, hosts, mode):
    """Switch every node of ``hosts`` to ``mode`` as the collection does (drop-in, daemon-reload, restart),
    with the simulator's systemctl API called directly (no processes that would blur the CPU figures)."""
    for host in hosts:
        names = [n.name[:-len('.service')] for n in sorted(stack.state.unit_dir(host).glob('antnode*.service'))]
        for name in names:
            path = stack.state.unit_dir(host) / ('%s.service.d' % name) / DROPIN_NAME
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dropin_text(mode))
        api(stack, 'POST', '/api/hosts/%s/systemctl' % host, {'verb': 'daemon-reload', 'units': []})
        api(stack, 'POST', '/api/hosts/%s/systemctl' % host, {'verb': 'restart', 'units': names})


def set_fleet_mode(stack, mode, hosts=None):
    """Switch ``hosts`` (default: every host) to ``mode``; return once every node of the fleet is in
    ``mode`` and ready."""
    switch_hosts(stack, hosts or stack.host_names, mode)
    wait_for(lambda: all(n['mode'] == mode and n['ready'] for n in stack.fleet()['nodes']),
             timeout=600, interval=1.0, what='every node ready in %s' % mode)


class Accounting:
    """Wrappers that report the CPU of every module process and antctl / systemctl call (GNU time)."""

    def __init__(self, tmp, stack):
        self.log = tmp / 'cpu.log'
        self.wrap_dir = tmp / 'wrappers'
        self.wrap_dir.mkdir()
        self.python = self.wrap_dir / 'python'
        self._write(self.python, 'module', os.path.abspath(sys.executable))
        self.antctl, self.systemctl = {}, {}
        for host in stack.host_names:
            path = self.wrap_dir / ('antctl-' + host)
            self._write(path, 'antctl', str(stack.antctl_path(host)))
            self.antctl[host] = path
            path = self.wrap_dir / ('systemctl-' + host)
            self._write(path, 'antctl', str(stack.state.systemctl(host)))
            self.systemctl[host] = path

    def _write(self, path, label, target):
        path.write_text('#!/bin/sh\nexec %s -a -o %s -f "%s %%U %%S" %s "$@"\n' % (TIME, self.log, label, target))
        path.chmod(0o755)

    def reset(self):
        self.log.write_text('')

    def totals(self):
        sums = {'module': 0.0, 'antctl': 0.0}
        counts = {'module': 0, 'antctl': 0}
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] in sums:
                sums[parts[0]] += float(parts[1]) + float(parts[2])
                counts[parts[0]] += 1
        return sums, counts


def write_inventory(tmp, stack, acct, inventory=None):
    inventory = inventory or tmp / 'inventory'
    inventory.mkdir(exist_ok=True)
    data = yaml.safe_load(Path(stack.inventory).read_text())
    hosts = data['all']['children']['fleet']['hosts']
    for host, hostvars in hosts.items():
        hostvars.update(ansible_python_interpreter=str(acct.python), ant_antctl_path=str(acct.antctl[host]),
                        ant_systemctl_path=str(acct.systemctl[host]))
    (inventory / 'hosts.yml').write_text(json.dumps(data, indent=1))
    if not (inventory / 'group_vars').exists():
        (inventory / 'group_vars').symlink_to(ROOT / 'inventories' / 'sim' / 'group_vars')
    return inventory


def run_variant(variant, stack, inventory, tmp, acct, forks, timeline=None):
    """One rollback of the whole fleet to libp2p_only by ``variant``; ``timeline``: a file where the
    bench_timeline callback writes when each play and task started (both kinds of playbook get it)."""
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANT_MIGRATION_LEDGER=str(tmp / ('ledger-%d.sqlite3' % time.time_ns())))
    if variant == 'collection':
        env['ANSIBLE_CONFIG'] = str(ROOT / 'ansible.cfg')
        argv = [str(BIN / 'ansible-playbook'), 'playbooks/rollback.yml', '-i', str(inventory),
                '-e', 'strategy=fast', '-e', 'target=libp2p_only', '-f', str(forks)]
    else:
        plain = tmp / 'plain.cfg'
        plain.write_text('[defaults]\ncollections_path = %s\nhost_key_checking = False\n'
                         'retry_files_enabled = False\n' % (ROOT / 'collections'))
        env['ANSIBLE_CONFIG'] = str(plain)
        argv = [str(BIN / 'ansible-playbook'), 'bench/oneliner_rollback.yml', '-i', str(inventory),
                '-e', 'target=libp2p_only', '-f', str(forks)]
        for item in PLAIN_VARIANTS[variant]:
            argv += ['-e', item]
    if timeline is not None:
        Path(timeline).write_text('')
        env.update(timeline_env(timeline, tracker=variant == 'collection'))
    return measure(variant, argv, env, stack, acct, lambda n: n['mode'] == 'libp2p_only')


TIMELINE_PLUGINS = Path(__file__).resolve().parent / 'callback_plugins'


def timeline_env(path, tracker=True):
    """Environment that makes ansible-playbook write when each play and task starts (bench_timeline)."""
    enabled = ['autonomi.network_migration.migration_tracker'] if tracker else []
    return {'ANSIBLE_CALLBACK_PLUGINS': str(TIMELINE_PLUGINS), 'ANT_BENCH_TIMELINE': str(path),
            'ANSIBLE_CALLBACKS_ENABLED': ','.join(enabled + ['bench_timeline'])}


def play_times(path, started, ended):
    """[(phase, seconds)]: start-up until the first play, each play (until the next), and the exit."""
    marks = []
    for line in Path(path).read_text().splitlines():
        stamp, kind, name = line.split(' ', 2)
        if kind in ('play', 'end'):
            marks.append((float(stamp), name if kind == 'play' else 'exit'))
    if not marks:
        return []
    phases = [('start-up', marks[0][0] - started)]
    for (at, name), (nxt, _) in zip(marks, marks[1:] + [(ended, '')], strict=True):
        phases.append((name[:40], nxt - at))
    return phases


def measure(variant, argv, env, stack, acct, node_ok):
    """Run one ansible-playbook; wall time and CPU split (controller, modules, antctl, simulator)."""
    acct.reset()
    pid = stack.info['pid']
    scrapes0 = api(stack, 'GET', '/api/health')['scrapes']
    sim0, cpu0, t0, started = proc_cpu(pid), children_cpu(), time.monotonic(), time.time()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    wall, total, ended = time.monotonic() - t0, children_cpu() - cpu0, time.time()
    sim = proc_cpu(pid) - sim0
    scrapes = api(stack, 'GET', '/api/health')['scrapes'] - scrapes0
    sums, counts = acct.totals()
    nodes = stack.fleet()['nodes']
    wrong = [n for n in nodes if not node_ok(n)]
    ok = proc.returncode == 0 and not wrong
    if not ok:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-2000:])
        sys.stderr.write('\n%s: rc=%d, %d nodes not as expected\n' % (variant, proc.returncode, len(wrong)))
    return {'variant': variant, 'ok': ok, 'wall': wall, 'controller': total - sums['module'],
            'modules': sums['module'] - sums['antctl'], 'antctl': sums['antctl'], 'sim': sim,
            'module_runs': counts['module'], 'antctl_runs': counts['antctl'],
            'ready': sum(1 for n in nodes if n['ready']), 'nodes': len(nodes), 'scrapes': scrapes,
            'output': proc.stdout, 'phases': play_times(env['ANT_BENCH_TIMELINE'], started, ended)
            if env.get('ANT_BENCH_TIMELINE') else []}


def fmt(r, hosts):
    return ('%-14s %-4s wall %6.1f s | CPU controller %6.1f s (%5.2f/host)  modules %6.1f s (%5.2f/host)  '
            'node tools %5.1f s  simulator %5.1f s | %d module runs, %d antctl/systemctl calls, %d metrics scrapes'
            ' | %d/%d nodes ready when it returned' % (
                r['variant'], 'ok' if r['ok'] else 'FAIL', r['wall'], r['controller'], r['controller'] / hosts,
                r['modules'], r['modules'] / hosts, r['antctl'], r['sim'], r['module_runs'], r['antctl_runs'],
                r['scrapes'], r['ready'], r['nodes']))


def wide_port_search(total):
    """Large fleets: enough open files for the daemon, and a wider port search - 10,000 consecutive
    free ports rarely exist in the usual 20000-32000 beside other fleets, so look from 1100 up to the
    ephemeral range (every port still checked free)."""
    if total > 5000:
        # Two listening sockets per node (metrics and RPC) plus the files: raise the open-files
        # limit the simulator daemon inherits, as far as this process may.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = max(soft, 4 * total + 1024)
        for limit in ((want, max(hard, want)), (min(want, hard), hard)):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, limit)
                break
            except (ValueError, OSError):
                continue
    if total > 5000 and not getattr(layout.free_port_range, 'wide', False):
        narrow = layout.free_port_range

        def wide(count, low=1100, high=32000, attempts=400):
            return narrow(count, low=low, high=high, attempts=attempts)
        wide.wide = True
        layout.free_port_range = wide


def bench_size(hosts, nodes, args, results):
    wide_port_search(hosts * nodes)
    with tempfile.TemporaryDirectory(prefix='rollback-bench-') as tmp:
        tmp = Path(tmp)
        with SimStack(tmp / 'fleet', hosts=hosts, nodes_per_host=nodes, prometheus=False,
                      ready_delay=args.ready_delay, restart_time=0.5, tick=1.0, startup_timeout=600) as stack:
            acct = Accounting(tmp, stack)
            inventory = write_inventory(tmp, stack, acct)
            print('\n== %d hosts x %d nodes = %d nodes, ready delay %.1f s, forks %d, load %.1f'
                  % (hosts, nodes, hosts * nodes, args.ready_delay, args.forks, os.getloadavg()[0]), flush=True)
            runs = {}
            for rep in range(args.repeat):
                for variant in args.variants:
                    set_fleet_mode(stack, 'dual_stack')
                    r = run_variant(variant, stack, inventory, tmp, acct, args.forks)
                    r['rep'] = rep
                    print(fmt(r, hosts), flush=True)
                    runs.setdefault(variant, []).append(r)
            results[(hosts, nodes)] = runs
            best = {v: min(rs, key=lambda r: r['wall']) for v, rs in runs.items()}
            c = best.get('collection')
            for other in VARIANTS[1:]:
                o = best.get(other)
                if c and o and c['ok'] and o['ok']:
                    print('ratio collection/%-13s wall %.2f  controller CPU %.2f  module CPU %.2f  all CPU %.2f' % (
                        other, c['wall'] / o['wall'], c['controller'] / o['controller'],
                        c['modules'] / o['modules'] if o['modules'] else float('nan'),
                        sum(c[k] for k in ('controller', 'modules', 'antctl', 'sim'))
                        / sum(o[k] for k in ('controller', 'modules', 'antctl', 'sim'))), flush=True)
            # The same repetition ran the variants one after the other, under about the same load: its
            # ratio is the fairer comparison on a shared machine; best-of-repeat above is the floor.
            for other in VARIANTS[1:]:
                pairs = [c_run['wall'] / o_run['wall']
                         for c_run, o_run in zip(runs.get('collection', []), runs.get(other, []), strict=False)
                         if c_run['ok'] and o_run['ok']]
                if pairs:
                    print('pairwise collection/%-13s wall %s  median %.2f  worst %.2f' % (
                        other, ' '.join('%.2f' % p for p in pairs), statistics.median(pairs), max(pairs)), flush=True)


def project(results, args):
    """The collection's fast rollback at ``--project`` hosts, from the sizes measured in this run.

    Method (docs/benchmarks.md): a least-squares line wall(H) = a + b*H through the measured
    collection runs (a: the fixed part - playbook start, plan, conclude, one node restart and
    readiness; b: the marginal wall seconds per host on this machine, where the controller is
    CPU-bound), and the controller CPU per host c (mean over sizes). One controller with k cores
    runs H hosts in about a + c*H/k seconds when CPU-bound; N slices on N execution nodes of k
    cores each in about a + c*H/(N*k). Forks: enough that each slice's hosts switch in the rounds
    of ``--switch-seconds`` that fit in the SLA.
    """
    points = sorted((h, min(r['wall'] for r in runs['collection']), runs['collection'])
                    for (h, _n), runs in results.items() if runs.get('collection')
                    and all(r['ok'] for r in runs['collection']))
    if len(points) < 2:
        return
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    a = my - b * mx
    c = sum(min(r['controller'] for r in p[2]) / p[0] for p in points) / len(points)
    hosts = args.project
    print('\nprojection to %d hosts (from %s hosts measured): wall = %.1f s + %.2f s/host here; '
          'controller CPU %.2f s/host' % (hosts, '/'.join(str(x) for x in xs), a, b, c))
    print('  one controller like this one (%d cores): ~%.0f s; controller CPU %.0f s in all'
          % (os.cpu_count(), a + b * hosts, c * hosts))
    for cores in (4, 8, 16):
        print('  one execution node with %2d cores: ~%.0f s (CPU-bound)' % (cores, a + c * hosts / cores))
    for cores in (4, 8):
        slices = 1
        while a + c * hosts / (slices * cores) > args.sla and slices < 256:
            slices += 1
        rounds = max(1, int((args.sla - a) // args.switch_seconds))
        print('  inside the %d s SLA with %d-core execution nodes: %d slice(s), forks >= %d per slice '
              '(%d rounds of %.0f s host switches)' % (args.sla, cores, slices, -(-hosts // (slices * rounds)), rounds,
                                                       args.switch_seconds))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='10x20,20x20,50x20', help='HOSTSxNODES, comma-separated')
    parser.add_argument('--forks', type=int, default=50)
    parser.add_argument('--ready-delay', type=float, default=2.0, help='seconds a restarted node takes to be ready')
    parser.add_argument('--repeat', type=int, default=1, help='runs of each variant per size (best wall shown)')
    parser.add_argument('--variants', default='collection,plain,plain_one_task', help=', '.join(VARIANTS))
    parser.add_argument('--project', type=int, default=500, help='hosts to project the collection to')
    parser.add_argument('--sla', type=int, default=300, help='rollback SLA, seconds')
    parser.add_argument('--switch-seconds', type=float, default=30.0,
                        help='wall time of one round of host switches, for the forks of the projection')
    parser.add_argument('--background', default='', help='HOSTSxNODES of another fleet + Prometheus meanwhile')
    args = parser.parse_args(argv)
    args.variants = [v for v in args.variants.split(',') if v]
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error('unknown variant(s) %s; expected some of %s' % (', '.join(sorted(unknown)), ', '.join(VARIANTS)))
    if not os.access(TIME, os.X_OK):
        parser.error('%s (GNU time) is needed for the per-process CPU split: apt-get install time' % TIME)
    print('fast rollback benchmark: %d cores, load %.1f' % (os.cpu_count(), os.getloadavg()[0]))
    results = {}
    background = None
    with tempfile.TemporaryDirectory(prefix='rollback-bg-') as bg_tmp:
        if args.background:
            h, n = (int(x) for x in args.background.lower().split('x'))
            background = SimStack(Path(bg_tmp) / 'bg', hosts=h, nodes_per_host=n, prometheus=True, tick=1.0,
                                  startup_timeout=600).start()
            print('background load: another fleet of %d x %d scraped by its Prometheus' % (h, n))
        try:
            for size in args.sizes.split(','):
                hosts, nodes = (int(x) for x in size.lower().split('x'))
                bench_size(hosts, nodes, args, results)
        finally:
            if background is not None:
                background.stop()
    project(results, args)
    failed = [r for runs in results.values() for rs in runs.values() for r in rs if not r['ok']]
    print('\n%d runs, %d failed' % (sum(len(rs) for runs in results.values() for rs in runs.values()), len(failed)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
