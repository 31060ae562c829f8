# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine of the ``node_health`` module: scrape each node twice and judge it, per check and per transport.

The module (``plugins/modules/node_health.py``) is its documentation, argument spec and a thin ``main()``.
Shipped to fleet hosts with the module (Ansiballz bundles it): standard library only.
"""

from __future__ import annotations

import time

from ansible_collections.autonomi.network_migration.plugins.module_utils._common import (
    parallel_map,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import MetricsError
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODE_TRANSPORTS
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_metrics import (
    closest_peers_window,
    transport_window,
)

HEALTHY = 'healthy'
DEGRADED = 'degraded'
UNHEALTHY = 'unhealthy'
STATES = (HEALTHY, DEGRADED, UNHEALTHY)
# A rate is judged over at least this many observations in the window (requests for the error rate and
# the latency, queries for the closest-peers success). Below it one event decides: at 20 one error is
# already the 5 % error threshold. "Insufficient data" is neither a pass nor a fail.
DEFAULT_MIN_OBSERVATIONS = 20


def worst(states):
    return max(states, key=STATES.index, default=HEALTHY)


class HealthJudge:
    """Turns one node's scrapes into checks. Pure: no I/O, so unit tests drive it directly."""

    def __init__(self, params):
        self.params = params

    def judge(self, node, first, second, elapsed, scrape_error=None):
        checks = []
        entry = {
            'service_name': node['service_name'], 'peer_id': node['peer_id'], 'status': node['status'],
            'mode': None, 'expected_mode': self._expected(node), 'state': HEALTHY,
            'connected_peers': None, 'routing_table_size': None, 'closest_peers': None,
            'transports': {}, 'failed_checks': checks, 'notes': [], 'insufficient_data': [],
        }

        def fail(check, state, value, threshold, reason, transport=None):
            checks.append({'check': check, 'transport': transport, 'state': state, 'value': value,
                           'threshold': threshold, 'reason': reason})

        latest = second or first
        if latest is None:
            fail('reachable', UNHEALTHY, node['status'], 'Running with metrics',
                 f"{node['service_name']} cannot be checked: {scrape_error}")
            entry['state'] = UNHEALTHY
            return entry
        try:
            mode = latest.mode
        except MetricsError as exc:
            mode = None
            fail('mode', UNHEALTHY, None, None, str(exc))
        entry['mode'] = mode
        entry['connected_peers'] = latest.connected_peers
        self._check_mode(entry, mode, fail)
        transports = MODE_TRANSPORTS.get(mode, ())
        for transport in transports:
            entry['transports'][transport] = self._check_transport(
                node, entry, transport, first, second, elapsed, fail)
        self._check_important_peers(node, entry, fail)
        self._check_kademlia(entry, first, second, elapsed, fail)
        entry['state'] = worst(c['state'] for c in checks)
        for transport, figures in entry['transports'].items():
            figures['state'] = worst(c['state'] for c in checks if c['transport'] == transport)
        return entry

    def _expected(self, node):
        expected = self.params['expected_modes'] or {}
        return expected.get(node['service_name'], expected.get(node['peer_id']))

    def _check_mode(self, entry, mode, fail):
        expected = entry['expected_mode']
        if mode is None and not entry['failed_checks']:
            fail('mode', DEGRADED, None, expected,
                 f"{entry['service_name']} does not report ant_node_transport_mode")
        elif expected and mode and mode != expected:
            fail('mode', UNHEALTHY, mode, expected,
                 f"{entry['service_name']} runs {mode} but the ledger expects {expected}")

    def _enough(self, entry, check, transport, observations, elapsed, what):
        """Whether a window holds enough observations to judge a rate; if not, say so (insufficient data)."""
        minimum = max(1, self.params.get('min_observations', DEFAULT_MIN_OBSERVATIONS))
        seen = int(observations or 0)
        if seen >= minimum:
            return True
        where = f'{transport} ' if transport else ''
        entry['insufficient_data'].append({
            'check': check, 'transport': transport, 'observations': seen, 'minimum': minimum,
            'reason': f"{entry['service_name']}: {where}{check.replace('_', ' ')} not judged, insufficient data: "
                      f'{seen} {what} in {elapsed:.1f} s, at least {minimum} needed'})
        return False

    def _check_transport(self, node, entry, transport, first, second, elapsed, fail):
        name = node['service_name']
        latest = second or first
        peers = latest.transport_peers(transport)
        figures = {'connected_peers': peers}
        minimum = self.params['min_peers']
        if peers is None or peers == 0:
            fail('connectivity', UNHEALTHY, peers, minimum,
                 f'{name} has no {transport} peer connected', transport)
        elif peers < minimum:
            fail('connectivity', DEGRADED, peers, minimum,
                 f'{name} has {peers} {transport} peer(s) connected, fewer than {minimum}', transport)
        if second is None:
            return figures
        window = transport_window(first, second, transport, elapsed)
        figures.update(window)
        if self._enough(entry, 'error_rate', transport, window['requests'], elapsed, 'request(s)'):
            rate, limit = window['error_rate'], self.params['max_error_rate']
            if rate is not None and rate > limit:
                fail('error_rate', UNHEALTHY, round(rate, 4), limit,
                     f'{name}: {transport} error rate {rate:.1%} over {elapsed:.1f} s is above {limit:.1%}', transport)
            p95, limit = window['p95_latency_seconds'], self.params['max_p95_latency']
            if p95 is not None and p95 > limit:
                fail('latency_p95', DEGRADED, round(p95, 4), limit,
                     f'{name}: {transport} p95 latency {p95 * 1000:.0f} ms is above {limit * 1000:.0f} ms',
                     transport)
        return figures

    def _check_important_peers(self, node, entry, fail):
        important = self.params['important_peers']
        if not important:
            return
        connected = node.get('connected_peer_ids')
        if connected is None:
            # antctl gave a count only: say so, do not pretend to know.
            entry['notes'].append('antctl status reports no connected peer ids: important_peers not verified')
            return
        missing = [p for p in important if p not in connected and p != node['peer_id']]
        if missing:
            fail('important_peers', DEGRADED, missing, important,
                 f"{node['service_name']} is not connected to important peer(s) {', '.join(missing)}")

    def _check_kademlia(self, entry, first, second, elapsed, fail):
        name = entry['service_name']
        latest = second or first
        size = latest.routing_table_size
        entry['routing_table_size'] = size
        minimum = self.params['min_routing_peers']
        if size is None or size == 0:
            fail('routing_table', UNHEALTHY, size, minimum, f'{name} has an empty Kademlia routing table')
        elif size < minimum:
            fail('routing_table', DEGRADED, size, minimum,
                 f'{name} has {size} peers in its routing table, fewer than {minimum}')
        if second is None:
            return
        queries = closest_peers_window(first, second)
        entry['closest_peers'] = queries
        total = (queries['ok'] or 0) + (queries['errors'] or 0)
        if not self._enough(entry, 'closest_peers', None, total, elapsed, 'closest-peer query(ies)'):
            return
        rate, limit = queries['success_rate'], self.params['min_query_success']
        if rate is not None and rate < limit:
            fail('closest_peers', DEGRADED, round(rate, 4), limit,
                 f'{name}: {rate:.0%} of closest-peer queries succeeded, below {limit:.0%}')


