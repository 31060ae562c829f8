"""The simulator daemon: asyncio processes that play every node of the fleet.

Each node listens on its own loopback metrics port; the control API (fleet view, antctl
operations, faults, client reads, the simulator's own /metrics) listens on ``api_port``.
Run with ``python -m ant_fleet_sim.daemon --state-dir DIR`` (``ant-fleet-sim up`` does it).

A large fleet is sharded (``SimConfig.shards``; docs/simulator.md, "Shards"): a process may hold
20,000 open files here, and a node needs three. The process started first (shard 0) holds the
control API, decides every operation and holds its own hosts' listeners; it starts one worker per
other shard (``--shard K``) and talks to it over the worker's stdin and stdout, one JSON object a
line. Every process models the whole fleet (``model.Fleet``): the workers replay the primary's
journal of operations, with their moments, before the primary answers the request that made them,
so the network model, close groups, client reads, faults and partitions span the fleet while each
process serves its own nodes. A worker whose stdin closes (the primary stopped or died) stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

from . import layout, node_manager
from . import systemd as sd
from .faults import FaultError
from .httpserve import HTTPProtocol, Response
from .metrics import CONTENT_TYPE, content_type, render, render_metadata, render_sim_metrics, without
from .model import MODE_ENV, AntctlError, Fleet

HOST_OP = re.compile(r'^/api/hosts/([^/]+)/(status|start|stop|upgrade|systemctl|add|remove|reset)$')
FAULT_ID = re.compile(r'^/api/faults/([^/]+)$')


LOG = {'stream': sys.stdout, 'prefix': ''}
CHANNEL_LIMIT = 1 << 26     # one line of the shard channel (a boot journal of 10,000 environments)


def log(message):
    LOG['stream'].write('%s %s%s\n' % (time.strftime('%Y-%m-%dT%H:%M:%S'), LOG['prefix'], message))
    LOG['stream'].flush()


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


class Worker:
    """The primary's end of one shard worker: its process, the channel, the requests awaiting an answer."""

    def __init__(self, shard, proc):
        self.shard = shard
        self.proc = proc
        self.seq = 0
        self.pending = {}
        self.reader_task = None

    def send(self, message):
        """Send one command; returns the future of the worker's answer (its ``ack``)."""
        self.seq += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.seq] = future
        self.proc.stdin.write((json.dumps(dict(message, seq=self.seq)) + '\n').encode())
        return future

    def fail_pending(self, why):
        for future in self.pending.values():
            if not future.done():
                future.set_exception(RuntimeError(why))
        self.pending.clear()


