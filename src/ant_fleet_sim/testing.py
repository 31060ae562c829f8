"""Test helper: a simulated fleet plus a real Prometheus (and optionally Alertmanager) on free ports, torn down on exit.

    with SimStack(tmp_path, hosts=4, nodes_per_host=3, ready_delay=0.5) as stack:
        stack.wait_targets_up()
        stack.antctl('sim-host-01', 'status', '--json')
        stack.fault('transport', transport='iroh', error_rate=0.5, mode='dual_stack')
        stack.query('sum(ant_networking_connected_peers)')

Ports are picked at random among free ones so that several stacks (parallel tests, the demo)
run side by side. Every wait polls with a deadline; nothing sleeps blindly.

``SimStack(..., ssh=True)`` reaches every simulated host through a real OpenSSH server, as a real
fleet is reached (see ant_fleet_sim.ssh): the inventory then connects over SSH as the host's own
unprivileged account, with become through sudo and /usr/bin/python3. Needs root and Debian's
openssh-server and sudo. The state directory then lives in a directory of its own under the
system's temporary directory (the host accounts must reach it; pytest's are private to root),
and ``directory/sim-logs`` keeps the simulator's and sshd's logs after ``stop()``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from . import control, layout
from . import prometheus as prom
from .model import SimConfig


class SimStackError(AssertionError):
    pass


class QueryResult(list):
    """The result list of an instant query that also compares like its first value.

    ``results[0]['value'][1]`` stays available; for scalar-like queries ``results > 0`` or
    ``float(results)`` read the first sample (an empty result compares as "no data": never true).
    """

    def value(self, default=None):
        return float(self[0]['value'][1]) if self else default

    def __float__(self):
        if not self:
            raise ValueError('empty query result (no data)')
        return self.value()

    def _cmp(self, other, op):
        if not self or isinstance(other, list):
            return NotImplemented if isinstance(other, list) else False
        return op(self.value(), other)

    def __gt__(self, other):
        return self._cmp(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._cmp(other, lambda a, b: a >= b)

    def __lt__(self, other):
        return self._cmp(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._cmp(other, lambda a, b: a <= b)


def wait_for(predicate, timeout=30.0, interval=0.2, what='condition'):
    """Poll ``predicate`` until it returns a truthy value; return it, or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last error on timeout
            last_exc = exc
        if time.monotonic() >= deadline:
            raise SimStackError('timed out after %.0f s waiting for %s%s'
                                % (timeout, what, ' (last error: %r)' % last_exc if last_exc else ''))
        time.sleep(interval)


