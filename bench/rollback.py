"""Fast rollback of a 1,000-node simulated fleet (50 hosts x 20 nodes), against a baseline.

Both runs start from every node in dual_stack and end with every node in libp2p_only (checked).
Printed per run: wall time, controller CPU (user + system of ansible-playbook and its workers),
and the ratios of the collection's fast rollback against the baseline, measured in the same
invocation on the same machine.

- collection: playbooks/rollback.yml -e strategy=fast (transport_mode, every node of a host in one
  module call, all hosts in parallel up to --forks), with the ledger and the migration_tracker.
- baseline: bench/baseline_rollback.yml - one task per node, node by node, default forks (5).

    .venv/bin/python bench/rollback.py [--hosts 50] [--nodes 20] [--forks 50] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ant_fleet_sim.testing import SimStack, wait_for

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def all_dual_stack(stack):
    for host in stack.host_names:
        names = [n['service_name'] for n in stack.antctl_status(host)['nodes']]
        stack.set_mode(host, names, 'dual_stack')
    wait_for(lambda: all(n['mode'] == 'dual_stack' and n['ready'] for n in stack.fleet()['nodes']),
             timeout=300, what='every node ready in dual_stack')


def run(args, env, label):
    cpu0, t0 = children_cpu(), time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit('%s failed (rc=%d)' % (label, proc.returncode))
    return wall, cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, default=50)
    parser.add_argument('--nodes', type=int, default=20)
    parser.add_argument('--forks', type=int, default=50)
    parser.add_argument('--ready-delay', type=float, default=2.0, help='seconds a restarted node takes to be ready')
    parser.add_argument('--skip-baseline', action='store_true')
    args = parser.parse_args(argv)
    total = args.hosts * args.nodes

    with tempfile.TemporaryDirectory(prefix='rollback-bench-') as tmp:
        tmp = Path(tmp)
        with SimStack(tmp / 'fleet', hosts=args.hosts, nodes_per_host=args.nodes, prometheus=False,
                      ready_delay=args.ready_delay, tick=1.0) as stack:
            inventory = tmp / 'inventory'
            inventory.mkdir()
            (inventory / 'hosts.yml').write_text(Path(stack.inventory).read_text())
            (inventory / 'group_vars').symlink_to(ROOT / 'inventories' / 'sim' / 'group_vars')
            env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'),
                       ANT_MIGRATION_LEDGER=str(tmp / 'ledger.sqlite3'), ANSIBLE_NOCOLOR='1')
            print('fleet: %d hosts x %d nodes = %d nodes, ready delay %.1f s, %d cores'
                  % (args.hosts, args.nodes, total, args.ready_delay, os.cpu_count()))

            all_dual_stack(stack)
            wall, cpu = run([str(BIN / 'ansible-playbook'), 'playbooks/rollback.yml', '-i', str(inventory),
                             '-e', 'strategy=fast', '-e', 'target=libp2p_only', '-f', str(args.forks)],
                            env, 'collection fast rollback')
            assert all(n['mode'] == 'libp2p_only' for n in stack.fleet()['nodes'])
            print('collection fast rollback (forks %d): wall %.1f s, controller CPU %.1f s, SLA 300 s -> %s'
                  % (args.forks, wall, cpu, 'met' if wall < 300 else 'MISSED'))
            if args.skip_baseline:
                return
            all_dual_stack(stack)
            # The baseline is a plain playbook: no migration_tracker, Ansible's default forks (5).
            plain_cfg = tmp / 'plain.cfg'
            plain_cfg.write_text('[defaults]\ncollections_path = %s\nhost_key_checking = False\n'
                                 % (ROOT / 'collections'))
            base_env = dict(env, ANSIBLE_CONFIG=str(plain_cfg))
            b_wall, b_cpu = run([str(BIN / 'ansible-playbook'), 'bench/baseline_rollback.yml', '-i', str(inventory),
                                 '-f', '5'], base_env, 'baseline rollback')
            assert all(n['mode'] == 'libp2p_only' for n in stack.fleet()['nodes'])
            print('baseline node-by-node rollback (forks 5): wall %.1f s, controller CPU %.1f s' % (b_wall, b_cpu))
            print('ratio baseline/collection: wall %.1fx, controller CPU %.1fx' % (b_wall / wall, b_cpu / cpu))


if __name__ == '__main__':
    main()