class SimDaemon:
    def __init__(self, state_dir, config, owner=None, shard=0, epoch=None):
        self.owner = owner
        self.state = layout.StateDir(state_dir)
        self.config = config
        self.shard = shard
        self.shards = config.shard_count()
        self.primary = shard == 0
        # Every process starts its fleet from the same moment (the machine's monotonic clock is one
        # clock for all processes), so that the staggered uptimes are the same everywhere.
        self.epoch = time.monotonic() if epoch is None else epoch
        owned = config.shard_nodes(shard) if self.shards > 1 else None
        self.fleet = Fleet(config, epoch=self.epoch, owned=owned, primary=self.primary)
        if self.primary and self.shards > 1:
            self.fleet.journal = []
        self.endpoints = {n.index: NodeEndpoint(n) for n in self.fleet.owned}
        self.workers = []
        self.channel = None         # a worker's writer to the primary
        self.requests = {}          # a worker's requests to the primary awaiting the answer
        self._request_seq = 0
        self.api_server = None
        self.stop_event = None
        self.registry_sigs = {}
        self.api_url = 'http://127.0.0.1:%d' % config.api_port
        # This fleet's name among the fleets that ran under the directory (its Prometheus data is its own).
        self.fleet_id = '%s-%d' % (time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()), os.getpid())
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
        if not self.primary:
            return await self.run_worker()
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
        try:
            await self.start_workers()
            failed = await self.sync_listeners(initial=True)
            layout.write_antctl_wrappers(self.state, self.fleet)
            self.boot_systemd()
            await self.replicate()
            for answer in await asyncio.gather(*(w.send({'cmd': 'open'}) for w in self.workers)):
                failed += answer['failed']
                for index, port in answer['rpc_ports'].items():
                    self.fleet.nodes[int(index)].rpc_port = port
        except (OSError, RuntimeError) as exc:
            log('ERROR: a shard worker failed to start: %s' % exc)
            failed = None
        if failed is None or failed:
            if failed:
                log('ERROR: cannot listen on metrics port(s) %s (port clash?)' % ', '.join(map(str, failed[:10])))
            self.api_server.close()
            await self.stop_workers()
            return 2
        layout.write_file_sd(self.state, self.fleet)
        layout.write_inventory(self.state, self.fleet, self.api_url)
        self.write_registries(force=True)
        self.write_sim_file('running')
        log('simulated fleet up: %d hosts x %d nodes in %d shard process(es), metrics ports %d-%d, API %s (%.2f s)' % (
            self.config.hosts, self.config.nodes_per_host, self.shards, self.config.base_port,
            self.config.base_port + len(self.fleet.nodes) - 1, self.api_url, time.monotonic() - started))
        ticker = asyncio.ensure_future(self.tick_loop())
        await self.stop_event.wait()
        ticker.cancel()
        log('stopping')
        self.api_server.close()
        for ep in self.endpoints.values():
            self._close_endpoint(ep)
        await self.stop_workers()
        self.write_sim_file('stopped', running=False)
        return 0

    # ------------------------------------------------------------------ shards: the primary's side
    async def start_workers(self):
        """Start one worker process per other shard; they build their fleets while this one boots."""
        for shard in range(1, self.shards):
            proc = await asyncio.create_subprocess_exec(
                layout.python_interpreter(), '-m', 'ant_fleet_sim.daemon', '--state-dir', str(self.state.root),
                '--shard', str(shard), '--epoch', repr(self.epoch),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=CHANNEL_LIMIT)
            worker = Worker(shard, proc)
            worker.reader_task = asyncio.ensure_future(self._read_worker(worker))
            self.workers.append(worker)

    async def _read_worker(self, worker):
        """Answers and requests from one worker, until its stdout closes."""
        while True:
            line = await worker.proc.stdout.readline()
            if not line:
                break
            message = json.loads(line)
            if 'ack' in message:
                future = worker.pending.pop(message['ack'], None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif 'rpc_port' in message:
                index, port = message['rpc_port']
                node = self.fleet.nodes[index]
                node.rpc_port = port
                self.write_registries(force=True, hosts=[node.host])
            elif 'network_info' in message:
                # antctl's RPC refresh reached a node of that worker: antctl records the peers (the
                # registry lives here), and the node answers with them.
                node = self.fleet.nodes[message['network_info']]
                self.fleet.full_refresh(node)
                worker.proc.stdin.write((json.dumps({'re': message['req'], 'peers': node.registry_peers or []})
                                         + '\n').encode())
        worker.fail_pending('shard %d exited (code %s)' % (worker.shard, worker.proc.returncode))
        if not self.stop_event.is_set():
            log('ERROR: shard worker %d is gone; stopping the fleet' % worker.shard)
            self.stop_event.set()

    async def replicate(self):
        """Send the operations journaled since the last call to every worker; return once all applied them
        (a request's answer must not come before every shard shows its effect)."""
        journal = self.fleet.journal
        if not self.workers or not journal:
            return
        self.fleet.journal = []
        await asyncio.gather(*(w.send({'ops': journal}) for w in self.workers))

    async def stop_workers(self, timeout=15.0):
        for worker in self.workers:
            if worker.proc.stdin and not worker.proc.stdin.is_closing():
                worker.proc.stdin.close()
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.proc.wait(), timeout)
            except TimeoutError:
                worker.proc.kill()
                await worker.proc.wait()
            if worker.reader_task is not None:
                await asyncio.gather(worker.reader_task, return_exceptions=True)
        self.workers = []

    async def workers_health(self):
        answers = await asyncio.gather(*(w.send({'cmd': 'health'}) for w in self.workers))
        return sum(a['listening'] for a in answers), sum(a['scrapes'] for a in answers)

    # ------------------------------------------------------------------ shards: a worker's side
    async def run_worker(self):
        """Serve this shard's nodes; apply the primary's commands from stdin, answer on stdout."""
        LOG.update(stream=sys.stderr, prefix='[shard %d] ' % self.shard)
        loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        reader = asyncio.StreamReader(limit=CHANNEL_LIMIT)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout.buffer)
        self.channel = asyncio.StreamWriter(transport, protocol, reader, loop)
        commands = asyncio.ensure_future(self._read_primary(reader))
        stopping = asyncio.ensure_future(self.stop_event.wait())
        try:
            await asyncio.wait([commands, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (commands, stopping):
                task.cancel()
            for ep in self.endpoints.values():
                self._close_endpoint(ep)
        return 0

    async def _read_primary(self, reader):
        ticker = None
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return          # the primary closed the channel (stopping, or gone)
                message = json.loads(line)
                if 're' in message:
                    future = self.requests.pop(message['re'], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                answer = {'ack': message['seq']}
                if 'ops' in message:
                    await self.apply_journal(message['ops'])
                elif message.get('cmd') == 'open':
                    failed = await self.sync_listeners(initial=True)
                    answer.update(failed=failed, rpc_ports={i: ep.node.rpc_port for i, ep in self.endpoints.items()
                                                            if ep.rpc_bound})
                    ticker = ticker or asyncio.ensure_future(self.tick_loop())
                elif message.get('cmd') == 'health':
                    answer.update(listening=sum(1 for ep in self.endpoints.values() if ep.server is not None),
                                  scrapes=self.scrapes)
                self.channel.write((json.dumps(answer) + '\n').encode())
        finally:
            if ticker is not None:
                ticker.cancel()

    async def apply_journal(self, ops):
        """Replay the primary's operations, then bring this shard's listeners and timers along."""
        fleet = self.fleet
        named = []
        for op in ops:
            fleet.replay(op)
            if op[0] in ('add', 'reset'):
                named.extend(fleet.by_host[op[1]])
            elif op[0] in ('start', 'stop', 'upgrade', 'remove'):
                named.append(fleet.nodes[op[1]])
                if op[0] != 'stop':
                    self.schedule_refresh(self.config.restart_time)
        fleet.events.clear()        # the primary logs them
        changed = fleet.drain_changed()
        if changed is not None:
            changed = [n for n in {n.index: n for n in named + changed}.values()]
        await self.sync_listeners(nodes=changed)

    async def _ask_primary(self, message):
        self._request_seq += 1
        future = asyncio.get_running_loop().create_future()
        self.requests[self._request_seq] = future
        self.channel.write((json.dumps(dict(message, req=self._request_seq)) + '\n').encode())
        return await future

    async def _network_info_from_primary(self, node):
        answer = await self._ask_primary({'network_info': node.index})
        return Response.json(200, {'connected_peers': answer['peers'],
                                   'listeners': ['/ip4/127.0.0.1/udp/%d/quic-v1' % node.node_port]})

    def boot_systemd(self):
        """Install every node's unit (keeping drop-ins left in the state directory) and load them, as a
        host's systemd does at boot; the nodes run what was loaded."""
        root = str(self.state.root)
        envs = {}
        for host in self.fleet.hosts:
            host_dir = self.state.host_dir(host)
            for node in self.fleet.by_host[host]:
                sd.write_unit(host_dir, self.fleet.registry_record(node, root), self.host_env[host])
            self.daemon_reload(host)
            for node in self.fleet.by_host[host]:
                envs[node.index] = self.loaded_env[node.ref]
        for index, error in self.fleet.boot(envs).items():
            node = self.fleet.nodes[index]
            log('WARNING: %s keeps %s: %s' % (node.ref, node.mode, error))

    def daemon_reload(self, host):
        host_dir = self.state.host_dir(host)
        for node in self.fleet.by_host[host]:
            env = sd.effective_env(host_dir, node.service_name)
            self.loaded_env[node.ref] = env if env is not None else {}

    def write_sim_file(self, status, running=True):
        cfg = self.config
        layout.atomic_write(self.state.sim_file, json.dumps({
            'status': status,
            'fleet_id': self.fleet_id,
            'pid': os.getpid() if running else None,
            'api_url': self.api_url,
            'api_port': cfg.api_port,
            'hosts': cfg.hosts,
            'nodes_per_host': cfg.nodes_per_host,
            'total_nodes': len(self.fleet.nodes),
            'base_port': cfg.base_port,
            'shards': self.shards,
            'state_dir': str(self.state.root),
            'inventory': str(self.state.inventory),
            'file_sd': str(self.state.file_sd),
            'started_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        }, indent=1) + '\n')

    async def tick_loop(self):
        interval = self.config.tick
        next_at = time.monotonic()
        while True:
            # A tick late on a starved machine is not caught up back to back: the model integrates the
            # time since the last tick anyway, and the scrapes and API requests waiting meanwhile come
            # first (at 10,000 nodes under load, back-to-back ticks held scrapes for 10-20 s).
            next_at = max(next_at + interval, time.monotonic() + interval / 2)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if self.primary and self.owner and self.fleet.tick_no % 4 == 0 and not layout.owner_alive(self.owner):
                log('the process that started this fleet (%s) is gone: stopping it, its Prometheus and its '
                    'Alertmanager' % self.owner)
                from . import prometheus as prom
                prom.stop(self.state)
                prom.stop_alertmanager(self.state)
                self.stop_event.set()
                return
            try:
                self.fleet.tick()
                self.fleet.drain_changed()
                await self.sync_listeners()
                if self.primary:
                    self.write_registries()
                    self._log_events()
                else:
                    self.fleet.events.clear()
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
        endpoints = (self.endpoints.values() if nodes is None
                     else [self.endpoints[n.index] for n in nodes if n.index in self.endpoints])
        for ep in endpoints:
            want = self.fleet.is_serving(ep.node, now)
            if want and ep.server is None and not ep.opening:
                # Claimed before the first await: another sync running meanwhile (a tick, a replayed
                # operation) must not open the same port too (it would fail with "address already in use").
                ep.opening = True
                to_open.append(ep)
            elif not want and ep.server is not None:
                self._close_endpoint(ep)
        failed = []
        for ep in to_open:
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
        if ep.rpc_bound and ep.node.rpc_port != port and self.channel is not None:
            # A worker's moved RPC port: antctl reads rpc_socket_addr from the primary's registry.
            self.channel.write((json.dumps({'rpc_port': [ep.node.index, ep.node.rpc_port]}) + '\n').encode())
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
            if not self.primary:
                return self._network_info_from_primary(node)
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
            ep.cache = render(figures, self.config.without_metrics, self.config.exposition)
            ep.cache_version = fleet.version
        self.scrapes += 1
        return Response(200, ep.cache, content_type(self.config.exposition))

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
            result = self._route(request)
        except (FaultError, AntctlError) as exc:
            result = Response.json(400, {'error': str(exc)})
        except ValueError as exc:
            result = Response.json(400, {'error': 'bad request: %s' % exc})
        if self.workers and (not isinstance(result, Response) or self.fleet.journal):
            return self._replicated(result)
        return result

    async def _replicated(self, result):
        """Answer once every shard applied what the request changed."""
        if not isinstance(result, Response):
            result = await result
        await self.replicate()
        return result

    async def _health(self):
        listening, scrapes = await self.workers_health() if self.workers else (0, 0)
        return Response.json(200, {'status': 'ok', 'pid': os.getpid(), 'nodes': len(self.fleet.nodes),
                                   'shards': self.shards,
                                   'listening': listening + sum(1 for ep in self.endpoints.values()
                                                                if ep.server is not None),
                                   'scrapes': scrapes + self.scrapes})

    def _route(self, request):
        method, path = request.method, request.path.rstrip('/') or '/'
        fleet = self.fleet
        if path == '/metrics' and method == 'GET':
            return Response(200, render_sim_metrics(fleet), CONTENT_TYPE)
        if path == '/api/health':
            return self._health()
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
                if op in node_manager.OPERATIONS:
                    return node_manager.operate(self, host, op, body)
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
        return {'nodes': [self.fleet.registry_record(n, root) for n in self.fleet.by_host[host]
                          if self.fleet.in_registry(n)],
                'daemon': None}

    # ------------------------------------------------------------------ systemd stand-in
    def systemctl(self, host, body):
        """One systemctl call: {'verb', 'units', 'properties'} -> {'rc', 'stdout', 'stderr'}."""
        verb, units = body.get('verb'), [str(u) for u in body.get('units') or []]
        fleet = self.fleet
        if verb == 'daemon-reload':
            self.daemon_reload(host)
            return {'rc': 0}
        by_name = {n.service_name: n for n in fleet.by_host[host] if fleet.has_unit(n)}  # installed units only
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
        # --env replaces the whole environment of the services this upgrade rewrites; the registry-wide
        # environment stays what antctl add set (ant-node-manager/src/cmd/node.rs upgrade: provided_env_variables
        # or node_registry.environment_variables, never saved): a later upgrade without --env restores it.
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
                await self.replicate()
                # antctl waits RPC_START_UP_DELAY_MS, then asks the node over RPC (ant-node-manager/src/lib.rs).
                await asyncio.sleep(self.config.rpc_start_delay)
                if fleet.rpc_unresponsive(node) is not None:  # antctl's query of the started node
                    results[-1]['error'] = "Could not connect to RPC endpoint 'https://127.0.0.1:%d'" % node.rpc_port
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
                # --path forces the upgrade (use_force = force || custom_bin_path, cmd/node.rs); without force a
                # service already at the version returns before anything is touched (ServiceManager::upgrade).
                force = bool(body.get('force')) or bool(body.get('path'))
                if fleet.upgrade_node(node, None, version=body.get('version'), force=force, check_only=True):
                    # The service is uninstalled and installed again: the unit is rewritten with the registry-wide
                    # environment or --env (drop-ins are not antctl's and stay); `systemctl enable` reloads systemd.
                    root = str(self.state.root)
                    sd.write_unit(self.state.host_dir(host), fleet.registry_record(node, root),
                                  self.host_env[host] if env is None else env)
                    self.daemon_reload(host)
                message = fleet.upgrade_node(node, self.loaded_env[node.ref], version=body.get('version'),
                                             force=force, start=not body.get('do_not_start'))
                if message == 'upgraded and restarted':
                    self.schedule_refresh(self.config.restart_time)
                results.append({'service_name': node.service_name, 'result': message,
                                'old_version': old_version, 'new_version': node.version,
                                'old_mode': old_mode, 'new_mode': node.mode})
                if message.startswith('upgraded'):
                    fleet.events.append((fleet.clock(), 'upgrade %s: %s -> %s' % (node.ref, old_mode, node.mode)))
            self._after_change(nodes=[node])
            await self.replicate()
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
    parser.add_argument('--shard', type=int, default=0, help='a worker of the primary (started by it)')
    parser.add_argument('--epoch', type=float, help="the primary's fleet epoch (monotonic clock)")
    args = parser.parse_args(argv)
    state = layout.StateDir(args.state_dir)
    config = state.read_config()
    daemon = SimDaemon(state.root, config, owner=args.owner, shard=args.shard, epoch=args.epoch)
    return asyncio.run(daemon.run())


if __name__ == '__main__':
    sys.exit(main())
