"""The simulated fleet: network model, traffic model and antctl operations, without I/O.

Everything here is driven by an injectable clock so that unit tests can step time by hand.
The daemon (``daemon.py``) owns one :class:`Fleet`, calls :meth:`Fleet.tick` periodically,
serves :meth:`Fleet.node_metrics` through ``metrics.render`` and maps antctl and fault
requests onto the methods below.

Model in one paragraph: a node is *serving* when its service runs and its restart time has
elapsed (its metrics port is open), *ready* once its readiness delay has elapsed too (then it
reports more than 5 connected peers). Two serving, responsive nodes can reach each other when
they are on the same side of every injected partition and share a transport (libp2p_only and
iroh_only nodes share none). A node's routing table holds the peers it can reach (not capped,
so partitions show), its connected peers are that number capped at 50. Traffic is accumulated
as expected counts per tick (cheap and smooth): per transport, a request rate split by mode,
an error rate, a lognormal latency whose histogram buckets are filled from the CDF. Client
reads pick records whose close group of 5 nodes (XOR distance) holds them; a read succeeds
when some holder is ready, responsive and reachable from the client's entry node.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import os
import random
import time
from dataclasses import dataclass, field

from ansible_collections.autonomi.network_migration.plugins.module_utils._kademlia import (
    CLOSE_GROUP_SIZE,
    node_key,
    peer_id_from_ed25519,
    record_key,
    xor_nearest,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import (
    DUAL_STACK,
    IROH_ONLY,
    IROH_PRIMARY,
    LIBP2P_ONLY,
    MODE_TRANSPORTS,
    MODES,
    TRANSPORTS,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import CONTRACT_METRICS

from .faults import FaultError, in_scope, validate_fault

READY_PEERS = 5  # antctl's CLOSE_GROUP_SIZE rule: ready when connected peers > 5
MAX_CONNECTED = 50
HISTOGRAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0)
TRANSPORT_SHARE = {
    LIBP2P_ONLY: {'libp2p': 1.0, 'iroh': 0.0},
    DUAL_STACK: {'libp2p': 0.5, 'iroh': 0.5},
    IROH_PRIMARY: {'libp2p': 0.1, 'iroh': 0.9},
    IROH_ONLY: {'libp2p': 0.0, 'iroh': 1.0},
}
# antctl service statuses. 'Absent' is the simulator's own: a node slot not in the registry (after
# antctl reset), which antctl add fills again.
STATUS_RUNNING, STATUS_STOPPED = 'Running', 'Stopped'
STATUS_ADDED, STATUS_REMOVED, STATUS_ABSENT = 'Added', 'Removed', 'Absent'
MODE_ENV = 'ANT_TRANSPORT_MODE'
# Sharding: a process may hold at most 20,000 open files on these machines (hard limit). A node costs
# its shard three: the metrics and RPC listeners and the scraper's keep-alive connection; antctl's RPC
# refreshes and the modules' scrapes come and go. Auto-sharding keeps well below the limit.
OPEN_FILES_LIMIT = 20000
FILES_PER_NODE = 3
MAX_NODES_PER_SHARD = (OPEN_FILES_LIMIT - 2000) // FILES_PER_NODE
NODES_PER_SHARD = 2500


class AntctlError(Exception):
    """An antctl operation was refused (unknown service, bad --env value, ...)."""


@dataclass
class SimConfig:
    hosts: int = 10
    nodes_per_host: int = 5
    base_port: int = 14000
    api_port: int = 18080
    ready_delay: float = 3.0          # seconds from service start until connected peers > 5
    restart_time: float = 0.5         # seconds a restarting service keeps its port closed
    tick: float = 1.0                 # model step, seconds
    seed: int = 1
    initial_mode: str = LIBP2P_ONLY
    version: str = '0.4.6'
    request_rate: float = 20.0        # node requests per second (all transports)
    base_error_rate: float = 0.002
    latency_median_ms: dict = field(default_factory=lambda: {'libp2p': 80.0, 'iroh': 55.0})
    latency_sigma: float = 0.45
    client_read_rate: float = 300.0   # client reads per second, fleet-wide
    records: int = 1024
    host_prefix: str = 'sim-host-'
    rpc_start_delay: float = 3.0      # antctl start: wait before it asks the started node over RPC
    release_repo_online: bool = False  # antctl upgrade can download releases (hosts are offline by default)
    without_metrics: list = field(default_factory=list)  # contract metrics the nodes do not serve
    exposition: str = 'openmetrics'   # /metrics format: openmetrics (as a real node) or text (classic 0.0.4)
    query_rate: float = 0.5           # closest-peers (Kademlia) queries per second of a node that runs libp2p
    shards: int = 0                   # daemon processes holding the nodes' listeners; 0: as the fleet's size needs

    def validate(self):
        if self.hosts < 1 or self.nodes_per_host < 1:
            raise ValueError('hosts and nodes-per-host must be at least 1 (got %s x %s)'
                             % (self.hosts, self.nodes_per_host))
        if self.initial_mode not in MODES:
            raise ValueError('unknown initial mode %r; expected one of %s' % (self.initial_mode, ', '.join(MODES)))
        last = self.base_port + self.hosts * self.nodes_per_host - 1
        if self.base_port < 1024 or last > 65535:
            raise ValueError('metrics ports %d-%d are outside 1024-65535' % (self.base_port, last))
        if self.exposition not in ('openmetrics', 'text'):
            raise ValueError('exposition must be openmetrics or text, got %r' % (self.exposition,))
        for name in ('ready_delay', 'restart_time', 'request_rate', 'client_read_rate', 'query_rate'):
            if getattr(self, name) < 0:
                raise ValueError('%s must not be negative' % name)
        if self.tick <= 0:
            raise ValueError('tick must be positive')
        if self.rpc_start_delay < 0:
            raise ValueError('rpc_start_delay must not be negative')
        if self.shards < 0:
            raise ValueError('shards must not be negative (0 picks them from the fleet size)')
        if self.shards > self.hosts:
            raise ValueError('%d shards for %d hosts: a host lives in one shard, so at most %d shards'
                             % (self.shards, self.hosts, self.hosts))
        per_shard = -(-self.hosts // self.shard_count()) * self.nodes_per_host
        if per_shard > MAX_NODES_PER_SHARD:
            raise ValueError('%d nodes in a shard: a process may hold %d open files here and a node needs %d '
                             '(metrics and RPC listeners, the scraper\'s connection); use at least %d shards'
                             % (per_shard, OPEN_FILES_LIMIT, FILES_PER_NODE,
                                -(-self.hosts * self.nodes_per_host // MAX_NODES_PER_SHARD)))
        families = [item[0] for item in CONTRACT_METRICS]
        unknown = [m for m in self.without_metrics if m not in families]
        if unknown:
            raise ValueError('--without-metric %s: not a metric family of the node interface; one of %s'
                             % (', '.join(unknown), ', '.join(families)))
        return self

    def host_names(self):
        width = max(2, len(str(self.hosts)))
        return ['%s%0*d' % (self.host_prefix, width, i + 1) for i in range(self.hosts)]

    def shard_count(self):
        """The number of daemon processes: ``shards``, or (0) the fewest that keep each one's nodes
        within NODES_PER_SHARD."""
        if self.shards:
            return self.shards
        return max(1, min(self.hosts, -(-self.hosts * self.nodes_per_host // NODES_PER_SHARD)))

    def shard_of_host(self, host_index):
        """The shard holding the host at ``host_index``: contiguous blocks of hosts, as even as they go."""
        return host_index * self.shard_count() // self.hosts

    def shard_nodes(self, shard):
        """The indexes of the nodes whose listeners ``shard`` holds (every node of its hosts)."""
        return [h * self.nodes_per_host + n for h in range(self.hosts) if self.shard_of_host(h) == shard
                for n in range(self.nodes_per_host)]


def make_peer_id(seed, host, number):
    """A deterministic real libp2p peer id: the Ed25519 key pair whose 32-byte secret is SHA-256 of
    ``seed/host/number``, its public key as libp2p encodes it (identity multihash of the protobuf
    PublicKey, base58btc: ``12D3KooW`` + 44 characters; ``_kademlia.peer_id_from_ed25519``). It
    decodes like a real node's, so close groups are computed over the keys the network uses."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    secret = hashlib.sha256(('%s/%s/%s' % (seed, host, number)).encode()).digest()
    public = Ed25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return peer_id_from_ed25519(public)


