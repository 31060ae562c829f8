"""The simulator daemon: one asyncio process that plays every node of the fleet.

Each node listens on its own loopback metrics port; the control API (fleet view, antctl
operations, faults, client reads, the simulator's own /metrics) listens on ``api_port``.
Run with ``python -m ant_fleet_sim.daemon --state-dir DIR`` (``ant-fleet-sim up`` does it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time

from . import layout
from . import systemd as sd
from .faults import FaultError
from .httpserve import HTTPProtocol, Response
from .metrics import CONTENT_TYPE, render, render_metadata, render_sim_metrics, without
from .model import MODE_ENV, AntctlError, Fleet, mode_from_env

HOST_OP = re.compile(r'^/api/hosts/([^/]+)/(status|start|stop|upgrade|systemctl)$')
FAULT_ID = re.compile(r'^/api/faults/([^/]+)$')


def log(message):
    sys.stdout.write('%s %s\n' % (time.strftime('%Y-%m-%dT%H:%M:%S'), message))
    sys.stdout.flush()


class NodeEndpoint:
    """The metrics and RPC listeners of one node, plus their open connections (dropped when it stops).

    The RPC listener gets a free loopback port the first time it opens and keeps it (reported as the
    node's ``rpc_socket_addr``; a real host uses 13000 + i).
    """

    __slots__ = ('node', 'server', 'connections', 'opening', 'cache_version', 'cache', 'rpc_server', 'rpc_bound')

    def __init__(self, node):
        self.node = node
        self.server = None
        self.rpc_server = None
        self.rpc_bound = False
        self.connections = set()
        self.opening = False
        self.cache_version = -1
        self.cache = None


class SimDaemon:
    def __init__(self, state_dir, config, owner=None):
        self.owner = owner
        self.state = layout.StateDir(state_dir)
        self.config = config
        self.fleet = Fleet(config)
        self.endpoints = [NodeEndpoint(n) for n in self.fleet.nodes]
        self.api_server = None
        self.stop_event = None
        self.registry_sigs = {}
        self.api_url = 'http://127.0.0.1:%d' % config.api_port
        self.scrapes = 0
        self._events_logged = 0
        # The registry-wide environment of each host (antctl add --env; replaced by upgrade --env),
        # and the environment systemd loaded per service at its last daemon-reload.
        base_env = [['ANT_LOG', 'ant_node=info']]
        if config.initial_mode != 'libp2p_only':
            base_env.append([MODE_ENV, config.initial_mode])
        self.host_env = {h: [list(p) for p in base_env] for h in self.fleet.hosts}
        self.loaded_env = {}

    # ------------------------------------------------------------------ lifecycle
    async def run(self):
        loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        started = time.monotonic()
        try:
            self.api_server = await loop.create_server(
                lambda: HTTPProtocol(self.handle_api), '127.0.0.1', self.config.api_port)
        except OSError as exc:
            log('ERROR: cannot listen on API port %d: %s (port clash?)' % (self.config.api_port, exc))
            return 2
        failed = await self.sync_listeners(initial=True)
        if failed:
            log('ERROR: cannot listen on metrics port(s) %s (port clash?)' % ', '.join(map(str, failed[:10])))
            self.api_server.close()
            return 2
        layout.write_antctl_wrappers(self.state, self.fleet)
        self.boot_systemd()
        layout.write_file_sd(self.state, self.fleet)
        layout.write_inventory(self.state, self.fleet, self.api_url)
        self.write_registries(force=True)
        self.write_sim_file('running')
        log('simulated fleet up: %d hosts x %d nodes, metrics ports %d-%d, API %s (%.2f s)' % (
            self.config.hosts, self.config.nodes_per_host, self.config.base_port,
            self.config.base_port + len(self.fleet.nodes) - 1, self.api_url, time.monotonic() - started))
        ticker = asyncio.ensure_future(self.tick_loop())
        await self.stop_event.wait()
        ticker.cancel()
        log('stopping')
        self.api_server.close()
        for ep in self.endpoints:
            self._close_endpoint(ep)
        self.write_sim_file('stopped', running=False)
        return 0

    def boot_systemd(self):
        """Install every node's unit (keeping drop-ins left in the state directory) and load them, as a
        host's systemd does at boot; the nodes run what was loaded."""
        root = str(self.state.root)
        for host in self.fleet.hosts:
            host_dir = self.state.host_dir(host)
            for node in self.fleet.by_host[host]:
                sd.write_unit(host_dir, self.fleet.registry_record(node, root), self.host_env[host])
            self.daemon_reload(host)
            for node in self.fleet.by_host[host]:
                env = self.loaded_env[node.ref]
                try:
                    node.mode = mode_from_env(env)
                    node.stable_mode = node.mode
                    node.env = dict(env)
                except AntctlError as exc:
                    log('WARNING: %s keeps %s: %s' % (node.ref, node.mode, exc))
        self.fleet.version += 1
        self.fleet.refresh()

    def daemon_reload(self, host):
        host_dir = self.state.host_dir(host)
        for node in self.fleet.by_host[host]:
            env = sd.effective_env(host_dir, node.service_name)
            self.loaded_env[node.ref] = env if env is not None else {}

    def write_sim_file(self, status, running=True):
        cfg = self.config
        layout.atomic_write(self.state.sim_file, json.dumps({
            'status': status,
            'pid': os.getpid() if running else None,
            'api_url': self.api_url,
            'api_port': cfg.api_port,
            'hosts': cfg.hosts,
            'nodes_per_host': cfg.nodes_per_host,
            'total_nodes': len(self.fleet.nodes),
            'base_port': cfg.base_port,
            'state_dir': str(self.state.root),
            'inventory': str(self.state.inventory),
            'file_sd': str(self.state.file_sd),
            'started_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        }, indent=1) + '\n')

    async def tick_loop(self):
        interval = self.config.tick
        next_at = time.monotonic()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if self.owner and self.fleet.tick_no % 4 == 0 and not layout.owner_alive(self.owner):
                log('the process that started this fleet (%s) is gone: stopping it and its Prometheus' % self.owner)
                from . import prometheus as prom
                prom.stop(self.state)
                self.stop_event.set()
                return
            try:
                self.fleet.tick()
                self.fleet.drain_changed()
                await self.sync_listeners()
                self.write_registries()
                self._log_events()
            except Exception as exc:  # keep the fleet alive; the log says what broke
                log('ERROR in tick: %r' % exc)

    def _log_events(self):
        events = self.fleet.events
        for _, text in events[self._events_logged:]:
            log(text)
        self._events_logged = len(events)
        if len(events) > 10000:
            del events[:5000]
            self._events_logged = len(events)

    # ------------------------------------------------------------------ listeners
    async def sync_listeners(self, initial=False, nodes=None):
        """Open the ports of serving nodes, close those of stopped / restarting nodes.

        ``nodes``: only these nodes' ports (what an incremental refresh reported changed);
        None checks every port.
        """
        loop = asyncio.get_running_loop()
        now = self.fleet.clock()
        to_open = []
        endpoints = self.endpoints if nodes is None else [self.endpoints[n.index] for n in nodes]
        for ep in endpoints:
            want = self.fleet.is_serving(ep.node, now)
            if want and ep.server is None and not ep.opening:
                to_open.append(ep)
            elif not want and ep.server is not None:
                self._close_endpoint(ep)
        failed = []
        for ep in to_open:
            ep.opening = True
            try:
                ep.server = await loop.create_server(
                    lambda ep=ep: HTTPProtocol(lambda req, ep=ep: self.handle_node(ep, req), ep.connections),
                    '127.0.0.1', ep.node.metrics_port, backlog=64)
            except OSError as exc:
                failed.append(ep.node.metrics_port)
                if not initial:
                    log('ERROR: cannot reopen metrics port %d of %s: %s' % (ep.node.metrics_port, ep.node.ref, exc))
                ep.opening = False
                continue
            try:
                await self._open_rpc(ep)
            finally:
                ep.opening = False
        return failed

    async def _open_rpc(self, ep):
        loop = asyncio.get_running_loop()

        def factory(ep=ep):
            return HTTPProtocol(lambda req, ep=ep: self.handle_rpc(ep, req), ep.connections)

        port = ep.node.rpc_port if ep.rpc_bound else 0
        try:
            ep.rpc_server = await loop.create_server(factory, '127.0.0.1', port, backlog=16)
        except OSError as exc:
            log('WARNING: RPC port %d of %s taken (%s): moving it' % (port, ep.node.ref, exc))
            ep.rpc_server = await loop.create_server(factory, '127.0.0.1', 0, backlog=16)
        ep.node.rpc_port = ep.rpc_server.sockets[0].getsockname()[1]
        ep.rpc_bound = True

    def _close_endpoint(self, ep):
        if ep.server is not None:
            ep.server.close()
            ep.server = None
        if ep.rpc_server is not None:
            ep.rpc_server.close()
            ep.rpc_server = None
        for conn in list(ep.connections):
            conn.drop()
        ep.connections.clear()

    def _refresh_now(self):
        """Bring the fleet up to now; the listeners follow (ports opening or closing) shortly after."""
        self.fleet.refresh(changed=())
        self.fleet.version += 1
        asyncio.ensure_future(self.sync_listeners(nodes=self.fleet.drain_changed()))

    def schedule_refresh(self, delay):
        asyncio.get_running_loop().call_later(max(0.0, delay) + 0.02, self._refresh_now)

    def write_registries(self, force=False, hosts=None):
        """Rewrite the node_registry.json of the hosts whose nodes changed (``hosts``: only these).

        Each tick checks every host; an antctl operation writes its host once when it ends (the
        registry is what antctl reads while the simulator is down, so within a tick is soon enough).
        """
        for host in self.fleet.hosts if hosts is None else hosts:
            sig = tuple((n.status, n.mode, n.version, n.pid, n.net.connected if n.net else 0)
                        for n in self.fleet.by_host[host])
            if force or self.registry_sigs.get(host) != sig:
                layout.write_registry(self.state, self.fleet, host, self.host_env[host])
                self.registry_sigs[host] = sig

    # ------------------------------------------------------------------ node endpoints
    def handle_node(self, ep, request):
        if request.path not in ('/metrics', '/metrics/', '/metadata', '/metadata/'):
            return Response(404, b'not found; try /metrics or /metadata\n')
        fleet = self.fleet
        fault = fleet.unresponsive_fault(ep.node)
        if fault is not None:
            if fault.get('delay_s') is None:
                return None
            return self._late(ep, fault['delay_s'], request.path)
        if request.path.startswith('/metadata'):
            figures = fleet.node_metrics(ep.node)
            if figures is None:
                return Response(503, b'node is not running\n')
            body = without(render_metadata(figures).decode('ascii'), self.config.without_metrics).encode('ascii')
            return Response(200, body, 'application/openmetrics-text; version=1.0.0; charset=utf-8')
        return self._metrics(ep)

    def handle_rpc(self, ep, request):
        """The node's RPC (the parts antctl's refresh asks: node_info, network_info), as JSON over HTTP.

        A hung node (``unresponsive`` with rpc, or ``rpc_unresponsive``) accepts and never answers.
        """
        node, fleet = ep.node, self.fleet
        if fleet.rpc_unresponsive(node) is not None:
            return None
        if request.path == '/node_info':
            return Response.json(200, {'peer_id': node.peer_id, 'pid': node.pid, 'version': node.version,
                                       'uptime_s': max(0, int(fleet.clock() - node.started_at))})
        if request.path == '/network_info':
            fleet.full_refresh(node)  # what antctl records from it: the connected peers now
            return Response.json(200, {'connected_peers': node.registry_peers or [],
                                       'listeners': ['/ip4/127.0.0.1/udp/%d/quic-v1' % node.node_port]})
        return Response.json(404, {'error': 'no RPC %s' % request.path})

    def _metrics(self, ep):
        fleet = self.fleet
        if fleet.timer_due():
            # A real node's gauges are live (ant-node/src/networking/driver/event/swarm.rs sets
            # connected_peers on every connection event): a node that became ready or crashed since
            # the last tick shows it in this scrape, not at the next tick.
            self._refresh_now()
        if ep.cache_version != fleet.version:
            figures = fleet.node_metrics(ep.node)
            if figures is None:
                return Response(503, b'node is not running\n')
            ep.cache = render(figures, self.config.without_metrics)
            ep.cache_version = fleet.version
        self.scrapes += 1
        return Response(200, ep.cache, CONTENT_TYPE)

    async def _wait_ready(self, node, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.fleet.refresh(changed=())
            self.fleet.version += 1
            await self.sync_listeners(nodes=self.fleet.drain_changed())
            if self.fleet.is_ready(node):
                return True
            if node.status != 'Running':
                return False
            await asyncio.sleep(0.1)
        return False

    async def _late(self, ep, delay, path='/metrics'):
        await asyncio.sleep(delay)
        if path.startswith('/metadata'):
            figures = self.fleet.node_metrics(ep.node)
            return Response(200, render_metadata(figures), CONTENT_TYPE) if figures else Response(503, b'stopped\n')
        return self._metrics(ep)

    # ------------------------------------------------------------------ control API
    def handle_api(self, request):
        try:
            return self._route(request)
        except (FaultError, AntctlError) as exc:
            return Response.json(400, {'error': str(exc)})
        except ValueError as exc:
            return Response.json(400, {'error': 'bad request: %s' % exc})

    def _route(self, request):
        method, path = request.method, request.path.rstrip('/') or '/'
        fleet = self.fleet
        if path == '/metrics' and method == 'GET':
            return Response(200, render_sim_metrics(fleet), CONTENT_TYPE)
        if path == '/api/health':
            return Response.json(200, {'status': 'ok', 'pid': os.getpid(), 'nodes': len(fleet.nodes),
                                       'listening': sum(1 for ep in self.endpoints if ep.server is not None),
                                       'scrapes': self.scrapes})
        if path == '/api/fleet' and method == 'GET':
            return Response.json(200, fleet.fleet_view(str(self.state.root)))
        if path == '/api/hosts' and method == 'GET':
            return Response.json(200, {'hosts': fleet.hosts})
        if path == '/api/release_repo' and method == 'GET':
            # antctl upgrade fetches the release every time (even --force with the running version).
            return Response.json(200, {'online': bool(self.config.release_repo_online)})
        if path == '/api/client_reads' and method == 'GET':
            return Response.json(200, fleet.client_reads())
        if path == '/api/faults':
            if method == 'GET':
                return Response.json(200, {'faults': list(fleet.faults.values())})
            if method == 'POST':
                fault = fleet.add_fault(request.json())
                self._after_change()
                return Response.json(201, fault)
            if method == 'DELETE':
                removed = fleet.clear_faults()
                self._after_change()
                return Response.json(200, {'cleared': len(removed), 'faults': []})
        match = FAULT_ID.match(path)
        if match and method == 'DELETE':
            fault = fleet.remove_fault(match.group(1))
            self._after_change()
            return Response.json(200, {'removed': fault})
        match = HOST_OP.match(path)
        if match:
            host, op = match.groups()
            if host not in fleet.by_host:
                return Response.json(404, {'error': 'unknown host %r' % host})
            if op == 'status' and method == 'GET':
                return Response.json(200, self.status_doc(host))
            if method == 'POST':
                body = request.json()
                if not isinstance(body, dict):
                    raise AntctlError('the request body must be a JSON object')
                if op == 'systemctl':
                    return Response.json(200, self.systemctl(host, body))
                return self.host_operation(host, op, body)
        if path == '/api/shutdown' and method == 'POST':
            asyncio.get_running_loop().call_later(0.05, self.stop_event.set)
            return Response.json(200, {'status': 'stopping'})
        return Response.json(404, {'error': 'no route %s %s' % (method, request.path)})

    def _after_change(self, nodes=None):
        """After faults (every node may have changed) or an antctl step on ``nodes``."""
        changed = self.fleet.drain_changed()
        if nodes is None or changed is None:
            changed = None
        else:
            changed = list({n.index: n for n in list(nodes) + changed}.values())
        asyncio.ensure_future(self.sync_listeners(nodes=changed))
        if nodes is None:
            self.write_registries()
        self._log_events()

    def status_doc(self, host):
        root = str(self.state.root)
        return {'nodes': [self.fleet.registry_record(n, root) for n in self.fleet.by_host[host]],
                'daemon': None}

    # ------------------------------------------------------------------ systemd stand-in
    def systemctl(self, host, body):
        """One systemctl call: {'verb', 'units', 'properties'} -> {'rc', 'stdout', 'stderr'}."""
        verb, units = body.get('verb'), [str(u) for u in body.get('units') or []]
        fleet = self.fleet
        if verb == 'daemon-reload':
            self.daemon_reload(host)
            return {'rc': 0}
        by_name = {n.service_name: n for n in fleet.by_host[host]}
        # Like systemctl, a unit that cannot be found or fails does not stop the others of the call: each
        # gets its own message, and the exit code is the first failure's (1 once a job failed).
        out, rc, errors = [], 0, []
        for unit in units:
            node = by_name.get(unit)
            if node is None and verb not in ('is-active', 'show'):
                errors.append('Failed to %s %s.service: Unit %s.service not found.\n' % (verb, unit, unit))
                rc = rc or 5
                continue
            if verb == 'is-active':
                active = node is not None and node.status == 'Running'
                out.append('active' if active else 'inactive')
                rc = rc or (0 if active else 3)
            elif verb == 'show':
                out.append(self._show(host, unit, node, body.get('properties') or []))
            elif verb == 'stop':
                if node.status == 'Running':
                    fleet.stop_node(node)
                    fleet.events.append((fleet.clock(), 'systemctl stop %s' % node.ref))
            elif verb in ('start', 'restart'):
                if verb == 'start' and node.status == 'Running':
                    continue
                env = self.loaded_env.get(node.ref, {})
                try:
                    fleet.start_node(node, env=env)
                except AntctlError as exc:
                    # The node exits at once on a bad ANT_TRANSPORT_MODE: the unit fails.
                    fleet.stop_node(node)
                    node.last_crash_reason = str(exc)
                    errors.append('Job for %s.service failed because the control process exited '
                                  'with error code.\nSee "systemctl status %s.service" and "journalctl -xeu '
                                  '%s.service" for details.\n' % (unit, unit, unit))
                    rc = 1
                    continue
                fleet.events.append((fleet.clock(), 'systemctl %s %s (%s)' % (verb, node.ref, node.mode)))
                self.schedule_refresh(self.config.restart_time)
        if verb in ('start', 'stop', 'restart'):
            # Bookkeeping of the units named only (not a sweep of the fleet): their ports, their host's registry.
            self._after_change(nodes=[by_name[u] for u in units if by_name.get(u) is not None])
            self.write_registries(hosts=[host])
        return {'rc': rc, 'stdout': ''.join(line + '\n' for line in '\n'.join(out).splitlines() if out)
                + ('' if verb != 'show' else ''), 'stderr': ''.join(errors)}

    def _show(self, host, unit, node, properties):
        host_dir = self.state.host_dir(host)
        if node is None:
            values = {'Id': '%s.service' % unit, 'LoadState': 'not-found', 'ActiveState': 'inactive',
                      'SubState': 'dead', 'MainPID': '0'}
        else:
            loaded = self.loaded_env.get(node.ref, {})
            on_disk = sd.effective_env(host_dir, unit) or {}
            running = node.status == 'Running'
            values = {
                'Id': '%s.service' % unit, 'LoadState': 'loaded',
                'ActiveState': 'active' if running else 'inactive',
                'SubState': 'running' if running else 'dead',
                'MainPID': str(node.pid or 0) if running else '0',
                'Environment': ' '.join('%s=%s' % kv for kv in loaded.items()),
                'FragmentPath': str(sd.unit_path(host_dir, unit)),
                'DropInPaths': ' '.join(str(p) for p in sd.dropin_paths(host_dir, unit)),
                'NeedDaemonReload': 'yes' if on_disk != loaded else 'no',
            }
        keys = properties or list(values)
        return '\n'.join('%s=%s' % (k, values.get(k, '')) for k in keys)

    # ------------------------------------------------------------------ antctl
    def host_operation(self, host, op, body):
        """antctl start / stop / upgrade: validate everything first, then act service by service."""
        fleet = self.fleet
        names = body.get('service_names') or []
        peer_ids = body.get('peer_ids') or []
        interval = float(body.get('interval_ms') or 0) / 1000.0
        if interval < 0:
            raise AntctlError('--interval must not be negative')
        nodes = fleet.select(host, names, peer_ids)
        env = None
        if op == 'upgrade':
            pairs = body.get('env') or []
            if isinstance(pairs, dict):
                pairs = list(pairs.items())
            if pairs:
                fleet.parse_env(pairs)
                env = [[str(k), str(v)] for k, v in pairs]
        if env is not None:
            self.host_env[host] = env  # --env replaces the registry-wide environment, every variable of it
        return self._run_operation(host, op, nodes, env, body, interval)

    async def _run_operation(self, host, op, nodes, env, body, interval):
        fleet = self.fleet
        results = []
        for i, node in enumerate(nodes):
            if op == 'start':
                if node.status == 'Running':
                    results.append({'service_name': node.service_name, 'result': 'already running'})
                    continue
                fleet.start_node(node, env=self.loaded_env.get(node.ref))
                self.schedule_refresh(self.config.restart_time)
                results.append({'service_name': node.service_name, 'result': 'started'})
                # antctl waits RPC_START_UP_DELAY_MS, then asks the node over RPC (ant-node-manager/src/lib.rs).
                await asyncio.sleep(self.config.rpc_start_delay)
                if fleet.rpc_unresponsive(node) is not None:  # antctl's query of the started node
                    results[-1]['error'] = "Could not connect to RPC endpoint '127.0.0.1:%d'" % node.rpc_port
                else:
                    fleet.full_refresh(node)
            elif op == 'stop':
                if node.status != 'Running':
                    results.append({'service_name': node.service_name, 'result': 'already stopped'})
                    continue
                fleet.stop_node(node)
                results.append({'service_name': node.service_name, 'result': 'stopped'})
            else:
                old_mode, old_version = node.mode, node.version
                # The service is uninstalled and installed again: the unit is rewritten with the registry-wide
                # environment (drop-ins are not antctl's and stay); `systemctl enable` reloads systemd.
                root = str(self.state.root)
                sd.write_unit(self.state.host_dir(host), fleet.registry_record(node, root), self.host_env[host])
                self.daemon_reload(host)
                message = fleet.upgrade_node(node, self.loaded_env[node.ref], version=body.get('version'),
                                             force=bool(body.get('force')), start=not body.get('do_not_start'))
                if message == 'upgraded and restarted':
                    self.schedule_refresh(self.config.restart_time)
                results.append({'service_name': node.service_name, 'result': message,
                                'old_version': old_version, 'new_version': node.version,
                                'old_mode': old_mode, 'new_mode': node.mode})
                if message.startswith('upgraded'):
                    fleet.events.append((fleet.clock(), 'upgrade %s: %s -> %s' % (node.ref, old_mode, node.mode)))
            self._after_change(nodes=[node])
            if (op != 'stop' and not interval and body.get('connection_timeout') and node.status == 'Running'
                    and results[-1]['result'] in ('started', 'upgraded and restarted')):
                # antctl without --interval: wait until the node connected (> 5 peers) or time out.
                if not await self._wait_ready(node, float(body['connection_timeout'])):
                    results[-1]['error'] = ('the node did not connect to the network within %s seconds'
                                            % body['connection_timeout'])
            elif interval and i < len(nodes) - 1:
                await asyncio.sleep(interval)
        self.write_registries(force=True, hosts=[host])
        return Response.json(200, {'host': host, 'operation': op, 'results': results, **self.status_doc(host)})


def main(argv=None):
    parser = argparse.ArgumentParser(prog='ant_fleet_sim.daemon')
    parser.add_argument('--state-dir', required=True)
    parser.add_argument('--owner', help='pid:starttime of a process whose death stops this fleet')
    args = parser.parse_args(argv)
    state = layout.StateDir(args.state_dir)
    config = state.read_config()
    daemon = SimDaemon(state.root, config, owner=args.owner)
    return asyncio.run(daemon.run())


if __name__ == '__main__':
    sys.exit(main())
