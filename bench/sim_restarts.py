"""Simulator CPU per 1,000 node restarts: the old full recompute against the incremental bookkeeping.

Two measurements, both old and new in the same run (the machine is shared: read the ratios):

1. model: the simulator's model in this process, driven as the daemon drives it for a fast
   rollback (every node of a host restarted in a new mode by one systemctl call, the host's
   status document and registry built after the call, a model tick every 20 host calls). CPU from time.process_time().
2. daemon: a real simulator daemon (SimStack, free ports, no Prometheus) switching hosts as the
   collection does (drop-ins, then its systemctl API: daemon-reload, restart of every node);
   CPU of the daemon process from /proc/<pid>/stat.
   The old bookkeeping is selected with ANT_SIM_FULL_RECOMPUTE=1 (the daemon's other changes stay).

    .venv/bin/python bench/sim_restarts.py [--sizes 50x20,500x20] [--daemon 50x20] [--restarts 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ant_network_migration_common import collection

# The collection as ansible-playbook finds it (ansible.cfg's collections_path: ./collections).
collection.install()

from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import DROPIN_NAME
from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import dropin_text
from ant_fleet_sim.model import Fleet, SimConfig
from ant_fleet_sim.testing import SimStack, wait_for

CLK_TCK = os.sysconf('SC_CLK_TCK')
MODES = ('dual_stack', 'libp2p_only')


def proc_cpu(pid):
    with open('/proc/%d/stat' % pid) as fh:
        fields = fh.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def parse_size(text):
    hosts, nodes = text.lower().split('x')
    return int(hosts), int(nodes)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def model_run(hosts, nodes, restarts, incremental):
    """CPU seconds for ``restarts`` node restarts (host by host), and the fleet build time."""
    clock = Clock()
    t0 = time.process_time()
    fleet = Fleet(SimConfig(hosts=hosts, nodes_per_host=nodes, ready_delay=2.0, restart_time=0.5), clock=clock)
    fleet.incremental = incremental
    fleet.refresh()
    build = time.process_time() - t0
    done = 0
    t0 = time.process_time()
    round_no = 0
    while done < restarts:
        mode = MODES[round_no % 2]
        for host in fleet.hosts:
            if done >= restarts:
                break
            for node in fleet.by_host[host][:restarts - done]:
                fleet.start_node(node, env={'ANT_TRANSPORT_MODE': mode})   # systemctl restart, new drop-in
                done += 1
            # What the daemon does after one antctl call: the status document, the registry.
            for _ in range(2):
                for node in fleet.by_host[host]:
                    fleet.registry_record(node, '/state')
            clock.now += 0.05
            fleet.refresh(changed=())
            if done % (nodes * 20) == 0:   # a model tick every ~20 host calls (1 s of a fast rollback)
                clock.now += 0.01
                fleet.tick()
        round_no += 1
    return time.process_time() - t0, build


def daemon_run(tmp, hosts, nodes, restarts, old):
    env_before = os.environ.get('ANT_SIM_FULL_RECOMPUTE')
    if old:
        os.environ['ANT_SIM_FULL_RECOMPUTE'] = '1'
    else:
        os.environ.pop('ANT_SIM_FULL_RECOMPUTE', None)
    try:
        with SimStack(Path(tmp) / ('old' if old else 'new'), hosts=hosts, nodes_per_host=nodes, prometheus=False,
                      ready_delay=2.0, restart_time=0.2, tick=1.0, startup_timeout=600) as stack:
            pid = stack.info['pid']
            cpu0 = proc_cpu(pid)
            done = 0
            round_no = 0
            while done < restarts:
                mode = MODES[round_no % 2]
                for host in stack.host_names:
                    if done >= restarts:
                        break
                    # As the collection switches a host: drop-ins, daemon-reload, restart (systemctl API).
                    names = ['antnode%d' % i for i in range(1, nodes + 1)]
                    for name in names:
                        path = stack.state.unit_dir(host) / ('%s.service.d' % name) / DROPIN_NAME
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_text(dropin_text(mode))
                    for body in ({'verb': 'daemon-reload', 'units': []}, {'verb': 'restart', 'units': names}):
                        req = urllib.request.Request('%s/api/hosts/%s/systemctl' % (stack.api_url, host),
                                                     data=json.dumps(body).encode(), method='POST',
                                                     headers={'Content-Type': 'application/json'})
                        with urllib.request.urlopen(req, timeout=600) as resp:
                            resp.read()
                    done += nodes
                round_no += 1
            wait_for(lambda: stack.client.get('/api/health')['listening'] == hosts * nodes, timeout=600,
                     what='every port open again')
            return proc_cpu(pid) - cpu0
    finally:
        if env_before is None:
            os.environ.pop('ANT_SIM_FULL_RECOMPUTE', None)
        else:
            os.environ['ANT_SIM_FULL_RECOMPUTE'] = env_before


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='50x20,500x20', help='model fleets, HOSTSxNODES, comma-separated')
    parser.add_argument('--daemon', default='50x20', help='daemon fleet (empty: skip)')
    parser.add_argument('--restarts', type=int, default=1000)
    parser.add_argument('--old-restarts', type=int, default=200,
                        help='restarts measured with the old way on fleets over 2,000 nodes (then scaled)')
    args = parser.parse_args(argv)
    print('simulator CPU per 1,000 node restarts (%d cores, load %.1f)' % (os.cpu_count(), os.getloadavg()[0]))
    for size in filter(None, args.sizes.split(',')):
        hosts, nodes = parse_size(size)
        total = hosts * nodes
        new, build = model_run(hosts, nodes, args.restarts, True)
        old_n = args.restarts if total <= 2000 else min(args.restarts, args.old_restarts)
        old, _ = model_run(hosts, nodes, old_n, False)
        new_k, old_k = new * 1000.0 / args.restarts, old * 1000.0 / old_n
        print('model %4d x %-3d (%5d nodes): build %.1f s; per 1,000 restarts: old %.2f s%s, new %.2f s, '
              'ratio new/old %.3f' % (hosts, nodes, total, build, old_k,
                                      '' if old_n == args.restarts else ' (from %d)' % old_n, new_k, new_k / old_k))
    if args.daemon:
        hosts, nodes = parse_size(args.daemon)
        with tempfile.TemporaryDirectory(prefix='sim-restarts-') as tmp:
            new = daemon_run(tmp, hosts, nodes, args.restarts, old=False)
            old = daemon_run(tmp, hosts, nodes, args.restarts, old=True)
        print('daemon %d x %d: CPU per 1,000 restarts over the API: old %.2f s, new %.2f s, ratio new/old %.3f'
              % (hosts, nodes, old * 1000.0 / args.restarts, new * 1000.0 / args.restarts, new / old if old else 0))
    return 0


if __name__ == '__main__':
    sys.exit(main())
