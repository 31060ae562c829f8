"""How often a healthy fleet's gates and node health judgements flap, with and without a minimum of observations.

A healthy simulated fleet (no fault: 0.2 % of requests and 1 % of closest-peer queries fail) serving what a
real node serves - OpenMetrics, integer counters - at low rates (--request-rate requests/s and --query-rate
closest-peer queries/s per node), a real Prometheus with the collection's recording rules and the
simulated inventory's windows (rate window 10 s, evaluation 2 s, rules' ``for`` 10 s). Repeatedly, for
--duration seconds:

- the gate's judgement of every enabled rule for each host (the scope of a wave batch's gate), with
  ``min_observations`` 0 (every window judged, the behaviour before) and with the default;
- node_health's judgement of every node over a --window seconds window, ``min_observations`` 0 and the
  default (its own: 20 requests or queries).

The fleet is healthy throughout, so every "fail" is a false alarm: the flap rate is fails / judgements.
Prints, per variant: judgements, fails, insufficient data, passes, and pass<->fail flips per scope.

    .venv/bin/python bench/gate_flap.py [--hosts 4] [--nodes 5] [--request-rate 1] [--query-rate 0.1]
                                        [--duration 300] [--window 10]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time

import yaml

from ansible_collections.autonomi.network_migration.plugins.module_utils._antctl import Antctl
from ansible_collections.autonomi.network_migration.plugins.module_utils._common import NodeReader
from ansible_collections.autonomi.network_migration.plugins.module_utils._health import (
    DEFAULT_MIN_OBSERVATIONS,
    HealthJudge,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules as ar
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import (
    PrometheusClient,
    PrometheusSettings,
)
from ant_fleet_sim import prometheus as prom
from ant_fleet_sim.testing import SimStack, wait_for

SIM_SETTINGS = {'rate_window': '10s', 'evaluation_interval': '2s'}
SIM_OVERRIDES = {rule: {'for': '10s', 'cooldown': '1m'} for rule in
                 ('high_error_rate_libp2p', 'high_error_rate_iroh', 'iroh_latency_spike', 'network_partition_risk')}


def rulesets():
    default = ar.load_rules(settings=SIM_SETTINGS, overrides=SIM_OVERRIDES)
    none = ar.load_rules(settings=dict(SIM_SETTINGS, min_observations=0), overrides=SIM_OVERRIDES)
    return {'gate, min_observations 0': none,
            'gate, min_observations %d (default)' % default.settings['min_observations']: default}


def install_rules(stack, ruleset):
    rules = stack.state_dir / 'prometheus' / 'rules'
    rules.mkdir(parents=True, exist_ok=True)
    (rules / 'migration-recording.yml').write_text(yaml.safe_dump(ar.recording_rule_groups(ruleset)))
    prom.reload(stack.prometheus_url)
    wait_for(lambda: (stack.query_value('count_over_time(avg(instance:ant_partition_risk:ratio)[12s:2s])') or 0) >= 6,
             timeout=120, what='recording rules over a full gate window')


def params(minimum):
    return {'nodes': [], 'min_peers': 5, 'important_peers': [], 'min_routing_peers': 10, 'min_query_success': 0.9,
            'max_error_rate': 0.05, 'max_p95_latency': 0.5, 'sample_window': 10.0, 'min_observations': minimum,
            'expected_modes': {}, 'fail_on': 'never'}


class Tally:
    def __init__(self):
        self.counts = collections.Counter()
        self.last = {}
        self.flips = 0

    def add(self, scope, verdict):
        self.counts[verdict] += 1
        if verdict in ('pass', 'fail'):
            if self.last.get(scope) not in (None, verdict):
                self.flips += 1
            self.last[scope] = verdict

    def line(self, name):
        judged = sum(self.counts.values())
        fails = self.counts['fail']
        return ('%-38s %6d judgements  %5d fail (%5.2f %%)  %5d insufficient data  %5d pass  %4d flips'
                % (name, judged, fails, 100.0 * fails / judged if judged else 0.0, self.counts['insufficient'],
                   self.counts['pass'], self.flips))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, default=4)
    parser.add_argument('--nodes', type=int, default=5)
    parser.add_argument('--request-rate', type=float, default=1.0)
    parser.add_argument('--query-rate', type=float, default=0.1)
    parser.add_argument('--duration', type=float, default=300.0)
    parser.add_argument('--window', type=float, default=10.0, help='node_health sample window, seconds')
    args = parser.parse_args(argv)
    variants = rulesets()
    tallies = {name: Tally() for name in variants}
    health = {'node_health, min_observations 0': HealthJudge(params(0)),
              'node_health, min_observations %d (default)' % DEFAULT_MIN_OBSERVATIONS:
                  HealthJudge(params(DEFAULT_MIN_OBSERVATIONS))}
    tallies.update({name: Tally() for name in health})
    with tempfile.TemporaryDirectory(prefix='gate-flap-') as tmp, \
            SimStack(tmp, hosts=args.hosts, nodes_per_host=args.nodes, ready_delay=0.5,
                     request_rate=args.request_rate, query_rate=args.query_rate, exposition='openmetrics') as stack:
        stack.wait_targets_up(timeout=120)
        install_rules(stack, next(iter(variants.values())))
        client = PrometheusClient(PrometheusSettings(url=stack.prometheus_url))
        readers = {h: NodeReader(Antctl(path=str(stack.state.antctl(h)))) for h in stack.fleet()['hosts']}
        nodes = {h: readers[h].nodes() for h in readers}
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            first = {(h, n['service_name']): readers[h].try_scrape(n)[0] for h in nodes for n in nodes[h]}
            started = time.monotonic()
            while time.monotonic() - started < args.window:
                for name, ruleset in variants.items():
                    for host in nodes:
                        _facts, results = ar.evaluate(client, ruleset, ar.Scope(hosts=[host]))
                        for result in results:
                            verdict = result.verdict
                            if verdict == ar.NO_DATA and result.reason.startswith('insufficient data'):
                                verdict = 'insufficient'
                            if verdict != ar.SKIPPED:
                                tallies[name].add((host, result.rule.id), verdict)
                time.sleep(2.0)
            elapsed = time.monotonic() - started
            for host in nodes:
                for node in nodes[host]:
                    one = first[(host, node['service_name'])]
                    two = readers[host].try_scrape(node)[0]
                    if one is None or two is None:
                        continue
                    for name, judge in health.items():
                        entry = judge.judge(node, one, two, elapsed)
                        rates = [c for c in entry['failed_checks'] if c['check'] in ('error_rate', 'closest_peers',
                                                                                      'latency_p95')]
                        verdict = 'fail' if rates else ('insufficient' if entry['insufficient_data'] else 'pass')
                        tallies[name].add((host, node['service_name']), verdict)
        client.close()
    print('healthy fleet %d x %d, %.2f requests/s and %.2f closest-peer queries/s per node, OpenMetrics integer '
          'counters, %.0f s' % (args.hosts, args.nodes, args.request_rate, args.query_rate, args.duration))
    for name, tally in tallies.items():
        print(tally.line(name))


if __name__ == '__main__':
    main()