class HealthChecker:
    def __init__(self, params, reader, clock=time.monotonic, sleep=time.sleep):
        self.params = params
        self.reader = reader
        self.clock = clock
        self.sleep = sleep
        self.judge = HealthJudge(params)

    def _scrape_all(self, nodes):
        """{service_name: (NodeMetrics or None, error or None, time of the scrape)}."""
        def one(node):
            metrics, error = self.reader.try_scrape(node)
            return node['service_name'], (metrics, error, self.clock())

        return dict(parallel_map(one, nodes))

    def run(self):
        nodes = self.reader.nodes(self.params['nodes'])
        window = self.params['sample_window']
        started = self.clock()
        first = self._scrape_all(nodes)
        second = {}
        if window > 0 and nodes:
            # Each node's two scrapes are about `window` apart, however long one round takes.
            self.sleep(max(0.0, window - (self.clock() - started)))
            second = self._scrape_all(nodes)
        entries = []
        for node in nodes:
            name = node['service_name']
            one, error, at_first = first[name]
            two, later_error, at_second = second.get(name, (None, None, at_first))
            elapsed = at_second - at_first
            if one is None or (window > 0 and two is None):
                # unreachable during the window: judged as unreachable
                one, two, error = None, None, later_error or error
            entry = self.judge.judge(node, one, two, elapsed, scrape_error=error)
            entry['window_seconds'] = round(elapsed, 3) if two is not None else None
            entries.append(entry)
        windows = [e['window_seconds'] for e in entries if e['window_seconds'] is not None]
        summary = {state: sum(1 for e in entries if e['state'] == state) for state in STATES}
        return {
            'changed': False,
            'state': worst(e['state'] for e in entries),
            'summary': summary,
            'sample_window': max(windows) if windows else 0.0,
            'nodes': entries,
            'unhealthy_nodes': [e['service_name'] for e in entries if e['state'] == UNHEALTHY],
            'degraded_nodes': [e['service_name'] for e in entries if e['state'] == DEGRADED],
            # Rates not judged for lack of observations: neither healthy nor unhealthy evidence.
            'insufficient_data_nodes': [e['service_name'] for e in entries if e['insufficient_data']],
        }


def should_fail(fail_on, state):
    if fail_on == 'never':
        return False
    return STATES.index(state) >= STATES.index(fail_on)


def check_params(params):
    """Ranges the argument spec cannot express; returns the problems (empty when fine)."""
    problems = []
    for name in ('min_query_success', 'max_error_rate'):
        if not 0 <= params[name] <= 1:
            problems.append(f'{name} is a share between 0 and 1, got {params[name]}')
    for name in ('min_peers', 'min_routing_peers', 'max_p95_latency', 'sample_window', 'min_observations'):
        if params[name] < 0:
            problems.append(f'{name} must not be negative, got {params[name]}')
    if params['metrics_timeout'] <= 0:
        problems.append(f"metrics_timeout must be positive, got {params['metrics_timeout']}")
    return problems
