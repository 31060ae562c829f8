"""A fake fleet host for the module tests: antctl's interface, node metrics, and a simulated clock.

The modules see it exactly through what they use on a real host: an antctl client (``status``),
the host's systemd (drop-ins, daemon-reload, restart, start) and a scraper returning NodeMetrics
built from the Prometheus text a node would serve.
"""

from __future__ import annotations

import json

from ansible_collections.autonomi.network_migration.plugins.module_utils._antctl import normalize_node
from ansible_collections.autonomi.network_migration.plugins.module_utils._common import NodeReader
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import (
    MetricsUnreachable,
    SystemdError,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODE_TRANSPORTS, MODES
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_metrics import Metrics, NodeMetrics
from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import (
    Systemd,
    dropin_text,
    parse_environment,
)


class FakeNode:
    def __init__(self, number, mode, status='Running', version='0.4.6'):
        self.number = number
        self.service_name = f'antnode{number}'
        self.peer_id = f'12D3KooWFake{number:04d}'
        self.mode = mode
        self.status = status
        self.version = version
        self.peers = 20
        self.ready_at = 0.0
        self.crash_at = None
        self.fault = None  # None | 'crash' | 'never_ready' | 'unresponsive' | 'restart_fails'
        self.fault_modes = None  # the fault fires only when switching to one of these modes
        self.requests = {'libp2p': [1000, 10], 'iroh': [1000, 5]}
        self.routing = 40
        self.restarts = 0
        self.restart_time = None  # seconds to be ready after a restart; None: the host's

    @property
    def metrics_port(self):
        return 14000 + self.number


class FakeSystemd(Systemd):
    """The host's systemd: drop-in texts in memory, what was loaded at daemon-reload, the verbs."""

    def __init__(self, host):
        super().__init__(unit_dir='/etc/systemd/system', systemctl='systemctl')
        self.host = host
        self.files = {}     # service -> drop-in text
        self.loaded = {}    # service -> mode loaded at the last daemon-reload (None: none)
        self.fail_reload = False
        self.no_unit = set()  # services whose unit file is not in unit_dir

    def has_unit(self, service):
        return service not in self.no_unit

    def read_dropin(self, service):
        return self.files.get(service)

    def write_dropin(self, service, text):
        self.host.calls.append(('write', service, parse_environment(text or '').get('ANT_TRANSPORT_MODE')))
        self.files[service] = text

    def daemon_reload(self):
        self.host.calls.append(('daemon-reload',))
        if self.fail_reload:
            raise SystemdError('systemctl daemon-reload failed with exit code 1: Access denied',
                               cmd=['systemctl', 'daemon-reload'], rc=1, stderr='Access denied')
        self.loaded = {name: parse_environment(text).get('ANT_TRANSPORT_MODE') for name, text in self.files.items()}

    def _apply(self, node):
        mode = self.loaded.get(node.service_name)
        if mode:
            node.mode = mode

    def restart(self, service):
        node = self.host.node(service)
        self.host.calls.append(('restart', service, self.loaded.get(service) or node.mode))
        if self.host._fires(node, self.loaded.get(service), 'restart_fails'):
            raise SystemdError(f'systemctl restart {service}.service failed with exit code 1: Job failed',
                               cmd=['systemctl', 'restart', service], rc=1)
        self._apply(node)
        self.host._start(node)
        return ''

    def run(self, *args, timeout=None):
        """systemctl restart u1 u2 ...: like systemctl, goes on past a failing unit and names it."""
        verb, units = args[0], [u[:-len('.service')] for u in args[1:]]
        assert verb == 'restart', args
        self.host.calls.append(('systemctl-restart', tuple(units)))
        lines = []
        for unit in units:
            try:
                self.restart(unit)
            except SystemdError:
                lines.append(f'Job for {unit}.service failed because the control process exited with error code.')
        if lines:
            raise SystemdError(f"systemctl restart failed with exit code 1: {lines[0]}",
                               cmd=['systemctl', *args], rc=1, stderr='\n'.join(lines) + '\n')
        return ''

    def start(self, service):
        node = self.host.node(service)
        self.host.calls.append(('start', service))
        if node.status != 'Running':
            self._apply(node)
            self.host._start(node)
        return ''


class FakeHost:
    def __init__(self, *modes, restart_time=2.0, version='0.4.6'):
        self.now = 1000.0
        self.restart_time = restart_time
        self.nodes = [FakeNode(i + 1, mode, version=version) for i, mode in enumerate(modes)]
        self.calls = []
        self.scrapes = []  # service names of the scrapes that answered, in order
        self.systemd = FakeSystemd(self)
        for node in self.nodes:  # the hosts were switched by this collection before: each has its drop-in
            self.systemd.files[node.service_name] = dropin_text(node.mode)
        self.systemd.loaded = {n.service_name: n.mode for n in self.nodes}

    # -- clock -------------------------------------------------------------------------
    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(seconds, 0.01)
        self._tick()

    def _tick(self):
        for node in self.nodes:
            if node.crash_at is not None and self.now >= node.crash_at:
                node.status, node.crash_at = 'Stopped', None

    def node(self, name):
        return next(n for n in self.nodes if name in (n.service_name, n.peer_id))

    # -- antctl ------------------------------------------------------------------------
    def status(self):
        self.calls.append(('status',))
        return [normalize_node({
            'service_name': n.service_name, 'peer_id': n.peer_id, 'status': n.status, 'version': n.version,
            'number': n.number, 'metrics_port': n.metrics_port, 'rpc_socket_addr': f'127.0.0.1:{13000 + n.number}',
            'data_dir_path': f'/var/antctl/services/{n.service_name}', 'log_dir_path': f'/var/log/{n.service_name}',
            'connected_peers': n.peers if n.status == 'Running' else None,
        }) for n in self.nodes]

    def _start(self, node):
        node.status, node.peers, node.restarts = 'Running', 0, node.restarts + 1
        node.ready_at = self.now + (self.restart_time if node.restart_time is None else node.restart_time)
        node.requests = {'libp2p': [0, 0], 'iroh': [0, 0]}
        if self._fires(node, node.mode, 'crash'):
            node.crash_at = self.now + 0.5

    @staticmethod
    def _fires(node, mode, fault):
        return node.fault == fault and (node.fault_modes is None or mode in node.fault_modes)

    # -- metrics -----------------------------------------------------------------------
    def text(self, node):
        ready = self.now >= node.ready_at and not self._fires(node, node.mode, 'never_ready')
        node.peers = 20 if ready else (2 if self.now >= node.ready_at else 0)
        lines = [f'ant_networking_connected_peers {node.peers}',
                 f'ant_networking_peers_in_routing_table {node.routing}',
                 f'ant_node_antnode_version_info{{antnode_version="{node.version}"}} 1',
                 'libp2p_kad_query_result_get_closest_peers_ok_count 100',
                 'libp2p_kad_query_result_get_closest_peers_error_total{error="Timeout"} 1']
        lines += [f'ant_node_transport_mode{{mode="{m}"}} {int(m == node.mode)}' for m in MODES]
        for transport in ('libp2p', 'iroh'):
            runs = transport in MODE_TRANSPORTS[node.mode]
            lines.append(f'ant_networking_transport_connected_peers{{transport="{transport}"}} '
                         f'{node.peers if runs else 0}')
            ok, errors = node.requests[transport]
            if runs:
                node.requests[transport] = [ok + 100, errors + 1]
            lines.append(f'ant_networking_transport_requests_total{{transport="{transport}",outcome="success"}} {ok}')
            lines.append(f'ant_networking_transport_requests_total{{transport="{transport}",outcome="error"}} {errors}')
        return '\n'.join(lines) + '\n'

    def scrape(self, port, host='127.0.0.1', timeout=5.0, metadata=False, names=None):
        node = next(n for n in self.nodes if n.metrics_port == port)
        url = f'http://{host}:{port}/metrics'
        self._tick()
        if node.status != 'Running':
            raise MetricsUnreachable(f'{url} cannot be read: [Errno 111] Connection refused', url=url)
        if self._fires(node, node.mode, 'unresponsive'):
            self.now += timeout
            raise MetricsUnreachable(f'{url} cannot be read: timed out', url=url)
        self.scrapes.append(node.service_name)
        return NodeMetrics(Metrics.from_text(self.text(node), names), url=url)

    def reader(self):
        return NodeReader(self, scraper=self.scrape, systemd=self.systemd)

    def modes(self):
        return {n.service_name: n.mode for n in self.nodes}

    def restarts(self):
        """(service, mode) of every systemctl restart, in order."""
        return [(c[1], c[2]) for c in self.calls if c[0] == 'restart']

    def configured(self):
        return {n.service_name: self.systemd.configured_mode(n.service_name) for n in self.nodes}


def params(**overrides):
    """Module parameters as AnsibleModule would fill them (defaults of the argument spec)."""
    base = {
        'nodes': [], 'antctl_path': '/usr/local/bin/antctl', 'antctl_env': {}, 'antctl_timeout': 600,
        'metrics_host': '127.0.0.1', 'metrics_timeout': 5.0, 'mode': 'dual_stack', 'allow_rollback': False,
        'interval': 2000, 'batch_size': 0, 'ready_peers': 5, 'ready_timeout': 300, 'restore_on_failure': True,
        'ignore_pause': False, 'ledger': None, 'unit_dir': '/etc/systemd/system', 'systemctl_path': 'systemctl',
    }
    base.update(overrides)
    return base


def dumps(result):
    """Results must be JSON-serialisable, as a module's are."""
    return json.loads(json.dumps(result))