class SimStack:
    def __init__(self, directory, hosts=4, nodes_per_host=3, ready_delay=0.5, restart_time=0.2, prometheus=True,
                 tick=0.5, startup_timeout=120.0, alertmanager=False, ssh=False, fresh=False, scrape_interval=None,
                 **config):
        self.directory = Path(directory)
        self.ssh = ssh
        self.fresh = fresh
        self.scrape_interval = scrape_interval
        self.ssh_info = None
        if ssh:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.state_dir = Path(tempfile.mkdtemp(prefix='ant-fleet-sim-ssh-'))
        else:
            self.state_dir = self.directory / 'sim'
        self.state = layout.StateDir(self.state_dir)
        self.hosts = hosts
        self.nodes_per_host = nodes_per_host
        self.with_prometheus = prometheus
        self.with_alertmanager = alertmanager
        self.alertmanager_port = None
        self.alertmanager_url = None
        self.startup_timeout = startup_timeout
        total = hosts * nodes_per_host
        self.config = SimConfig(hosts=hosts, nodes_per_host=nodes_per_host, ready_delay=ready_delay,
                                restart_time=restart_time, tick=tick, base_port=layout.free_port_range(total),
                                api_port=layout.free_port(), **config)
        self.prometheus_port = None
        self.prometheus_url = None
        self.api_url = None
        self.info = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        try:
            self.info = control.launch(self.state_dir, self.config, timeout=self.startup_timeout,
                                       owner_pid=os.getpid(), fresh=self.fresh)
        except control.SimError as exc:
            if 'port clash' not in str(exc):
                raise
            # Another stack took our random ports between the check and the bind: pick again once.
            self.config.base_port = layout.free_port_range(self.hosts * self.nodes_per_host)
            self.config.api_port = layout.free_port()
            self.info = control.launch(self.state_dir, self.config, timeout=self.startup_timeout,
                                       owner_pid=os.getpid(), fresh=self.fresh)
        self.api_url = self.info['api_url']
        self.client = control.ApiClient(self.api_url)
        try:
            if self.ssh:
                from . import ssh
                self.ssh_info = ssh.start(self.state_dir, self.host_names)
            if self.with_alertmanager:
                self.start_alertmanager()
            if self.with_prometheus:
                self.start_prometheus()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.ssh:
            from . import ssh
            ssh.stop(self.state_dir)
        control.shutdown(self.state_dir)
        if self.ssh and self.state_dir.exists():
            logs = self.directory / 'sim-logs'
            logs.mkdir(parents=True, exist_ok=True)
            for name in ('sim.log', 'ssh/sshd.log', 'ssh/supervisor.log', 'inventory/hosts.yml'):
                if (self.state_dir / name).exists():
                    shutil.copy(self.state_dir / name, logs / name.replace('/', '-'))
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def ssh_command(self, host, command):
        """argv of a plain ssh to ``host`` (as its own account) running ``command``; ssh=True only."""
        from . import ssh
        if not self.ssh_info:
            raise SimStackError('this stack was not started with ssh=True')
        return ssh.ssh_command(self.ssh_info, host, command)

    def start_prometheus(self, port=None):
        """Start (or restart) Prometheus: on ``port``, else on the port it had, else a free one.

        Without an explicit port a clash (someone took the port meanwhile) moves it to a new free
        port; ``prometheus_url`` always tells where it listens.
        """
        self.prometheus_port = port or self.prometheus_port or layout.free_port()
        for attempt in range(3):
            try:
                self.prometheus_url = prom.start(self.state, self.prometheus_port, api_url=self.api_url,
                                                 scrape_interval=self.scrape_interval)
                return self.prometheus_url
            except prom.PrometheusError as exc:
                if port or attempt == 2 or not ('port' in str(exc) or 'address already in use' in str(exc)):
                    raise
                self.prometheus_port = layout.free_port()
        return self.prometheus_url

    def stop_prometheus(self):
        prom.stop(self.state)

    # ------------------------------------------------------------------ Alertmanager
    @property
    def alertmanager_config_path(self):
        """Where the monitoring role writes this stack's Alertmanager configuration."""
        return prom.alertmanager_config_path(self.state)

    def start_alertmanager(self, port=None):
        """Start (or restart) Alertmanager, Prometheus's alert receiver; same port rules as Prometheus."""
        self.alertmanager_port = port or self.alertmanager_port or layout.free_port()
        for attempt in range(3):
            try:
                self.alertmanager_url = prom.start_alertmanager(self.state, self.alertmanager_port)
                return self.alertmanager_url
            except prom.PrometheusError as exc:
                if port or attempt == 2 or 'port' not in str(exc):
                    raise
                self.alertmanager_port = layout.free_port()
        return self.alertmanager_url

    def stop_alertmanager(self):
        prom.stop_alertmanager(self.state)

    def am_alerts(self, **filters):
        """Alertmanager's view of the alerts (``GET /api/v2/alerts``; filters e.g. inhibited=True)."""
        if not self.alertmanager_url:
            raise SimStackError('Alertmanager is not running in this stack')
        params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in filters.items()}
        url = self.alertmanager_url + '/api/v2/alerts' + ('?' + urllib.parse.urlencode(params) if params else '')
        with urllib.request.urlopen(url, timeout=10.0) as resp:
            return json.loads(resp.read())

    def prometheus_alerts(self):
        """Prometheus's active alerts (pending and firing), ``GET /api/v1/alerts``."""
        return self._prom_get('/api/v1/alerts')['data']['alerts']

    # ------------------------------------------------------------------ fleet
    @property
    def inventory(self):
        return self.state.inventory

    @property
    def host_names(self):
        return self.config.host_names()

    def antctl_path(self, host):
        return self.state.antctl(host)

    def antctl(self, host, *args, check=False, timeout=600):
        return subprocess.run([str(self.state.antctl(host)), *args], capture_output=True, text=True, check=check,
                              timeout=timeout)

    def antctl_status(self, host):
        res = self.antctl(host, 'status', '--json', check=True)
        return json.loads(res.stdout)

    def fleet(self):
        return self.client.get('/api/fleet')

    def node(self, host, service_name):
        for node in self.fleet()['nodes']:
            if node['host'] == host and node['service_name'] == service_name:
                return node
        raise KeyError('%s/%s' % (host, service_name))

    def fault(self, kind, **params):
        """Inject a fault; returns it (with its id). Bad input raises control.SimError."""
        return self.client.post('/api/faults', {'kind': kind, **params})

    def faults(self):
        return self.client.get('/api/faults')['faults']

    def clear_faults(self):
        return self.client.delete('/api/faults')

    def client_reads(self):
        return self.client.get('/api/client_reads')

    def set_mode(self, host, service_names, mode, interval_ms=0):
        """Switch nodes the way the collection does (systemd drop-in, daemon-reload, restart)."""
        from .systemd import switch_mode
        return switch_mode(self.state, host, service_names, mode, interval_ms=interval_ms)

    def wait_ready(self, timeout=60.0):
        """Wait until every running node of the fleet is ready."""
        return wait_for(lambda: all(n['ready'] for n in self.fleet()['nodes'] if n['status'] == 'Running'),
                        timeout, what='all running nodes ready')

    # ------------------------------------------------------------------ Prometheus
    def _prom_get(self, path, params=None, timeout=10.0):
        if not self.prometheus_url:
            raise SimStackError('Prometheus is not running in this stack')
        url = self.prometheus_url + path + ('?' + urllib.parse.urlencode(params) if params else '')
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())

    def query(self, promql):
        """Instant query; returns the list of results ({'metric': ..., 'value': [ts, 'v']}) as a QueryResult."""
        doc = self._prom_get('/api/v1/query', {'query': promql})
        if doc.get('status') != 'success':
            raise SimStackError('query %r failed: %s' % (promql, doc))
        return QueryResult(doc['data']['result'])

    def query_value(self, promql, default=None):
        """The single value of a scalar-like query (first result), as float."""
        result = self.query(promql)
        if not result:
            return default
        return float(result[0]['value'][1])

    def wait_query(self, promql, predicate, timeout=30.0, what=None):
        """Poll a query until ``predicate(results)`` holds; returns the results (a QueryResult)."""
        box = {}

        def check():
            box['r'] = self.query(promql)
            return predicate(box['r'])

        wait_for(check, timeout, 0.3, what=what or 'query %s' % promql)
        return box['r']

    def targets(self):
        return self._prom_get('/api/v1/targets', {'state': 'active'})['data']['activeTargets']

    def wait_targets_up(self, timeout=60.0):
        """Wait until Prometheus scraped every node and the simulator successfully."""
        expected = self.hosts * self.nodes_per_host + 1

        def all_up():
            targets = self.targets()
            return len(targets) >= expected and all(t['health'] == 'up' for t in targets)

        return wait_for(all_up, timeout, 0.3 if expected < 2000 else 5.0, what='%d Prometheus targets up' % expected)
