"""From a fault to every node back: alert -> Alertmanager -> EDA rulebook -> fast rollback, at 1,000 nodes.

One simulated fleet (default 50 hosts x 20 nodes, ready delay 2 s) with its Prometheus (every 2 s) and
Alertmanager, the collection's rules and routing installed by playbooks/monitoring.yml with the simulated
inventory's windows (partition rule ``for: 10s``, rate window 10 s, evaluation every 2 s, Alertmanager
``group_wait`` 1 s), and ansible-rulebook running extensions/eda/rulebooks/rollback_on_alert.yml with the
collection's event source - nobody runs a playbook after the fault. The fault: half the hosts switched
to iroh_only behind the collection's back (libp2p-only and iroh-only nodes cannot reach each other). The
clock starts when their restarts are issued and stops when every node is libp2p_only and ready again.

Where the time goes, per run (every moment polled every 0.2 s or stamped by the process concerned):
fault -> alert pending (scrape + recording rules + the alert's evaluation), pending -> firing (the rule's
``for``), firing -> Alertmanager's notification (a second webhook receiver on the same route),
notification -> ansible-playbook started (event source, rulebook, ansible-runner), start-up -> the switch
play (playbook start, validate, plan), the switch play until every node is ready (bench_timeline
callback), and the rest. Then the same sum with the production windows (rules/alert_rules.yml: ``for``
2m, evaluation every 30 s; Prometheus scraping every 15 s; Alertmanager ``group_wait`` 30 s) beside it.

    .venv/bin/python bench/chain.py [--hosts 50] [--nodes 20] [--runs 3] [--forks 50]

``--forks`` is the rulebook's ANSIBLE_FORKS (the run inherits it through ansible-runner); the checkout's
ansible.cfg says 20. No figure is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests' / 'integration'))

from ant_network_migration_common import collection

# The collection as ansible-playbook finds it (ansible.cfg's collections_path: ./collections).
collection.install()

from alerting_stack import inventory_dir  # noqa: E402
from rollback import api, switch_hosts  # noqa: E402

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules import rendering
from ant_fleet_sim import receivers
from ant_fleet_sim.testing import SimStack, wait_for

# The event source refuses notifications without its bearer token; Alertmanager's webhook receiver sends it.
EDA_TOKEN = 'bench-eda-token'

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RULEBOOK_BIN = ROOT / '.venv-eda' / 'bin' / 'ansible-rulebook'
RULEBOOK = ROOT / 'extensions' / 'eda' / 'rulebooks' / 'rollback_on_alert.yml'
TIMELINE_PLUGINS = Path(__file__).resolve().parent / 'callback_plugins'
ALERT = 'NetworkPartitionRisk'
# Production windows (rules/alert_rules.yml, roles/monitoring defaults, an operator's Prometheus at scale); the
# critical routes' group_wait is the monitoring role's critical_group_wait (rendering.DEFAULT_TIMINGS).
PRODUCTION = {'scrape_interval': 15.0, 'evaluation_interval': 30.0, 'for': 120.0,
              'group_wait': alert_rules.parse_duration(rendering.DEFAULT_TIMINGS['critical_group_wait'])}
SIMULATED = {'scrape_interval': 2.0, 'evaluation_interval': 2.0, 'for': 10.0, 'group_wait': 1.0}


def load():
    return os.getloadavg()[0]


def say(text=''):
    print(text, flush=True)


def sim_figures(stack):
    """The simulator's own gauges (cheap, unlike the fleet view): nodes per mode, ready nodes."""
    text = api(stack, 'GET', '/metrics', raw=True).decode()
    values = dict(line.rsplit(' ', 1) for line in text.splitlines() if line and not line.startswith('#'))
    return {'libp2p_only': float(values['ant_sim_nodes{mode="libp2p_only"}']),
            'ready': float(values['ant_sim_nodes_ready'])}


def inventory(stack, directory, receivers_page):
    """The fleet's hosts with the simulated group_vars (tests/integration/alerting_stack.py), Alertmanager's
    `page` receivers as given."""
    return inventory_dir(stack, directory, {'monitoring_alertmanager_receivers': {
        'page': receivers_page, 'notify': [], 'log': []}})


