"""An ant-node stand-in that is a real process: the ``ExecStart`` of a node unit under a real systemd.

tests/realsystemd/ boots a systemd in a container and installs node services whose process is this
module. What the collection relies on behaves as the contract says (docs/node-interface.md): the mode
comes from ``ANT_TRANSPORT_MODE`` in the process environment (libp2p_only without it; an invalid value
makes the process exit 1, so the unit fails), the node serves OpenMetrics on ``127.0.0.1:<port>``
(``/metrics``, ``/metadata``; ``ant_fleet_sim.metrics.render_openmetrics``), its counters start at zero
with the process, and it is ready (more than 5 connected peers) ``--ready-delay`` seconds after it starts.

Peers are the other node processes of the same machine: each announces itself in ``--peers-dir``
(``<service>.json``: pid, mode) and counts the live ones it shares a transport with (libp2p_only and
iroh_only share none), which is the simulator's network rule on one host. Its identity is an Ed25519
key pair made at the first start and kept in ``--data-dir`` (as ant-node keeps its secret key); the peer
id is written there too, for the host's antctl stand-in (``unitctl``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ansible_collections.autonomi.network_migration.plugins.module_utils._kademlia import peer_id_from_ed25519
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODE_TRANSPORTS, TRANSPORTS

from .metrics import OPENMETRICS_CONTENT_TYPE, render_metadata, render_openmetrics
from .model import MAX_CONNECTED, TRANSPORT_SHARE, AntctlError, Counters, _bucket_fractions
from .model import mode_from_env as _mode_from_env

LATENCY_MEDIAN = {'libp2p': 0.080, 'iroh': 0.055}
BASE_ERROR_RATE = 0.002


def identity(data_dir):
    """The node's peer id: its Ed25519 secret is made at the first start and kept in the data directory."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    data_dir.mkdir(parents=True, exist_ok=True)
    secret_file = data_dir / 'secret-key'
    if not secret_file.exists():
        secret_file.write_bytes(os.urandom(32))
        secret_file.chmod(0o600)
    key = Ed25519PrivateKey.from_private_bytes(secret_file.read_bytes())
    peer_id = peer_id_from_ed25519(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    (data_dir / 'peer-id').write_text(peer_id + '\n')
    return peer_id


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


class Node:
    def __init__(self, args, mode, peer_id):
        self.args = args
        self.mode = mode
        self.peer_id = peer_id
        self.started = time.monotonic()
        self.last = self.started
        self.counters = Counters()
        self.lock = threading.Lock()
        self.peers_dir = Path(args.peers_dir)
        self.peers_dir.mkdir(parents=True, exist_ok=True)
        self.me = self.peers_dir / ('%s.json' % args.name)
        self.me.write_text(json.dumps({'pid': os.getpid(), 'mode': mode, 'peer_id': peer_id}))

    def peers(self):
        """The other live nodes of the machine: [(service, mode)]."""
        out = []
        for path in self.peers_dir.glob('*.json'):
            if path == self.me:
                continue
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if _alive(int(info.get('pid') or 0)):
                out.append((path.stem, info.get('mode')))
        return out

    def figures(self):
        now = time.monotonic()
        elapsed = now - self.started
        ready = elapsed >= self.args.ready_delay
        mine = MODE_TRANSPORTS[self.mode]
        peers = self.peers()
        reachable = [m for _s, m in peers if set(MODE_TRANSPORTS.get(m, ())) & set(mine)]
        per_transport = {t: sum(1 for m in reachable if t in MODE_TRANSPORTS[m]) if t in mine else 0
                         for t in TRANSPORTS}
        connected = min(len(reachable), MAX_CONNECTED)
        if not ready:   # climbing towards the network, at most 5 peers before it is ready
            connected = min(connected, 5, int(5 * elapsed / max(self.args.ready_delay, 0.001)))
            per_transport = {t: min(n, connected) for t, n in per_transport.items()}
        with self.lock:
            self._accumulate(now, ready)
        return {
            'mode': self.mode, 'version': self.args.version, 'uptime': int(elapsed), 'connected': connected,
            'connected_t': per_transport, 'routing_table': len(reachable), 'open_connections': connected,
            'network_size': len(peers) + 1, 'records_stored': 0, 'counters': self.counters,
        }

    def _accumulate(self, now, ready):
        dt, self.last = now - self.last, now
        c = self.counters
        activity = 1.0 if ready else 0.3
        requests = self.args.request_rate * dt * activity
        for transport in TRANSPORTS:
            share = TRANSPORT_SHARE[self.mode][transport]
            if share <= 0:
                continue
            n = requests * share
            c.requests[transport]['success'] += n * (1 - BASE_ERROR_RATE)
            c.requests[transport]['error'] += n * BASE_ERROR_RATE
            for i, fraction in enumerate(_bucket_fractions(LATENCY_MEDIAN[transport], 0.45)):
                c.hist[transport][i] += n * fraction
            c.hist_sum[transport] += n * LATENCY_MEDIAN[transport]
        if TRANSPORT_SHARE[self.mode]['libp2p'] > 0:
            c.kad_ok += self.args.query_rate * dt * activity
            c.swarm_established += 0.05 * dt


def serve(node, port):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.startswith('/metrics'):
                body = render_openmetrics(node.figures()).encode()
            elif self.path.startswith('/metadata'):
                body = render_metadata(node.figures())
            elif self.path.startswith('/network_info'):
                body = json.dumps({'connected_peers': [s for s, _m in node.peers()]}).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.end_headers()
                self.wfile.write(body)
                return
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header('Content-Type', OPENMETRICS_CONTENT_TYPE)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    return ThreadingHTTPServer(('127.0.0.1', port), Handler)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='unitnode', description=__doc__.splitlines()[0])
    parser.add_argument('--name', required=True)
    parser.add_argument('--metrics-port', type=int, required=True)
    parser.add_argument('--data-dir', required=True)
    parser.add_argument('--peers-dir', default='/run/ant-nodes')
    parser.add_argument('--ready-delay', type=float, default=2.0)
    parser.add_argument('--request-rate', type=float, default=20.0)
    parser.add_argument('--query-rate', type=float, default=0.5)
    parser.add_argument('--version', default='0.4.6')
    args = parser.parse_args(argv)
    try:
        mode = _mode_from_env(os.environ)
    except AntctlError as exc:
        sys.stderr.write('antnode: %s\n' % exc)     # the unit fails, as a node that cannot start
        return 1
    node = Node(args, mode, identity(Path(args.data_dir)))
    server = serve(node, args.metrics_port)

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write('%s: %s in %s, metrics on 127.0.0.1:%d\n' % (args.name, node.peer_id, mode, args.metrics_port))
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        try:
            node.me.unlink()
        except OSError:
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
