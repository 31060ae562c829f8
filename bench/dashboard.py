"""Dashboard benchmark: /status at 50 and 1,000 nodes, and 50 WebSocket clients at once.

For each fleet size it fills a SQLite ledger through the ledger's own writes (hosts x nodes, a
quarter of the hosts migrated, a quarter dual-stack), starts a stub Prometheus that answers the
dashboard's queries over HTTP, and the service (uvicorn, in this process, on a free port). It prints

* GET /status: median, p95 and max over --requests sequential requests (one keep-alive client);
  /status serves the document the poller built, so this is the serving cost;
* the rebuild: one ledger snapshot (the status command's reads) plus building and serialising the
  document, median of --repeat runs, which is what a ledger change costs the server (and the
  periodic full refresh that also reads every node row for the per-host health counts);
* 50 WebSocket clients (--clients): all connected and holding the first document, then one ledger
  event: the time until every client has the update (median / max over clients), and /status
  latency measured while they are connected.

    .venv/bin/python bench/dashboard.py [--sizes 10x5,40x25] [--requests 300] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import websockets

from ant_network_migration_common import collection

# The collection as ansible-playbook finds it (ansible.cfg's collections_path: ./collections).
collection.install()

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ant_network_migration_dashboard import status, testing


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def ms(seconds):
    return f'{1000 * seconds:7.2f} ms'


def time_status(client, url, requests):
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url + '/status')
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
    return times


def time_rebuild(running, repeat, with_health):
    service = running.service
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        data, error = service.ledger.snapshot(service.ledger_state['data'], with_health=with_health)
        assert error is None, error
        doc = status.build(dict(service.ledger_state, data=data), service.prometheus_state, service.history)
        status.dumps(doc)
        times.append(time.perf_counter() - started)
    return times


async def websocket_fanout(running, ledger_path, clients, url):
    connections = [await websockets.connect(running.ws_url, max_size=2 ** 24) for _ in range(clients)]
    try:
        for ws in connections:
            first = json.loads(await ws.recv())
            assert first['type'] == 'status'
        handle = ledger_lib.open_ledger(str(ledger_path))
        handle.set_pause('benchmark', 'bench')
        written = time.perf_counter()
        handle.close()

        async def until_paused(ws):
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if message['type'] == 'status' and message['status']['flags']['paused']:
                    return time.perf_counter() - written

        latencies = await asyncio.gather(*(until_paused(ws) for ws in connections))
        # /status while every client is connected
        async with httpx.AsyncClient() as client:
            during = []
            for _ in range(50):
                started = time.perf_counter()
                response = await client.get(url + '/status')
                during.append(time.perf_counter() - started)
                assert response.status_code == 200
        return latencies, during
    finally:
        for ws in connections:
            await ws.close()


def run_size(hosts, nodes, args):
    with tempfile.TemporaryDirectory(prefix='dashboard-bench-') as tmp:
        ledger_path = Path(tmp) / 'ledger.sqlite3'
        started = time.perf_counter()
        testing.fill_ledger(ledger_path, hosts=hosts, nodes_per_host=nodes, migrated_hosts=hosts // 4,
                            dual_hosts=hosts // 4)
        fill = time.perf_counter() - started
        with testing.StubPrometheus() as prometheus, \
                testing.RunningService(str(ledger_path), prometheus.url, poll_interval=1.0,
                                       prometheus_interval=5.0) as running:
            with httpx.Client() as client:
                doc = client.get(running.url + '/status').json()
                assert doc['migration']['total'] == hosts * nodes, doc['missing']
                size = len(client.get(running.url + '/status').content)
                time_status(client, running.url, 20)  # warm-up
                serving = time_status(client, running.url, args.requests)
            rebuild = time_rebuild(running, args.repeat, with_health=False)
            full = time_rebuild(running, args.repeat, with_health=True)
            latencies, during = asyncio.run(websocket_fanout(running, ledger_path, args.clients, running.url))
    total = hosts * nodes
    print(f'\n{total} nodes ({hosts} hosts x {nodes}); ledger filled in {fill:.1f} s; /status document '
          f'{size / 1024:.0f} KiB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs')
    print(f'  GET /status ({args.requests} requests): median {ms(statistics.median(serving))}, '
          f'p95 {ms(percentile(serving, 0.95))}, max {ms(max(serving))}')
    print(f'  rebuild after a ledger change (snapshot + document + JSON, {args.repeat} runs): '
          f'median {ms(statistics.median(rebuild))}, max {ms(max(rebuild))}')
    print(f'  periodic full refresh with per-node health (every 15 s): median {ms(statistics.median(full))}, '
          f'max {ms(max(full))}')
    print(f'  {args.clients} WebSocket clients, one ledger event -> update at every client: '
          f'median {ms(statistics.median(latencies))}, max {ms(max(latencies))} (poll interval 1 s)')
    print(f'  GET /status with {args.clients} clients connected: median {ms(statistics.median(during))}, '
          f'p95 {ms(percentile(during, 0.95))}')
    return {'nodes': total, 'status_median': statistics.median(serving), 'rebuild_median': statistics.median(rebuild)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='10x5,40x25', help='HOSTSxNODES,... (default: 50 and 1,000 nodes)')
    parser.add_argument('--requests', type=int, default=300)
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--clients', type=int, default=50)
    args = parser.parse_args()
    results = []
    for size in args.sizes.split(','):
        hosts, nodes = (int(x) for x in size.lower().split('x'))
        results.append(run_size(hosts, nodes, args))
    biggest = max(results, key=lambda r: r['nodes'])
    verdict = 'meets' if max(biggest['status_median'], biggest['rebuild_median']) < 0.05 else 'MISSES'
    print(f'\ntarget: /status under 50 ms at {biggest["nodes"]} nodes: {verdict} it '
          f'(served {ms(biggest["status_median"]).strip()}, rebuilt {ms(biggest["rebuild_median"]).strip()})')


if __name__ == '__main__':
    main()