def start_rulebook(inv, directory, env):
    port = None
    for attempt in range(3):
        from ant_fleet_sim import layout

        port = layout.free_port()
        variables = Path(directory) / ('eda-vars-%d.yml' % attempt)
        variables.write_text(yaml.safe_dump({'eda_alertmanager_port': port, 'eda_alertmanager_token': EDA_TOKEN}))
        log = Path(directory) / ('rulebook-%d.log' % attempt)
        with open(log, 'wb') as out:
            proc = subprocess.Popen([str(RULEBOOK_BIN), '--rulebook', str(RULEBOOK), '-i', str(inv), '--vars',
                                     str(variables), '--print-events', '-v'], cwd=str(ROOT), env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
        ready = 'event source listening on http://127.0.0.1:%d/alerts' % port
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            text = log.read_text(errors='replace')
            if ready in text:
                return proc, port, log
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        stop(proc)
    raise RuntimeError('ansible-rulebook did not start; log:\n%s' % log.read_text()[-3000:])


def die_with_parent():
    """In the child: SIGTERM when this benchmark dies, even by SIGKILL (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def timeline_marks(path):
    marks = []
    for line in Path(path).read_text().splitlines():
        stamp, kind, name = line.split(' ', 2)
        marks.append((float(stamp), kind, name))
    return marks


def one_run(stack, hook, ledger, timeline, partitioned):
    """Fault, then poll every moment until every node is back; returns {moment: seconds since the fault}."""
    timeline.write_text('')
    total = stack.hosts * stack.nodes_per_host
    t_wall = time.time()
    t0 = time.monotonic()
    switch_hosts(stack, partitioned, 'iroh_only')
    moments = {'fault issued': time.monotonic() - t0}
    wall_of = {}  # wall-clock moments from other processes (timeline), converted at the end
    while True:
        now = time.monotonic() - t0
        if 'alert pending' not in moments or 'alert firing' not in moments:
            for alert in stack.prometheus_alerts():
                if alert['labels'].get('alertname') != ALERT:
                    continue
                moments.setdefault('alert pending', now)
                if alert['state'] == 'firing':
                    moments.setdefault('alert firing', now)
        if 'Alertmanager notified' not in moments:
            sent = [a['_received_at'] for a in hook.alerts(ALERT, 'firing') if a['_received_at'] > t0]
            if sent:
                moments['Alertmanager notified'] = min(sent) - t0
        if 'fault visible (nodes split)' not in moments:
            figures = sim_figures(stack)
            if figures['libp2p_only'] <= total - len(partitioned) * stack.nodes_per_host:
                moments['fault visible (nodes split)'] = now
        else:
            figures = sim_figures(stack)
            if 'Alertmanager notified' in moments and figures['libp2p_only'] == total and figures['ready'] == total:
                moments['every node libp2p_only and ready'] = now
                break
        if now > 600:
            raise RuntimeError('the chain did not complete within 600 s: %s' % moments)
        time.sleep(0.2)
    tasks = []
    for stamp, kind, name in timeline_marks(timeline):
        key = {'start': 'ansible-playbook started', 'end': None}.get(kind)
        if kind == 'play':
            key = 'play: %s' % name[:50]
        if kind == 'task':
            tasks.append((stamp - t_wall, name))
        if key and key not in wall_of:
            wall_of[key] = stamp - t_wall
    moments['_tasks'] = tasks
    wait_for(lambda: not lock_of(ledger), timeout=180, interval=0.5, what='the rollback to end (lock released)')
    for stamp, kind, _name in timeline_marks(timeline):
        if kind == 'end':
            wall_of['ansible-playbook ended'] = stamp - t_wall
    moments.update(wall_of)
    return moments


def lock_of(ledger):
    try:
        with ledger_lib.open_ledger(str(ledger)) as book:
            return book.lock()
    except ledger_lib.LedgerError:
        return None


def reset(stack, partitioned):
    wait_for(lambda: all(sim_figures(stack)[k] == stack.hosts * stack.nodes_per_host
                         for k in ('libp2p_only', 'ready')), timeout=300, interval=1.0, what='the fleet back')
    wait_for(lambda: not [a for a in stack.prometheus_alerts() if a['labels'].get('alertname') == ALERT],
             timeout=300, interval=1.0, what='no partition alert pending or firing')


def breakdown(moments):
    """Consecutive phases of one run: (phase, seconds)."""
    order = ['fault issued', 'alert pending', 'alert firing', 'Alertmanager notified', 'ansible-playbook started']
    plays = sorted((v, k) for k, v in moments.items() if k.startswith('play: '))
    switch = [at for at, name in plays if 'Switch every affected host' in name]
    if switch:  # the tasks of the switch play that took a second or more
        tasks = [t for t in moments.get('_tasks', []) if t[0] >= switch[0]]
        ends = [t[0] for t in tasks[1:]] + [moments['every node libp2p_only and ready']]
        plays += [(at, 'task: %s' % name[:45]) for (at, name), end in zip(tasks, ends, strict=True)
                  if end - at >= 1.0]
    points = [(moments[k], k) for k in order if k in moments] + plays
    points.append((moments['every node libp2p_only and ready'], 'every node libp2p_only and ready'))
    points.sort()
    return [('%s -> %s' % (a[1], b[1]), b[0] - a[0]) for a, b in zip(points, points[1:], strict=False)]


def production_estimate(runs):
    """The same chain with the production windows: the alerting part from the windows (median case: half
    a scrape and half an evaluation to see the fault, `for` rounded up to an evaluation, group_wait),
    the rest (event source, ansible-playbook, the rollback) as measured."""
    def alerting(windows):
        return (windows['scrape_interval'] / 2 + windows['evaluation_interval'] / 2 + windows['for']
                + windows['evaluation_interval'] / 2 + windows['group_wait'])
    rest = statistics.median(r['every node libp2p_only and ready'] - r['Alertmanager notified'] for r in runs)
    return alerting(SIMULATED), alerting(PRODUCTION), rest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, default=50)
    parser.add_argument('--nodes', type=int, default=20)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--forks', type=int, default=50, help="the rulebook's ANSIBLE_FORKS")
    parser.add_argument('--ready-delay', type=float, default=2.0)
    args = parser.parse_args(argv)
    if not RULEBOOK_BIN.exists():
        parser.error('%s is missing: make setup installs ansible-rulebook in .venv-eda' % RULEBOOK_BIN)
    say('alert -> rollback chain: %d hosts x %d nodes, rulebook forks %d, %d cores, load %.1f'
        % (args.hosts, args.nodes, args.forks, os.cpu_count(), load()))
    runs = []
    with tempfile.TemporaryDirectory(prefix='chain-bench-') as tmp:
        tmp = Path(tmp)
        ledger = tmp / 'ledger.sqlite3'
        # The event source refuses a ledger that does not exist (a mistyped location is not created): made here,
        # as an operator's first playbook run does.
        ledger_lib.open_ledger(str(ledger), create=True).close()
        timeline = tmp / 'timeline.log'
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANT_MIGRATION_LEDGER=str(ledger),
                   ANSIBLE_FORCE_COLOR='0', ANSIBLE_FORKS=str(args.forks),
                   PATH='%s:%s' % (BIN, os.environ.get('PATH', '')),
                   ANSIBLE_CALLBACK_PLUGINS=str(TIMELINE_PLUGINS), ANT_BENCH_TIMELINE=str(timeline),
                   ANSIBLE_CALLBACKS_ENABLED='autonomi.network_migration.migration_tracker,bench_timeline')
        with SimStack(tmp / 'fleet', hosts=args.hosts, nodes_per_host=args.nodes, ready_delay=args.ready_delay,
                      restart_time=0.5, tick=1.0, alertmanager=True, startup_timeout=600) as stack, \
                receivers.WebhookReceiver() as hook:
            stack.wait_targets_up(timeout=300)
            rulebook = None
            try:
                # The rulebook's own port first (the route names it), then the rules and routing.
                probe = inventory(stack, tmp / 'probe', [{'type': 'webhook', 'url': hook.url}])
                rulebook, port, log = start_rulebook(probe, tmp, env)
                inv = inventory(stack, tmp, [{'type': 'webhook', 'url': 'http://127.0.0.1:%d/alerts' % port,
                                              'token': EDA_TOKEN},
                                             {'type': 'webhook', 'url': hook.url}])
                proc = subprocess.run([str(BIN / 'ansible-playbook'), '-i', str(inv),
                                       str(ROOT / 'playbooks' / 'monitoring.yml')], cwd=ROOT, env=env,
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError('monitoring.yml failed:\n' + proc.stdout[-3000:] + proc.stderr[-2000:])
                wait_for(lambda: (stack.query_value('count_over_time(avg(instance:ant_partition_risk:ratio)[12s:2s])')
                                  or 0) >= 6, timeout=120, what='a full rule window recorded')
                partitioned = stack.host_names[:args.hosts // 2]
                for n in range(args.runs):
                    reset(stack, partitioned)
                    before = load()
                    moments = one_run(stack, hook, ledger, timeline, partitioned)
                    moments['load'] = (before, load())
                    runs.append(moments)
                    total = moments['every node libp2p_only and ready']
                    say('\nrun %d: fault -> every node libp2p_only and ready %.1f s  (load %.1f -> %.1f)'
                        % (n + 1, total, *moments['load']))
                    for phase, seconds in breakdown(moments):
                        say('  %-74s %5.1f s' % (phase, seconds))
                    if 'ansible-playbook ended' in moments:
                        say('  (the rollback playbook ended %.1f s after the fault: conclude after the nodes were back)'
                            % moments['ansible-playbook ended'])
            finally:
                if rulebook is not None:
                    stop(rulebook)
        with ledger_lib.open_ledger(str(ledger)) as book:
            rollbacks = book.events(kinds=['rollback'], limit=100)
    say('\n%d rollbacks recorded (trigger %s, strategy %s)' % (
        len(rollbacks), ','.join(sorted({str(e['data'].get('trigger')) for e in rollbacks})),
        ','.join(sorted({str(e['data'].get('strategy')) for e in rollbacks}))))
    if runs:
        totals = [r['every node libp2p_only and ready'] for r in runs]
        simulated, production, rest = production_estimate(runs)
        say('fault -> every node back: %s s (median %.1f)' % (', '.join('%.1f' % t for t in totals),
                                                              statistics.median(totals)))
        say('with the production windows (for 2m, evaluation 30 s, scrape 15 s, critical group_wait %g s): about '
            '%.0f s (alerting %.0f s from the windows instead of %.0f s here, + %.1f s measured from the '
            'notification to every node back)' % (PRODUCTION['group_wait'], production + rest, production,
                                                  simulated, rest))
    return 0


if __name__ == '__main__':
    sys.exit(main())
