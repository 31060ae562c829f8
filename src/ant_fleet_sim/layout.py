"""The state directory: paths, the files the simulator writes, ports and processes.

See docs/architecture.md ("The simulated fleet") for the layout this implements.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from dataclasses import asdict
from pathlib import Path

import yaml

from .model import SimConfig


class StateDir:
    def __init__(self, path):
        self.root = Path(path).absolute()

    # paths
    @property
    def config_file(self):
        return self.root / 'config.json'

    @property
    def sim_file(self):
        return self.root / 'sim.json'

    @property
    def log_file(self):
        return self.root / 'sim.log'

    @property
    def file_sd(self):
        return self.root / 'file_sd' / 'nodes.json'

    @property
    def inventory(self):
        return self.root / 'inventory' / 'hosts.yml'

    @property
    def prometheus_dir(self):
        return self.root / 'prometheus'

    def host_dir(self, host):
        return self.root / 'hosts' / host

    def antctl(self, host):
        return self.host_dir(host) / 'bin' / 'antctl'

    def registry(self, host):
        return self.host_dir(host) / 'node_registry.json'

    def systemctl(self, host):
        return self.host_dir(host) / 'bin' / 'systemctl'

    def unit_dir(self, host):
        return self.host_dir(host) / 'systemd' / 'system'

    @property
    def ledger(self):
        """The migration ledger kept beside the fleet (ansible.cfg's default ``.state/ledger.sqlite3``)."""
        return self.root / 'ledger.sqlite3'

    def last_fleet_leftovers(self):
        """What a fleet that ran here before leaves behind for the next one: its hosts (units, drop-ins,
        registries), the ledger beside it, Alertmanager's data (silences, what it notified) and
        Prometheus' series. ``up --fresh`` removes them."""
        paths = [self.root / 'hosts', self.root / 'alertmanager' / 'data', self.prometheus_dir / 'data']
        paths += [self.root / (self.ledger.name + suffix) for suffix in ('', '-wal', '-shm', '-journal')]
        return [p for p in paths if p.exists()]

    # config and runtime info
    def write_config(self, config):
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.config_file, json.dumps(asdict(config), indent=1) + '\n')

    def read_config(self):
        return SimConfig(**json.loads(self.config_file.read_text()))

    def read_sim(self):
        try:
            return json.loads(self.sim_file.read_text())
        except (OSError, ValueError):
            return None

    def running_pid(self):
        """The daemon's pid when it is alive (checked against its command line), else None."""
        info = self.read_sim()
        if not info or not info.get('pid'):
            return None
        pid = int(info['pid'])
        return pid if process_matches(pid, 'ant_fleet_sim', str(self.root)) else None

    def api_url(self):
        info = self.read_sim()
        return info.get('api_url') if info else None


