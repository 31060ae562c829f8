"""Start / stop the simulator daemon and talk to its control API (used by the CLI and SimStack)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from . import layout
from . import prometheus as prom


class SimError(RuntimeError):
    """The simulator refused a request or could not start; ``exit_code`` is what the CLI returns."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


class ApiClient:
    def __init__(self, api_url, timeout=30.0):
        self.api_url = api_url.rstrip('/')
        self.timeout = timeout

    def request(self, method, path, body=None, timeout=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api_url + path, data=data, method=method,
                                     headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                return json.loads(resp.read() or b'{}')
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b'{}')
            except ValueError:
                payload = {}
            raise SimError(payload.get('error') or str(exc), exit_code=2 if exc.code in (400, 404) else 1) from None
        except (urllib.error.URLError, OSError) as exc:
            raise SimError('cannot reach the simulator at %s: %s' % (self.api_url, exc)) from None

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def post(self, path, body=None, **kw):
        return self.request('POST', path, body if body is not None else {}, **kw)

    def delete(self, path, **kw):
        return self.request('DELETE', path, **kw)


def client_for(state_dir):
    state = layout.StateDir(state_dir)
    if not state.running_pid():
        raise SimError('no simulator is running under %s (start it with: ant-fleet-sim up --state-dir %s)'
                       % (state.root, state.root))
    return ApiClient(state.api_url())


def check_ports(config):
    ports = [config.api_port] + list(range(config.base_port, config.base_port + config.hosts * config.nodes_per_host))
    clashes = layout.port_clashes(ports)
    if clashes:
        shown = ', '.join(map(str, clashes[:10])) + (' …' if len(clashes) > 10 else '')
        raise SimError('port clash: %d port(s) already in use: %s (API port %d, metrics ports %d-%d); '
                       'pick others with --base-port / --api-port or stop what uses them'
                       % (len(clashes), shown, config.api_port, config.base_port, ports[-1]), exit_code=2)


def launch(state_dir, config, timeout=120.0, owner_pid=None, fresh=False):
    """Start the daemon in the background (detached) and wait until every node listens.

    With ``owner_pid`` (SimStack passes its own pid) the daemon stops itself and the Prometheus
    under the same directory when that process dies, so a killed test run leaves nothing behind.
    ``fresh``: remove what the last fleet under the directory left behind first (drop-ins, the
    ledger beside it, Alertmanager's and Prometheus' data): the new fleet starts clean.
    """
    state = layout.StateDir(state_dir)
    try:
        config.validate()
    except ValueError as exc:
        raise SimError(str(exc), exit_code=2) from None
    pid = state.running_pid()
    if pid:
        raise SimError('a simulator already runs under %s (pid %d); stop it first with: ant-fleet-sim down '
                       '--state-dir %s' % (state.root, pid, state.root), exit_code=2)
    check_ports(config)
    if fresh:
        if prom.running_pid(state) or prom.alertmanager_running_pid(state):
            raise SimError('Prometheus or Alertmanager still runs under %s; stop them first with: ant-fleet-sim down '
                           '--state-dir %s' % (state.root, state.root), exit_code=2)
        for path in state.last_fleet_leftovers():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    state.root.mkdir(parents=True, exist_ok=True)
    try:
        state.sim_file.unlink()
    except OSError:
        pass
    state.write_config(config)
    log = open(state.log_file, 'ab')
    argv = [layout.python_interpreter(), '-m', 'ant_fleet_sim.daemon', '--state-dir', str(state.root)]
    if owner_pid:
        argv += ['--owner', '%d:%s' % (owner_pid, layout.process_start_time(owner_pid))]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)
    log.close()
    deadline = time.monotonic() + timeout
    total = config.hosts * config.nodes_per_host
    client = ApiClient('http://127.0.0.1:%d' % config.api_port, timeout=5.0)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = state.log_file.read_text(errors='replace')[-2000:]
            raise SimError('the simulator exited with code %s; log %s:\n%s' % (proc.returncode, state.log_file, tail),
                           exit_code=2 if proc.returncode == 2 else 1)
        info = state.read_sim()
        if info and info.get('status') == 'running' and info.get('pid') == proc.pid:
            try:
                health = client.get('/api/health')
                if health.get('listening') == total:
                    return info
            except SimError:
                pass
        time.sleep(0.05)
    layout.terminate(proc.pid, ('ant_fleet_sim',))
    raise SimError('the simulator did not come up within %.0f s (log: %s)' % (timeout, state.log_file))


def run_foreground(state_dir, config):
    import asyncio

    from .daemon import SimDaemon
    try:
        config.validate()
    except ValueError as exc:
        raise SimError(str(exc), exit_code=2) from None
    check_ports(config)
    state = layout.StateDir(state_dir)
    state.write_config(config)
    return asyncio.run(SimDaemon(state.root, config).run())


def shutdown(state_dir, timeout=20.0):
    """Stop Alertmanager, Prometheus and the simulator under ``state_dir``; returns what was stopped."""
    state = layout.StateDir(state_dir)
    stopped = []
    if prom.stop_alertmanager(state):
        stopped.append('alertmanager')
    if prom.stop(state):
        stopped.append('prometheus')
    pid = state.running_pid()
    if pid:
        try:
            ApiClient(state.api_url(), timeout=3.0).post('/api/shutdown')
        except SimError:
            pass
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and layout.process_matches(pid, 'ant_fleet_sim', str(state.root)):
            time.sleep(0.05)
        layout.terminate(pid, ('ant_fleet_sim', str(state.root)), timeout=timeout)
        stopped.append('simulator')
    return stopped