def lognormal_cdf(x, median, sigma):
    if x <= 0:
        return 0.0
    return 0.5 * math.erfc(-(math.log(x) - math.log(median)) / (sigma * math.sqrt(2.0)))


class Counters:
    """Per-process counters of one node (reset when the node restarts, as a real process)."""

    __slots__ = ('requests', 'hist', 'hist_sum', 'dial', 'kad_ok', 'kad_err', 'swarm_established',
                 'bandwidth_in', 'bandwidth_out', 'holepunch')

    def __init__(self):
        self.requests = {t: {'success': 0.0, 'error': 0.0} for t in TRANSPORTS}
        self.hist = {t: [0.0] * len(HISTOGRAM_BUCKETS) for t in TRANSPORTS}
        self.hist_sum = {t: 0.0 for t in TRANSPORTS}
        self.dial = {t: {'unreachable': 0.0, 'timeout': 0.0, 'handshake': 0.0} for t in TRANSPORTS}
        self.kad_ok = 0.0
        self.kad_err = 0.0
        self.swarm_established = 0.0
        self.bandwidth_in = 0.0
        self.bandwidth_out = 0.0
        self.holepunch = 0.0


class Node:
    __slots__ = ('index', 'host', 'service_name', 'number', 'peer_id', 'key', 'metrics_port', 'rpc_port',
                 'node_port', 'mode', 'env', 'version', 'status', 'started_at', 'up_at', 'stable_mode',
                 'crash_at', 'stuck', 'pid', 'counters', 'records_stored', '_net', 'net_fleet',
                 'last_crash_reason', 'registry_peers', 'generation', 'metrics_enabled')

    def __init__(self, index, host, number, peer_id, metrics_port, mode, version):
        self.index = index
        self.host = host
        self.number = number
        self.service_name = 'antnode%d' % number
        self.peer_id = peer_id
        self.key = node_key(peer_id)
        self.metrics_port = metrics_port
        self.rpc_port = 13000 + number    # reported only (as on a real host: 13000 + i)
        self.node_port = 15000 + number
        self.mode = mode
        self.env = {MODE_ENV: mode}
        self.version = version
        self.status = STATUS_RUNNING
        self.started_at = 0.0       # process start (uptime origin)
        self.up_at = 0.0            # metrics port open from here
        self.stable_mode = mode     # last mode in which the node came up healthy (as of its last operation)
        self.crash_at = None        # crash-on-switch: the service dies at this time
        self.stuck = False          # crash-on-switch (never_ready): never gets past 5 peers
        self.pid = None
        self.counters = Counters()
        self.records_stored = 0
        self._net = None            # NodeNet of the current tick (see ``net``)
        self.net_fleet = None       # set while the node ramps up: its view is computed when read
        self.last_crash_reason = None
        self.registry_peers = None  # connected peers as antctl saw them at its last full refresh (stale)
        self.generation = 0         # how many times antctl add put a new node in this slot
        self.metrics_enabled = True  # added with --enable-metrics-server / --metrics-port

    @property
    def net(self):
        """The node's view of the network as of the fleet's last refresh."""
        if self.net_fleet is not None:
            self.net_fleet._ramp_view(self)
        return self._net

    @net.setter
    def net(self, value):
        self._net = value
        self.net_fleet = None

    @property
    def ref(self):
        return '%s/%s' % (self.host, self.service_name)

    @property
    def transports(self):
        return MODE_TRANSPORTS[self.mode]


class NodeNet:
    """A node's view of the network, recomputed when anything changes."""

    __slots__ = ('reachable', 'reachable_t', 'unreachable', 'timeouts', 'connected', 'connected_t',
                 'routing_table', 'side', 'stamp')

    def __init__(self):
        self.reachable = 0
        self.reachable_t = {t: 0 for t in TRANSPORTS}
        self.unreachable = 0
        self.timeouts = 0
        self.connected = 0
        self.connected_t = {t: 0 for t in TRANSPORTS}
        self.routing_table = 0
        self.side = ()
        self.stamp = -1


