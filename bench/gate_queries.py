"""Gate benchmark: Prometheus queries and time of one gate evaluation, 50 vs 1,000 nodes.

For each fleet size it starts the simulator and a real Prometheus (SimStack), installs the
migration's rules with the simulated inventory's windows (the monitoring role's renderer), turns
two hosts dual-stack, waits for the recording rules to fill the window, then runs the gate's
evaluation (plugin_utils.alert_rules.evaluate, the code the migration_gate action runs) for the
whole fleet and for two hosts, healthy and with one rule failing, and prints the number of HTTP
queries and the wall time of each evaluation (median of --repeat runs).

    .venv/bin/python bench/gate_queries.py [--sizes 5x10,20x50] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from ant_network_migration_common import collection

# The collection as ansible-playbook finds it (ansible.cfg's collections_path: ./collections).
collection.install()

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import (
    PrometheusClient,
    PrometheusSettings,
)
from ant_fleet_sim.testing import SimStack, wait_for

ROOT = Path(__file__).resolve().parents[1]
SIM_VARS = yaml.safe_load((ROOT / 'inventories' / 'sim' / 'group_vars' / 'all' / 'alerts.yml').read_text())


def install_rules(stack, ruleset):
    rules_dir = stack.state.prometheus_dir / 'rules'
    rules_dir.mkdir(parents=True, exist_ok=True)
    for name, groups in (('recording', alert_rules.recording_rule_groups(ruleset)),
                         ('alerts', alert_rules.alerting_rule_groups(ruleset))):
        (rules_dir / ('autonomi-migration-%s.yml' % name)).write_text(yaml.safe_dump(groups, sort_keys=False))
    from ant_fleet_sim import prometheus as prom

    prom.reload(stack.prometheus_url)


def measure(client, ruleset, scope, repeat):
    counts, times = [], []
    for _ in range(repeat):
        before = client.queries
        started = time.perf_counter()
        _, results = alert_rules.evaluate(client, ruleset, scope, min_samples=3)
        times.append(time.perf_counter() - started)
        counts.append(client.queries - before)
    return counts, statistics.median(times), {r.rule.id: r.verdict for r in results}


def bench(size, repeat, tmp):
    hosts, nodes = size
    ruleset = alert_rules.load_rules(overrides=SIM_VARS['migration_alert_overrides'],
                                     settings=SIM_VARS['migration_alert_settings'])
    started = time.monotonic()
    with SimStack(Path(tmp) / ('%dx%d' % size), hosts=hosts, nodes_per_host=nodes, tick=1.0,
                  ready_delay=1.0, startup_timeout=300) as stack:
        stack.wait_targets_up(timeout=300)
        install_rules(stack, ruleset)
        canaries = stack.host_names[:2]
        for host in canaries:
            names = [n['service_name'] for n in stack.antctl_status(host)['nodes']]
            stack.set_mode(host, names, 'dual_stack')
        stack.wait_ready(timeout=300)
        stack.wait_query('count_over_time(transport:ant_transport_error_rate:ratio{transport="iroh"}[10s])',
                         lambda r: r and float(r[0]['value'][1]) >= 5, timeout=120)
        setup = time.monotonic() - started
        client = PrometheusClient(PrometheusSettings(url=stack.prometheus_url))
        rows = []
        for label, scope in (('fleet', alert_rules.Scope()), ('2 hosts', alert_rules.Scope(canaries))):
            rows.append((label, 'healthy') + measure(client, ruleset, scope, repeat))
        stack.fault('transport', transport='iroh', error_rate=0.3, hosts=canaries)
        rule = ruleset.get('high_error_rate_iroh')
        wait_for(lambda: alert_rules.evaluate(client, ruleset, alert_rules.Scope(), [rule])[1][0].verdict == 'fail',
                 timeout=60, what='the iroh error-rate rule to fail')
        for label, scope in (('fleet', alert_rules.Scope()), ('2 hosts', alert_rules.Scope(canaries))):
            rows.append((label, 'iroh errors') + measure(client, ruleset, scope, repeat))
        client.close()
    return setup, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='5x10,20x50', help='HOSTSxNODES,... (default 50 and 1,000 nodes)')
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [tuple(int(x) for x in s.split('x')) for s in args.sizes.split(',')]
    print('%-8s %-8s %-12s %-8s %-10s %s' % ('nodes', 'scope', 'state', 'queries', 'eval (ms)', 'verdicts'))
    with tempfile.TemporaryDirectory(prefix='gate-bench-') as tmp:
        for size in sizes:
            setup, rows = bench(size, args.repeat, tmp)
            for scope, state, counts, seconds, verdicts in rows:
                failing = ','.join(k for k, v in verdicts.items() if v == 'fail') or '-'
                print('%-8d %-8s %-12s %-8s %-10.1f fail: %s' % (
                    size[0] * size[1], scope, state, '/'.join(map(str, sorted(set(counts)))), seconds * 1000,
                    failing))
            print('  (%d x %d fleet + Prometheus set up and filled in %.0f s)' % (size[0], size[1], setup))


if __name__ == '__main__':
    main()