def atomic_write(path, text, mode=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name('.%s.%d.tmp' % (path.name, os.getpid()))
    tmp.write_text(text)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


def process_matches(pid, *needles):
    """True when ``pid`` is alive and its command line contains every needle."""
    try:
        cmdline = Path('/proc/%d/cmdline' % pid).read_bytes().replace(b'\0', b' ').decode('utf-8', 'replace')
    except OSError:
        return False
    try:
        state = Path('/proc/%d/stat' % pid).read_text().rsplit(')', 1)[1].split()[0]
        if state == 'Z':
            return False
    except (OSError, IndexError):
        pass
    return all(n in cmdline for n in needles)


def process_start_time(pid):
    """The start time of a process in clock ticks since boot (tells a pid from its reuse), or None."""
    try:
        return int(Path('/proc/%d/stat' % pid).read_text().rsplit(')', 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def owner_alive(owner):
    """``owner`` is 'pid:starttime' as written by control.launch."""
    pid, _, start = owner.partition(':')
    now = process_start_time(int(pid))
    return now is not None and (start in ('', 'None') or str(now) == start)


def terminate(pid, needles, timeout=15.0):
    """SIGTERM a process we started (verified by its command line), SIGKILL after ``timeout``.

    Children of this process are reaped (no zombie left behind).
    """
    if not process_matches(pid, *needles):
        _reap(pid)
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not process_matches(pid, *needles):
            _reap(pid)
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    for _ in range(100):
        _reap(pid)
        if not process_matches(pid, *needles):
            break
        time.sleep(0.05)
    _reap(pid)
    return True


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


# ------------------------------------------------------------------ ports
def port_in_use(port, host='127.0.0.1'):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_clashes(ports):
    return [p for p in ports if port_in_use(p)]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def free_port_range(count, low=20000, high=32000, attempts=200):
    """A random run of ``count`` free ports below the ephemeral range (so outgoing connections
    never sit on them), for tests that run beside each other and beside the demo."""
    import random
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(low, high - count)
        if not port_clashes(range(base, base + count)):
            return base
    raise RuntimeError('no run of %d free ports found between %d and %d' % (count, low, high))


# ------------------------------------------------------------------ generated files
def python_interpreter():
    """The venv interpreter (not resolved: resolving a venv's symlink would leave the venv)."""
    return os.path.abspath(sys.executable)


def write_antctl_wrappers(state, fleet):
    py = python_interpreter()
    for host in fleet.hosts:
        text = ('#!/bin/sh\n'
                '# antctl-compatible command of simulated host %s (ant-fleet-sim)\n'
                'exec "%s" -m ant_fleet_sim.antctl --host-dir "%s" "$@"\n') % (host, py, state.host_dir(host))
        atomic_write(state.antctl(host), text, mode=0o755)
        text = ('#!/bin/sh\n'
                '# systemctl stand-in of simulated host %s (ant-fleet-sim)\n'
                'exec "%s" -m ant_fleet_sim.systemctl --host-dir "%s" "$@"\n') % (host, py, state.host_dir(host))
        atomic_write(state.systemctl(host), text, mode=0o755)
        state.unit_dir(host).mkdir(parents=True, exist_ok=True)
        for sub in ('data', 'logs'):
            (state.host_dir(host) / sub).mkdir(parents=True, exist_ok=True)


def write_file_sd(state, fleet):
    targets = [{
        'targets': ['127.0.0.1:%d' % n.metrics_port],
        'labels': {'host': n.host, 'service_name': n.service_name, 'peer_id': n.peer_id},
    } for n in fleet.nodes]
    atomic_write(state.file_sd, json.dumps(targets, indent=1) + '\n')


def inventory_data(state, fleet, api_url):
    py = python_interpreter()
    hosts = {}
    for host in fleet.hosts:
        hosts[host] = {
            'ansible_connection': 'local',
            'ansible_python_interpreter': py,
            'ant_antctl_path': str(state.antctl(host)),
            'ant_node_registry_path': str(state.registry(host)),
            'ant_systemd_unit_dir': str(state.unit_dir(host)),
            'ant_systemctl_path': str(state.systemctl(host)),
            # Local connection as the user who runs the simulator: nothing to become.
            'migration_become': False,
        }
    return {'all': {'children': {'fleet': {
        'hosts': hosts,
        'vars': {'ant_sim_api_url': api_url, 'ant_sim_state_dir': str(state.root)},
    }}}}


def write_inventory(state, fleet, api_url):
    text = ('# Generated by ant-fleet-sim up: the simulated fleet (%d hosts x %d nodes).\n'
            % (len(fleet.hosts), fleet.config.nodes_per_host))
    text += yaml.safe_dump(inventory_data(state, fleet, api_url), sort_keys=False, default_flow_style=False)
    atomic_write(state.inventory, text)


def write_registry(state, fleet, host, env_pairs=None):
    records = [fleet.registry_record(n, str(state.root)) for n in fleet.by_host[host] if fleet.in_registry(n)]
    data = {
        'daemon': None,
        'environment_variables': env_pairs or None,
        'nat_status': None,
        'nodes': records,
        'save_path': str(state.registry(host)),
    }
    atomic_write(state.registry(host), json.dumps(data, indent=2) + '\n')