class Fleet:
    """The whole fleet's state. A sharded daemon runs one per process (docs/simulator.md, "Shards"):
    the primary (the control API's process) decides every operation and records it in ``journal``;
    each replica replays that journal (:meth:`replay`) at the same moments, so every process holds the
    same fleet-wide state - network views, close groups, partitions - and serves its own nodes from it.

    ``epoch``: the moment the fleet's staggered uptimes count from (the same in every process; the
    clock is the machine's monotonic clock). ``owned``: the node indexes whose traffic this process
    accumulates (its listeners'; None: all). ``primary``: keeps what only the control API reports
    (antctl's view of the peers at its last full refresh, client reads).
    """

    journal = None              # a list on the primary of a sharded fleet: the operations to replay

    def __init__(self, config, clock=time.monotonic, epoch=None, owned=None, primary=True):
        self.config = config.validate()
        self.clock = clock
        self.primary = primary
        self._replaying = 0
        self.rng = random.Random(config.seed)
        self.hosts = config.host_names()
        self.nodes = []
        self.by_host = {h: [] for h in self.hosts}
        now = clock() if epoch is None else epoch
        for h_i, host in enumerate(self.hosts):
            for n in range(1, config.nodes_per_host + 1):
                index = h_i * config.nodes_per_host + n - 1
                node = Node(index, host, n, make_peer_id(config.seed, host, n), config.base_port + index,
                            config.initial_mode, config.version)
                # The fleet has been up for a while: nodes start ready with staggered uptimes.
                node.started_at = now - 3600.0 - self.rng.uniform(0, 86400.0)
                node.up_at = node.started_at
                node.pid = 10000 + index
                self.nodes.append(node)
                self.by_host[host].append(node)
        self.by_ref = {n.ref: n for n in self.nodes}
        self.owned = self.nodes if owned is None else [self.nodes[i] for i in sorted(owned)]
        order = sorted(range(len(self.nodes)), key=lambda i: self.nodes[i].key)
        self._key_order = order     # node indexes sorted by Kademlia key (XOR-nearest lookups)
        self._sorted_keys = [self.nodes[i].key for i in order]
        self.faults = {}
        self._fault_seq = 0
        self.version = 0            # bumped on every state change (caches key on it)
        self.tick_no = 0
        self.last_tick = now
        self.client_ok = 0.0
        self.client_failed = 0.0
        self._read_success_cache = None
        self._init_records()
        self.events = []            # (time, text) of antctl operations and faults, for the log
        self._cat = None            # incremental bookkeeping, built by the first refresh
        self._unsynced = None
        self._stamp = 0
        self._now = now
        if os.environ.get('ANT_SIM_FULL_RECOMPUTE') == '1':   # bench/sim_restarts.py: the old way
            self.incremental = False
        self.refresh(now)
        if primary:
            for node in self.nodes:     # antctl's last full refresh: when the nodes were started
                self.full_refresh(node, now)

    # ------------------------------------------------------------------ records
    def _init_records(self):
        """Random records (32-byte XorNames, keyed as the network keys them: ``_kademlia.record_key``)
        and their close groups (the 5 nodes nearest by XOR)."""
        count = self.config.records
        keys = [record_key(self.rng.getrandbits(256).to_bytes(32, 'big')) for _ in range(count)]
        size = min(CLOSE_GROUP_SIZE, len(self.nodes))
        self.record_holders = []
        held = [0] * len(self.nodes)
        for k in keys:
            holders = tuple(self._xor_nearest(k, size))
            self.record_holders.append(holders)
            for i in holders:
                held[i] += 1
        # Each simulated record stands for many real ones; a node stores its share of them.
        for node in self.nodes:
            node.records_stored = 1200 + held[node.index] * 37

    def _xor_nearest(self, key, want, eligible=None):
        """The indexes of the ``want`` nodes nearest to ``key`` by XOR (nearest first) among those
        ``eligible`` accepts (every node when None): _kademlia.xor_nearest over the key-sorted fleet."""
        order, nodes = self._key_order, self.nodes
        accept = None if eligible is None else (lambda j: eligible(nodes[order[j]]))
        return [order[j] for j in xor_nearest(self._sorted_keys, key, want, accept)]

    # ------------------------------------------------------------------ state queries
    def is_serving(self, node, now=None):
        now = self.clock() if now is None else now
        return node.status == STATUS_RUNNING and now >= node.up_at and not (
            node.crash_at is not None and now >= node.crash_at)

    def startup_fraction(self, node, now):
        delay = self.config.ready_delay
        if delay <= 0:
            return 1.0
        return max(0.0, min(1.0, (now - node.started_at) / delay))

    def is_ready(self, node, now=None):
        now = self.clock() if now is None else now
        return (self.is_serving(node, now) and not node.stuck
                and now - node.started_at >= self.config.ready_delay)

    def unresponsive_fault(self, node):
        for fault in self.faults.values():
            if fault['kind'] == 'unresponsive' and in_scope(fault, node.host, node.ref, node.mode):
                return fault
        return None

    def rpc_unresponsive(self, node):
        """The fault that makes the node's RPC endpoint hang, if any (a hung node: ``unresponsive``,
        unless it says ``rpc: false``; or ``rpc_unresponsive``, the RPC alone)."""
        for fault in self.faults.values():
            if ((fault['kind'] == 'rpc_unresponsive' or (fault['kind'] == 'unresponsive' and fault.get('rpc', True)))
                    and in_scope(fault, node.host, node.ref, node.mode)):
                return fault
        return None

    def transport_effects(self, node):
        """Extra error rate and latency per transport from the transport faults in scope."""
        err = {t: 0.0 for t in TRANSPORTS}
        lat = {t: 0.0 for t in TRANSPORTS}
        for fault in self.faults.values():
            if fault['kind'] == 'transport' and in_scope(fault, node.host, node.ref, node.mode):
                t = fault['transport']
                err[t] = 1.0 - (1.0 - err[t]) * (1.0 - fault['error_rate'])
                lat[t] += fault['latency_ms']
        return err, lat

    def host_side(self, host):
        side = []
        for fault in self.faults.values():
            if fault['kind'] == 'partition':
                for i, group in enumerate(fault['groups']):
                    if host in group:
                        side.append(i)
                        break
                else:
                    side.append(-1)  # hosts named in no group stay together, apart from all groups
        return tuple(side)

    # ------------------------------------------------------------------ network
    # The bookkeeping is incremental: a node's view of the network depends on its own state
    # (serving, ready, stuck, responsive, partition side, transports) and on fleet-wide counts
    # of serving nodes per (side, transports). Those counts are kept up to date node by node;
    # nodes in the same state share one NodeNet (recomputed in place when the counts change),
    # nodes ramping up after a start get their own. A timer heap brings the moments at which a
    # node's state changes by itself (port opens, crash-on-switch fires). So a restart costs
    # O(changed nodes + distinct states), not O(fleet). Faults (sides, responsiveness of many
    # nodes) and callers that changed nodes without saying which take the full path.
    incremental = True          # False: the reference full recompute on every call (bench, tests)

    def refresh(self, now=None, changed=None):
        """Bring every node's network view (reachability, peers, routing table) up to ``now``.

        ``changed``: the nodes whose own state the caller just changed (start, stop, upgrade);
        ``()`` when nothing but time moved. ``None`` (the default) recomputes everything.
        Returns the nodes whose serving state may have changed, or None after a full recompute.
        """
        now = self.clock() if now is None else now
        self._read_success_cache = None
        if not self.incremental:
            self._refresh_full(now)
            self._unsynced = None
            return None
        if changed is None or self._cat is None:
            self._rebuild(now)
            return None
        return self._refresh_incremental(now, changed)

    def timer_due(self, now=None):
        """Whether a node's port opening, readiness or crash moment has passed since the last refresh."""
        if not self.incremental or self._cat is None or not self._timers:
            return False
        return self._timers[0][0] <= (self.clock() if now is None else now)

    def _node_events(self, node, now):
        """Crash-on-switch firing (the same rule for both paths)."""
        if node.crash_at is not None and now >= node.crash_at and node.status == STATUS_RUNNING:
            node.status = STATUS_STOPPED
            node.pid = None
            node.counters = Counters()
            self.events.append((now, '%s crashed after switching to %s' % (node.ref, node.mode)))

    def _before_operation(self, node, now):
        """What happened to ``node`` up to ``now`` counts before an operation changes it: a crash that
        was due, and the mode it came up healthy in (what crash-on-switch compares a switch with).

        Settled here, at the operation's own moment, rather than whenever a refresh happens to run, so
        that every process of a sharded fleet (whose refreshes run at their own moments) settles it alike.
        """
        self._node_events(node, now)
        if node.status == STATUS_RUNNING and node.mode != node.stable_mode and self.is_ready(node, now):
            node.stable_mode = node.mode

    def _category(self, node, now):
        side = self._sides[node.host]
        if not self.is_serving(node, now):
            return ('off', side, None, False)
        responsive = self.unresponsive_fault(node) is None
        if node.stuck:
            kind = 'stuck'
        elif now - node.started_at >= self.config.ready_delay:
            kind = 'ready'
        else:
            kind = 'ramp'
        return (kind, side, node.transports, responsive)

    def _push_timers(self, node, now):
        ready_at = node.started_at + self.config.ready_delay
        for at in (node.up_at, node.crash_at, ready_at):
            if at is not None and at > now:
                heapq.heappush(self._timers, (at, node.index))

    def _rebuild(self, now):
        """Full recompute into the incremental structures (start-up, faults, unknown changes)."""
        for node in self.nodes:
            self._node_events(node, now)
        self._sides = {h: self.host_side(h) for h in self.hosts}
        self._cat = [None] * len(self.nodes)
        self._classes = {}
        self._unresp = 0
        self._online = 0
        self._shared = {}
        self._off = {}
        self._timers = []
        self._unsynced = None
        self._stamp += 1
        self._now = now
        for node in self.nodes:
            self._apply(node, self._category(node, now))
            self._push_timers(node, now)
        self._recompute_shared()

    def _refresh_incremental(self, now, changed):
        self._stamp += 1            # ramping nodes' views are stale from here (recomputed when read)
        self._now = now
        due = {node.index for node in changed}
        timers = self._timers
        while timers and timers[0][0] <= now:
            due.add(heapq.heappop(timers)[1])
        touched = []
        dirty = False
        for index in sorted(due):
            node = self.nodes[index]
            self._node_events(node, now)
            cat = self._category(node, now)
            if cat != self._cat[index]:
                touched.append(node)
            dirty |= self._apply(node, cat)
            self._push_timers(node, now)
            if cat[0] == 'ramp' and node.started_at + self.config.ready_delay <= now:
                # Rounding: its ready moment passed by the timer but not by is_ready's subtraction.
                heapq.heappush(timers, (math.nextafter(now, math.inf), index))
        if dirty:
            self._recompute_shared()
        if self._unsynced is not None:
            self._unsynced.update(node.index for node in touched)
        return touched

    def drain_changed(self):
        """The nodes whose state changed since the last call (None: maybe any node), for the
        daemon's listeners: a refresh inside start_node may bring another node's port-open time."""
        pending, self._unsynced = self._unsynced, set()
        return None if pending is None else [self.nodes[i] for i in sorted(pending)]

    def _apply(self, node, cat):
        """Give ``node`` the category ``cat``; return whether the fleet-wide counts changed."""
        index = node.index
        old = self._cat[index]
        self._cat[index] = cat
        kind, side, transports, responsive = cat
        if kind == 'off':
            net = self._off.get(side)
            if net is None:
                net = self._off[side] = NodeNet()
                net.side = side
            node.net = net
        elif kind == 'ramp':
            net = node._net
            if old is None or old[0] != 'ramp' or net is None or net.side != side or node.net_fleet is None:
                net = NodeNet()
                net.side = side
                node.net = net
            net.stamp = -1
            node.net_fleet = self
        else:
            net = self._shared.get(cat)
            if net is None:
                net = self._shared[cat] = NodeNet()
                net.side = side
                self._fill(net, kind, side, transports, responsive, 1.0)
            node.net = net
        before = None if old is None or old[0] == 'off' else old[1:]
        after = None if kind == 'off' else cat[1:]
        if before == after:
            return False
        for contrib, sign in ((before, -1), (after, 1)):
            if contrib is None:
                continue
            c_side, c_transports, c_responsive = contrib
            if c_responsive:
                key = (c_side, c_transports)
                count = self._classes.get(key, 0) + sign
                if count:
                    self._classes[key] = count
                else:
                    self._classes.pop(key, None)
                self._online += sign
            else:
                self._unresp += sign
        return True

    def _recompute_shared(self):
        for (kind, side, transports, responsive), net in self._shared.items():
            self._fill(net, kind, side, transports, responsive, 1.0)

    def _ramp_view(self, node):
        """A ramping node's view at the last refresh, computed when first read after it."""
        net = node._net
        if net.stamp != self._stamp:
            kind, side, transports, responsive = self._cat[node.index]
            self._fill(net, kind, side, transports, responsive, self.startup_fraction(node, self._now))
            net.stamp = self._stamp

    def _fill(self, net, kind, side, transports, responsive, frac):
        """One node's view from the fleet-wide counts (the same figures as ``_refresh_full``)."""
        mine = set(transports)
        reach = 0
        reach_t = {t: 0 for t in TRANSPORTS}
        for (c_side, c_transports), count in self._classes.items():
            if c_side != side:
                continue
            shared = mine.intersection(c_transports)
            if not shared:
                continue
            reach += count
            for t in shared:
                reach_t[t] += count
        if responsive:
            reach -= 1
            for t in transports:
                reach_t[t] -= 1
        net.reachable = reach
        net.reachable_t = reach_t
        net.unreachable = max(0, self._online - (1 if responsive else 0) - reach)
        net.timeouts = self._unresp - (0 if responsive else 1)
        if kind == 'stuck':
            net.connected = min(2, reach)
            net.connected_t = {t: min(2, reach_t[t]) for t in TRANSPORTS}
            net.routing_table = int(reach * 0.1)
        elif kind == 'ready':
            net.connected = min(reach, MAX_CONNECTED)
            net.connected_t = {t: min(reach_t[t], MAX_CONNECTED) for t in TRANSPORTS}
            net.routing_table = reach
        else:
            ramp = int(READY_PEERS * frac)
            net.connected = min(reach, ramp)
            net.connected_t = {t: min(reach_t[t], ramp) for t in TRANSPORTS}
            net.routing_table = int(reach * frac)

    def _refresh_full(self, now):
        """The reference: recompute every node's network view from scratch (O(fleet) per call)."""
        # Crash-on-switch: services that die after they started.
        for node in self.nodes:
            if node.crash_at is not None and now >= node.crash_at and node.status == STATUS_RUNNING:
                node.status = STATUS_STOPPED
                node.pid = None
                node.counters = Counters()
                self.events.append((now, '%s crashed after switching to %s' % (node.ref, node.mode)))
        sides = {h: self.host_side(h) for h in self.hosts}
        responsive = {}
        classes = {}
        unresponsive_count = {}
        for node in self.nodes:
            node.net = net = NodeNet()
            net.side = sides[node.host]
            if not self.is_serving(node, now):
                continue
            if self.unresponsive_fault(node) is not None:
                unresponsive_count[net.side] = unresponsive_count.get(net.side, 0) + 1
                responsive[node.index] = False
                continue
            responsive[node.index] = True
            key = (net.side, node.transports)
            classes[key] = classes.get(key, 0) + 1
        online = sum(1 for v in responsive.values() if v)
        total_unresponsive = sum(unresponsive_count.values())
        for node in self.nodes:
            net = node.net
            if not self.is_serving(node, now):
                continue
            mine = set(node.transports)
            reach = 0
            reach_t = {t: 0 for t in TRANSPORTS}
            for (side, transports), count in classes.items():
                if side != net.side:
                    continue
                shared = mine.intersection(transports)
                if not shared:
                    continue
                reach += count
                for t in shared:
                    reach_t[t] += count
            if responsive.get(node.index):
                reach -= 1
                for t in node.transports:
                    reach_t[t] -= 1
            net.reachable = reach
            net.reachable_t = reach_t
            net.unreachable = max(0, online - (1 if responsive.get(node.index) else 0) - reach)
            net.timeouts = total_unresponsive - (0 if responsive.get(node.index) else 1)
            frac = self.startup_fraction(node, now)
            if node.stuck:
                cap = min(2, reach)
                net.connected = cap
                net.connected_t = {t: min(2, reach_t[t]) for t in TRANSPORTS}
                net.routing_table = int(reach * 0.1)
            elif self.is_ready(node, now):
                net.connected = min(reach, MAX_CONNECTED)
                net.connected_t = {t: min(reach_t[t], MAX_CONNECTED) for t in TRANSPORTS}
                net.routing_table = reach
            else:
                ramp = int(READY_PEERS * frac)
                net.connected = min(reach, ramp)
                net.connected_t = {t: min(reach_t[t], ramp) for t in TRANSPORTS}
                net.routing_table = int(reach * frac)

    # ------------------------------------------------------------------ time
    def tick(self, now=None):
        """Advance the model to ``now``: accumulate traffic and client reads."""
        now = self.clock() if now is None else now
        dt = now - self.last_tick
        if dt <= 0:
            return
        self.last_tick = now
        self.tick_no += 1
        self.refresh(now, changed=())
        self._accumulate_traffic(dt, now)
        if self.primary:
            self._accumulate_client_reads(dt)
        self.version += 1

    def _accumulate_traffic(self, dt, now):
        cfg = self.config
        sigma = cfg.latency_sigma
        mean_factor = math.exp(sigma * sigma / 2.0)
        for node in self.owned:
            if not self.is_serving(node, now):
                continue
            net = node.net
            c = node.counters
            err_fault, lat_fault = self.transport_effects(node)
            activity = 1.0 if self.is_ready(node, now) else 0.3
            n = cfg.request_rate * dt * activity
            # The split follows the mode alone: the fleet is part of a larger network, so a lone
            # dual-stack canary still finds iroh peers outside the fleet (its iroh figures are real).
            share = TRANSPORT_SHARE[node.mode]
            for t in TRANSPORTS:
                if share[t] <= 0:
                    continue
                n_t = n * share[t]
                err = min(1.0, cfg.base_error_rate + err_fault[t])
                c.requests[t]['success'] += n_t * (1.0 - err)
                c.requests[t]['error'] += n_t * err
                median = (cfg.latency_median_ms[t] + lat_fault[t]) / 1000.0
                cdf = _bucket_fractions(median, sigma)
                hist = c.hist[t]
                for i, f in enumerate(cdf):
                    hist[i] += n_t * f
                c.hist_sum[t] += n_t * median * mean_factor
                c.dial[t]['unreachable'] += net.unreachable * 0.02 * dt
                c.dial[t]['timeout'] += net.timeouts * 0.05 * dt
                c.dial[t]['handshake'] += 0.002 * dt * (1.0 + 20.0 * err_fault[t])
            libp2p_share = share['libp2p']
            if libp2p_share > 0:
                kad = cfg.query_rate * dt * activity
                kad_err = min(1.0, 0.01 + err_fault['libp2p'] + (0.5 if net.unreachable else 0.0))
                c.kad_ok += kad * (1 - kad_err)
                c.kad_err += kad * kad_err
                c.swarm_established += 0.02 * net.connected_t['libp2p'] * dt
                c.bandwidth_in += n * libp2p_share * 5200.0
                c.bandwidth_out += n * libp2p_share * 3100.0
            if share['iroh'] > 0:
                c.holepunch += 0.01 * net.connected_t['iroh'] * dt

    def _read_success(self):
        """Probability that one client read succeeds, given the current network."""
        if self._read_success_cache is not None:
            return self._read_success_cache
        now = self.clock()
        ready = {}
        entries = {}
        for node in self.nodes:
            ok = self.is_ready(node, now) and self.unresponsive_fault(node) is None
            ready[node.index] = ok
            if ok:
                key = (node.net.side, node.transports)
                entries[key] = entries.get(key, 0) + 1
        total_entries = sum(entries.values())
        if not total_entries or not self.record_holders:
            self._read_success_cache = 0.0
            return 0.0
        nodes = self.nodes
        success = 0.0
        for holders in self.record_holders:
            avail = [(nodes[i].net.side, set(nodes[i].transports)) for i in holders if ready[i]]
            if not avail:
                continue
            for (side, transports), count in entries.items():
                if any(s == side and ts.intersection(transports) for s, ts in avail):
                    success += count
        result = success / (total_entries * len(self.record_holders))
        self._read_success_cache = result
        return result

    def _accumulate_client_reads(self, dt):
        reads = self.config.client_read_rate * dt
        ok = reads * self._read_success()
        self.client_ok += ok
        self.client_failed += reads - ok

    def client_reads(self):
        total = self.client_ok + self.client_failed
        return {
            'ok': round(self.client_ok, 3),
            'failed': round(self.client_failed, 3),
            'total': round(total, 3),
            'ratio': round(self.client_ok / total, 6) if total else 1.0,
            'current_success': round(self._read_success(), 6),
        }

    # ------------------------------------------------------------------ node figures
    def node_metrics(self, node, now=None):
        """The figures a node's /metrics shows (None when its port is closed)."""
        now = self.clock() if now is None else now
        if not self.is_serving(node, now):
            return None
        net = node.net or NodeNet()
        c = node.counters
        active = node.transports
        return {
            'mode': node.mode,
            'version': node.version,
            'uptime': max(0, int(now - node.started_at)),
            'connected': net.connected,
            'connected_t': {t: (net.connected_t[t] if t in active else 0) for t in TRANSPORTS},
            'routing_table': net.routing_table,
            'open_connections': net.connected + (1 if net.connected else 0),
            'network_size': len(self.nodes),
            'records_stored': node.records_stored,
            'counters': c,
            # Where this node's integer counters stand between two whole events (OpenMetrics): nodes with the
            # same rates then see their events at different moments, as real processes do.
            'phase': (node.index * 0.6180339887) % 1.0,
            'iroh_direct': int(round(net.connected_t['iroh'] * 0.85)) if 'iroh' in active else 0,
            'iroh_relay': (net.connected_t['iroh'] - int(round(net.connected_t['iroh'] * 0.85)))
            if 'iroh' in active else 0,
        }

    # ------------------------------------------------------------------ antctl
    def select(self, host, service_names=(), peer_ids=()):
        """The nodes an antctl command names (all of the host's when none are named)."""
        if host not in self.by_host:
            raise AntctlError('unknown host %r' % host)
        nodes = [n for n in self.by_host[host] if self.has_unit(n)]   # antctl leaves Removed ones alone
        if not service_names and not peer_ids:
            return list(nodes)
        chosen = []
        for name in service_names:
            match = [n for n in nodes if n.service_name == name]
            if not match:
                raise AntctlError("No service named '%s'" % name)
            chosen.extend(match)
        for pid in peer_ids:
            match = [n for n in nodes if n.peer_id == pid]
            if not match:
                raise AntctlError("Could not find node with peer id '%s'" % pid)
            chosen.extend(match)
        return list(dict.fromkeys(chosen))

    def _crash_rule(self, node):
        """The crash-on-switch fault that fires when ``node`` starts now, if any."""
        if node.mode == node.stable_mode:
            return None
        for fault in self.faults.values():
            if fault['kind'] != 'crash_on_switch':
                continue
            if fault.get('mode') and fault['mode'] != node.mode:
                continue
            if in_scope(fault, node.host, node.ref, node.mode):
                return fault
        return None

    def start_node(self, node, now=None, env=None):
        """Start a node's service (a restart when it runs) with the process environment ``env``
        (the unit's, as systemd loaded it; None keeps the last one). The node takes its transport
        mode from ANT_TRANSPORT_MODE (libp2p_only without it); an invalid value is refused."""
        now = self.clock() if now is None else now
        mode = mode_from_env(env) if env is not None else None
        self._record('start', node.index, now, env)
        self._before_operation(node, now)
        self._start(node, now, env, mode)

    def _start(self, node, now, env=None, mode=None):
        if env is not None:
            node.env = dict(env)
            node.mode = mode
        node.status = STATUS_RUNNING
        node.started_at = now + self.config.restart_time
        node.up_at = node.started_at
        node.pid = 20000 + node.index + int(now * 10) % 10000
        node.counters = Counters()
        node.crash_at = None
        node.stuck = False
        fault = self._crash_rule(node)
        if fault is not None:
            if fault['behaviour'] == 'crash':
                node.crash_at = node.started_at + max(0.2, self.config.ready_delay / 3.0)
            else:
                node.stuck = True
            node.last_crash_reason = 'crash_on_switch to %s (%s)' % (node.mode, fault['behaviour'])
        self.version += 1
        self.refresh(now, changed=(node,))

    def stop_node(self, node, now=None):
        now = self.clock() if now is None else now
        self._record('stop', node.index, now)
        self._before_operation(node, now)
        self._stop(node, now)

    def _stop(self, node, now):
        node.status = STATUS_STOPPED
        node.pid = None
        node.crash_at = None
        node.stuck = False
        node.counters = Counters()
        self.version += 1
        self.refresh(now, changed=(node,))

    def parse_env(self, env_pairs):
        """Validate antctl --env pairs; return a dict. Unknown transport modes are refused."""
        env = {}
        for key, value in env_pairs:
            env[key] = value
        mode = env.get(MODE_ENV)
        if mode is not None and mode not in MODES:
            raise AntctlError('invalid value %r for %s: expected one of %s'
                              % (mode, MODE_ENV, ', '.join(MODES)))
        return env

    def upgrade_node(self, node, env, version=None, force=False, start=True, now=None, check_only=False):
        """Apply an upgrade to one node: the service's new process environment ``env`` (all of it:
        what systemd loads from the rewritten unit and its drop-ins) and version, then restart
        (unless ``start`` is False: antctl's --do-not-start leaves it stopped). Returns what happened
        (``check_only``: whether an upgrade would happen, changing nothing).

        Like antctl, nothing happens without ``force`` unless ``version`` is newer.
        """
        now = self.clock() if now is None else now
        needed = force or (version is not None and _version_tuple(version) > _version_tuple(node.version))
        if check_only:
            return needed
        if not needed:
            return 'no upgrade required (running %s)' % node.version
        mode = mode_from_env(env)
        self._record('upgrade', node.index, env, version, force, start, now)
        self._before_operation(node, now)
        node.mode = mode
        node.env = dict(env)
        if version:
            node.version = version
        if not start:
            self._stop(node, now)
            return 'upgraded, not started (--do-not-start)'
        self._start(node, now)
        return 'upgraded and restarted'

    # ------------------------------------------------------------------ registry (antctl add / remove / reset)
    def in_registry(self, node):
        """Whether antctl's registry holds the node (a Removed node stays in it; a reset empties it)."""
        return node.status != STATUS_ABSENT

    def has_unit(self, node):
        """Whether the node's service is installed (antctl remove and reset uninstall it)."""
        return node.status not in (STATUS_ABSENT, STATUS_REMOVED)

    def remove_node(self, node, now=None):
        """antctl remove: the service is uninstalled, the node stays in the registry as Removed
        (ant-node-manager/src/lib.rs ``ServiceManager::remove``, ``on_remove``). The caller refuses a
        running node first, as antctl does."""
        now = self.clock() if now is None else now
        self._record('remove', node.index, now)
        self._before_operation(node, now)
        self._stop(node, now)
        node.status = STATUS_REMOVED

    def reset_host(self, host, now=None):
        """antctl reset: every service of the host stopped and removed, then the registry deleted
        (ant-node-manager/src/cmd/node.rs ``reset``): the slots are free for antctl add."""
        now = self.clock() if now is None else now
        self._record('reset', host, now)
        for node in self.by_host[host]:
            self._before_operation(node, now)
            self._stop(node, now)
            node.status = STATUS_ABSENT

    def add_node(self, host, metrics=True, now=None):
        """antctl add of one node: named ``antnode{registry length + 1}``
        (ant-node-manager/src/add_services/mod.rs), status Added, a new identity (its peer id is known
        once it has started), its metrics port only with ``metrics`` (--enable-metrics-server). It takes
        the host's first free slot (a slot's metrics port is fixed); AntctlError when none is free."""
        now = self.clock() if now is None else now
        slots = self.by_host[host]
        free = [n for n in slots if n.status == STATUS_ABSENT]
        if not free:
            raise AntctlError('the simulated host %s has no free node slot: it has %d (--nodes-per-host) and '
                              'antctl add numbers a new node after every registry entry, Removed ones included'
                              % (host, len(slots)))
        self._record('add', host, bool(metrics), now)
        node = free[0]
        number = sum(1 for n in slots if self.in_registry(n)) + 1
        self.by_ref.pop(node.ref, None)
        node.generation += 1
        node.number = number
        node.service_name = 'antnode%d' % number
        node.node_port = 15000 + number
        self.by_ref[node.ref] = node
        node.peer_id = make_peer_id(self.config.seed, host, '%d.%d' % (number, node.generation))
        node.key = node_key(node.peer_id)
        self._key_order = sorted(range(len(self.nodes)), key=lambda i: self.nodes[i].key)
        self._sorted_keys = [self.nodes[i].key for i in self._key_order]
        node.metrics_enabled = bool(metrics)
        node.version = self.config.version
        node.env, node.mode, node.stable_mode = {}, LIBP2P_ONLY, LIBP2P_ONLY
        node.registry_peers = None
        node.status = STATUS_ADDED
        self.version += 1
        self.refresh(now, changed=(node,))
        return node

    # ------------------------------------------------------------------ replication (shards)
    def _record(self, *op):
        """Journal one operation of the primary (with the moment it happened at), for the replicas."""
        if self.journal is not None and not self._replaying:
            self.journal.append(list(op))

    def replay(self, op):
        """Apply one journal entry of the primary: the same method, with the same moment."""
        kind, args = op[0], op[1:]
        self._replaying += 1
        try:
            if kind == 'start':
                index, now, env = args
                self.start_node(self.nodes[index], now=now, env=env)
            elif kind == 'stop':
                index, now = args
                self.stop_node(self.nodes[index], now=now)
            elif kind == 'upgrade':
                index, env, version, force, start, now = args
                self.upgrade_node(self.nodes[index], env, version=version, force=force, start=start, now=now)
            elif kind == 'fault':
                self.add_fault(args[0], now=args[1])
            elif kind == 'unfault':
                self.remove_fault(args[0], now=args[1])
            elif kind == 'clear':
                self.clear_faults(now=args[0])
            elif kind == 'boot':
                self.boot({int(i): env for i, env in args[0].items()}, now=args[1])
            elif kind == 'add':
                self.add_node(args[0], metrics=args[1], now=args[2])
            elif kind == 'remove':
                self.remove_node(self.nodes[args[0]], now=args[1])
            elif kind == 'reset':
                self.reset_host(args[0], now=args[1])
            else:
                raise ValueError('unknown journal entry %r' % (op,))
        finally:
            self._replaying -= 1

    def boot(self, envs, now=None):
        """The environment each node's unit had when the host's systemd loaded it at boot ({index: env}):
        the nodes run that mode from the start. Returns {index: error} for the envs refused (the node
        keeps its mode)."""
        now = self.clock() if now is None else now
        self._record('boot', {str(i): env for i, env in envs.items()}, now)
        errors = {}
        for index, env in envs.items():
            node = self.nodes[index]
            try:
                node.mode = mode_from_env(env)
            except AntctlError as exc:
                errors[index] = str(exc)
                continue
            node.stable_mode = node.mode
            node.env = dict(env)
        self.version += 1
        self.refresh(now)
        return errors

    def registry_record(self, node, state_dir, now=None):
        """The node as ``antctl status --json`` and node_registry.json describe it."""
        now = self.clock() if now is None else now
        host_dir = '%s/hosts/%s' % (state_dir, node.host)
        # antctl status --json does a partial refresh (process check, no RPC): the peers are those
        # of the last full refresh (start / stop / upgrade), stale by design.
        peers = node.registry_peers if node.status == STATUS_RUNNING else None
        return {
            'schema_version': 2,
            'service_name': node.service_name,
            'number': node.number,
            'peer_id': None if node.status == STATUS_ADDED else node.peer_id,   # known from the first start
            'status': node.status,
            'version': node.version,
            'pid': node.pid if node.status == STATUS_RUNNING else None,
            'metrics_port': node.metrics_port if node.metrics_enabled else None,
            'rpc_socket_addr': '127.0.0.1:%d' % node.rpc_port,
            'node_port': node.node_port,
            'node_ip': '127.0.0.1',
            'data_dir_path': '%s/data/%s' % (host_dir, node.service_name),
            'log_dir_path': '%s/logs/%s' % (host_dir, node.service_name),
            'antnode_path': '%s/bin/antnode' % host_dir,
            'connected_peers': peers,
            'listen_addr': (['/ip4/127.0.0.1/udp/%d/quic-v1/p2p/%s' % (node.node_port, node.peer_id)]
                            if node.status == STATUS_RUNNING else None),
            'rewards_address': '0x' + hashlib.sha256(node.host.encode()).hexdigest()[:40],
            'network_id': 1,
            'evm_network': 'ArbitrumOne',
            'initial_peers_config': {'first': False, 'addrs': [], 'network_contacts_url': [], 'local': False,
                                     'ignore_cache': False, 'bootstrap_cache_dir': None},
            'log_format': None,
            'max_archived_log_files': None,
            'max_log_files': None,
            'no_upnp': True,
            'relay': False,
            'alpha': False,
            'write_older_cache_files': False,
            'user': 'ant',
            'user_mode': False,
            'auto_restart': False,
            'reward_balance': None,
        }

    def full_refresh(self, node, now=None):
        """What antctl's full refresh of a node over its RPC records: its connected peers now."""
        now = self.clock() if now is None else now
        serving = node.status == STATUS_RUNNING and self.is_serving(node, now)
        if not serving:
            node.registry_peers = None
        else:  # the RPC's network_info: a list, empty while the node has no peer yet
            node.registry_peers = self._connected_peer_ids(node) if node.net and node.net.connected else []

    def _connected_peer_ids(self, node):
        """Up to ``connected`` peer ids of reachable peers, nearest by XOR first (as Kademlia would).

        Nodes sharing a longer key prefix with ``node`` are nearer than all others, and the nodes
        sharing a prefix form a contiguous block of the key-sorted fleet: widen the block until it
        holds enough eligible peers, then sort only the block (exactly the full scan's answer).
        """
        if not self.incremental:
            return self._connected_peer_ids_full(node)
        mine = set(node.transports)
        side = node.net.side
        now = self.clock()

        def eligible(other):
            return (other is not node and other.net is not None and other.net.side == side
                    and self.is_serving(other, now) and bool(mine.intersection(other.transports)))

        return [self.nodes[i].peer_id for i in self._xor_nearest(node.key, node.net.connected, eligible)]

    def _connected_peer_ids_full(self, node):
        """The reference: scan the whole fleet (O(fleet log fleet) per node)."""
        want = node.net.connected
        mine = set(node.transports)
        cands = []
        for other in self.nodes:
            if other is node or other.net is None or other.net.side != node.net.side:
                continue
            if not self.is_serving(other) or not mine.intersection(other.transports):
                continue
            cands.append((other.key ^ node.key, other.peer_id))
        cands.sort()
        return [p for _, p in cands[:want]]

    # ------------------------------------------------------------------ faults
    def add_fault(self, request, now=None):
        now = self.clock() if now is None else now
        fault = validate_fault(request, self.hosts, self.by_ref)
        self._record('fault', request, now)
        self._fault_seq += 1
        fault = {'id': 'f%d' % self._fault_seq, **fault}
        self.faults[fault['id']] = fault
        self.version += 1
        self.refresh(now)
        self.events.append((now, 'fault added: %s' % fault))
        return fault

    def remove_fault(self, fault_id, now=None):
        now = self.clock() if now is None else now
        if fault_id not in self.faults:
            raise FaultError('no fault with id %r; active: %s' % (fault_id, ', '.join(self.faults) or 'none'))
        self._record('unfault', fault_id, now)
        fault = self.faults.pop(fault_id)
        self._unstick()
        self.version += 1
        self.refresh(now)
        return fault

    def clear_faults(self, now=None):
        now = self.clock() if now is None else now
        self._record('clear', now)
        removed = list(self.faults.values())
        self.faults.clear()
        self._unstick()
        self.version += 1
        self.refresh(now)
        return removed

    def _unstick(self):
        """Nodes stuck by a never_ready crash fault that is gone recover (a crashed one stays down)."""
        for node in self.nodes:
            if node.stuck and node.mode != node.stable_mode and self._crash_rule(node) is None:
                node.stuck = False

    # ------------------------------------------------------------------ views
    def fleet_view(self, state_dir=''):
        now = self.clock()
        nodes = []
        for node in self.nodes:
            net = node.net or NodeNet()
            nodes.append({
                'host': node.host,
                'service_name': node.service_name,
                'peer_id': node.peer_id,
                'metrics_port': node.metrics_port,
                'mode': node.mode,
                'status': node.status,
                'serving': self.is_serving(node, now),
                'ready': self.is_ready(node, now),
                'unresponsive': self.unresponsive_fault(node) is not None,
                'version': node.version,
                'uptime': max(0, int(now - node.started_at)) if self.is_serving(node, now) else 0,
                'connected_peers': net.connected,
                'routing_table': net.routing_table,
                'partition_side': list(net.side),
            })
        by_mode = {m: 0 for m in MODES}
        for node in self.nodes:
            by_mode[node.mode] += 1
        return {
            'hosts': self.hosts,
            'nodes_per_host': self.config.nodes_per_host,
            'total_nodes': len(self.nodes),
            'by_mode': by_mode,
            'ready': sum(1 for n in nodes if n['ready']),
            'faults': list(self.faults.values()),
            'client_reads': self.client_reads(),
            'partition_risk': round(self.partition_risk(), 4),
            'nodes': nodes,
        }

    def partition_risk(self):
        """The alert team's figure: mean over serving nodes of clamp(2 (1 - rt / (size - 1)), 0, 1)."""
        size = len(self.nodes)
        if size < 2:
            return 0.0
        values = []
        for node in self.nodes:
            if not self.is_serving(node):
                continue
            rt = node.net.routing_table if node.net else 0
            values.append(min(1.0, max(0.0, 2.0 * (1.0 - rt / (size - 1)))))
        return sum(values) / len(values) if values else 1.0


_CDF_CACHE = {}


def _bucket_fractions(median, sigma):
    key = (round(median, 6), sigma)
    cached = _CDF_CACHE.get(key)
    if cached is None:
        cached = tuple(lognormal_cdf(le, median, sigma) for le in HISTOGRAM_BUCKETS)
        if len(_CDF_CACHE) > 1000:
            _CDF_CACHE.clear()
        _CDF_CACHE[key] = cached
    return cached


def mode_from_env(env):
    """The transport mode a node started with ``env`` runs (libp2p_only without ANT_TRANSPORT_MODE)."""
    mode = (env or {}).get(MODE_ENV) or LIBP2P_ONLY
    if mode not in MODES:
        raise AntctlError('invalid value %r for %s: expected one of %s' % (mode, MODE_ENV, ', '.join(MODES)))
    return mode


def _version_tuple(version):
    parts = []
    for piece in str(version).split('-')[0].split('.'):
        try:
            parts.append(int(piece))
        except ValueError:
            parts.append(0)
    return tuple(parts)


__all__ = ['AntctlError', 'FaultError', 'Fleet', 'SimConfig', 'HISTOGRAM_BUCKETS', 'make_peer_id']
