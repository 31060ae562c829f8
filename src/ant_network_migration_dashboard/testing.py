# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for tests and the benchmark: the service on a free port in a thread, and a stub
Prometheus that answers the dashboard's queries over real HTTP (and can be stopped)."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import uvicorn

from ansible_collections.autonomi.network_migration.plugins.module_utils._kademlia import peer_id_from_ed25519
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

from . import server
from .app import Service, create_app
from .boundary import HostPolicy

HEALTHY = {
    'libp2p': {'request_rate': 120.0, 'error_rate': 0.01, 'latency_p50': 0.05, 'latency_p95': 0.2,
               'latency_p99': 0.4, 'active_connections': 60.0, 'health_score': 0.9},
    'iroh': {'request_rate': 80.0, 'error_rate': 0.005, 'latency_p50': 0.03, 'latency_p95': 0.12,
             'latency_p99': 0.3, 'active_connections': 30.0, 'health_score': 0.95},
}


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class StubPrometheus:
    """``/api/v1/query`` answering from a table of figures (``values``: {transport: {figure: value}}, ``risk``:
    the fleet's partition risk): the figures query, ``ALERTS`` from ``alerts``, and the gate's own queries
    (``time()``, the scope of ``targets`` node targets in dual_stack, each rule's judged window and the hosts
    breaching it), so that the alert rules are judged by the collection's own evaluation, as against a
    Prometheus whose recorded figures hold these values. A figure missing from the table has no data."""

    def __init__(self, values=None, risk=0.05, alerts=None, targets=12):
        self.values = json.loads(json.dumps(values or HEALTHY))
        self.risk = risk
        self.alerts = list(alerts or [])
        self.targets = targets
        self.queries = []
        self.port = 0             # the kernel's choice at the first start, kept for a restart
        self._server = None
        self._thread = None

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    def _figure_in(self, promql):
        """The (transport, figure) whose expression the query is made of (the longest match: an error rate holds
        a request rate), or None."""
        settings = alert_rules.load_rules().settings
        table = [(t, f) for t, figures in self.values.items() for f in figures] + [('all', 'partition_risk')]
        found = [(len(expr), key) for key in table for by in ((), ('host',))
                 if (expr := alert_rules.figure_expr(key[1], settings, by=by, transport=key[0])) in promql]
        return max(found)[1] if found else None

    def _value(self, key):
        if key == ('all', 'partition_risk'):
            return self.risk
        return (self.values.get(key[0]) or {}).get(key[1])

    def _gate_result(self, promql, now):
        if promql == 'time()':
            return [{'metric': {}, 'value': [now, repr(now)]}]
        if '"stat", "targets"' in promql:
            scope = [({'stat': 'targets'}, self.targets), ({'stat': 'targets_up'}, self.targets),
                     ({'stat': 'mode', 'mode': 'dual_stack'}, self.targets)]
            return [{'metric': labels, 'value': [now, str(number)]} for labels, number in scope]
        key = self._figure_in(promql)
        value = self._value(key) if key else None
        if value is None:
            return []
        if '"stat", "value"' in promql:      # a rule's judged window: its value, samples, requests seen
            return [{'metric': {'stat': stat}, 'value': [now, repr(float(number))]}
                    for stat, number in (('value', value), ('samples', 100), ('observations', 1e6))]
        return [{'metric': {'host': 'sim-host-01'}, 'value': [now, repr(float(value))]}]   # per host

    def _result(self, promql):
        if promql.startswith('ALERTS'):
            return [{'metric': dict({'__name__': 'ALERTS'}, **alert), 'value': [time.time(), '1']}
                    for alert in self.alerts]
        if not promql.startswith('{__name__=~'):
            return self._gate_result(promql, time.time())
        out = []
        for transport, figures in self.values.items():
            for figure, value in figures.items():
                out.append({'metric': {'__name__': alert_rules.recorded_name(figure, 'transport'),
                                       'transport': transport}, 'value': [time.time(), repr(float(value))]})
        out.append({'metric': {'__name__': alert_rules.recorded_name('partition_risk', 'fleet')},
                    'value': [time.time(), repr(float(self.risk))]})
        return out

    def start(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                parsed = urllib.parse.urlparse(self.path)
                query = urllib.parse.parse_qs(parsed.query).get('query', [''])[0]
                stub.queries.append(query)
                body = json.dumps({'status': 'success', 'data': {'resultType': 'vector',
                                                                  'result': stub._result(query)}}).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class RunningService:
    """The dashboard under uvicorn in a background thread on a loopback port. The socket is bound here
    (port 0: the kernel's choice) and handed to uvicorn, so no other process can take the port between
    choosing and binding it (under load, a port picked by free_port() and bound later sometimes was)."""

    def __init__(self, ledger_location, prometheus_url=None, host='127.0.0.1', port=None, allowed_hosts=(),
                 **options):
        options.setdefault('poll_interval', 0.5)
        options.setdefault('host_policy', HostPolicy(*server.host_names(host, allowed_hosts)))
        options.setdefault('prometheus_interval', 1.0)
        self.service = Service(ledger_location, prometheus_url=prometheus_url, **options)
        self.host = host
        self._socket = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port or 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(create_app(self.service), host=host, port=self.port, log_level='warning',
                                ws='websockets-sansio', lifespan='on', access_log=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={'sockets': [self._socket]}, daemon=True)

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    @property
    def ws_url(self):
        return f'ws://127.0.0.1:{self.port}/ws'

    def start(self, timeout=30.0):
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f'the dashboard did not start on port {self.port}')
            time.sleep(0.05)
        return self

    def stop(self):
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def synthetic_peer_id(host_index, number):
    """A peer id in libp2p's form (``12D3KooW...``, an Ed25519 identity multihash) for a made-up node:
    the planner computes Kademlia keys from it, as from a real one."""
    return peer_id_from_ed25519(hashlib.sha256(f'synthetic/{host_index}/{number}'.encode()).digest())


def fill_ledger(location, hosts=10, nodes_per_host=5, migrated_hosts=0, dual_hosts=0, operator='test'):
    """A ledger with ``hosts x nodes_per_host`` nodes recorded through the ledger's own writes:
    the first ``migrated_hosts`` hosts in iroh_primary (through dual_stack), the next
    ``dual_hosts`` in dual_stack_stable, the rest libp2p_only. Returns the run id."""
    handle = ledger_lib.open_ledger(str(location), create=True)
    try:
        run = handle.start_run('playbooks/rollout.yml', operator, kind='rollout')
        items = []
        for h in range(hosts):
            for n in range(1, nodes_per_host + 1):
                items.append({'host': f'sim-host-{h + 1:02d}', 'service_name': f'antnode{n}',
                              'peer_id': synthetic_peer_id(h, n), 'to_state': 'libp2p_only'})
        handle.record_transitions(items, run_id=run)
        for h in range(migrated_hosts + dual_hosts):
            batch = [dict(i, to_state='dual_stack_testing') for i in items if i['host'] == f'sim-host-{h + 1:02d}']
            handle.record_transitions(batch, run_id=run)
            handle.record_transitions([dict(i, to_state='dual_stack_stable') for i in batch], run_id=run)
            if h < migrated_hosts:
                handle.record_transitions([dict(i, to_state='iroh_primary') for i in batch], run_id=run)
        return run
    finally:
        handle.close()
