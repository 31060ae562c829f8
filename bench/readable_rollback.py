"""The fast rollback's two orders at 1,000 nodes: its time and the client reads it cost (issue 26, item 8).

A simulated fleet (default 50 hosts x 20 nodes, 2 s to ready, clients reading 300 records a second) is put
in dual_stack and recorded in a ledger (playbooks/reconcile.yml -e fix=true, as an operator's ledger knows
it), then rolled back to libp2p_only by ``playbooks/rollback.yml`` in each order, interleaved:

- readable (the default): the hosts in as few rounds as keep a member of every close group up, each round
  waiting only for its own nodes' readiness;
- all_at_once (the emergency order): every host in one round.

Printed per run: the wall time from ansible-playbook's start to every node libp2p_only and ready, the rounds,
the client reads failed in that window and their share, the load average. No figure is asserted.

    .venv/bin/python bench/readable_rollback.py [--size 50x20] [--repeat 2] [--forks 50] [--ready-delay 2]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ant_network_migration_common import collection

collection.install()

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rollback import set_fleet_mode  # noqa: E402  (bench/rollback.py: the fleet switched the collection's way)

from ant_fleet_sim.testing import SimStack, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ORDERS = ('readable', 'all_at_once')


def load():
    return os.getloadavg()[0]


def playbook(stack, inventory, ledger, name, *extra, forks=50):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1', ANT_MIGRATION_LEDGER=ledger,
               ANT_MIGRATION_LEDGER_INIT='true', ANT_MIGRATION_OPERATOR='bench')
    argv = [str(BIN / 'ansible-playbook'), 'playbooks/%s' % name, '-i', str(inventory), '-f', str(forks)]
    for item in extra:
        argv += ['-e', item]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)


def one_run(stack, inventory, tmp, order, forks):
    ledger = str(tmp / ('ledger-%s-%d.sqlite3' % (order, time.time_ns())))
    set_fleet_mode(stack, 'dual_stack')
    recorded = playbook(stack, inventory, ledger, 'reconcile.yml', 'fix=true', forks=forks)
    if recorded.returncode:
        raise SystemExit('reconcile failed:\n' + recorded.stdout[-3000:] + recorded.stderr[-2000:])
    before, load_before, started = stack.client_reads(), load(), time.monotonic()
    run = playbook(stack, inventory, ledger, 'rollback.yml', 'rollback_order=%s' % order,
                   'reason=bench readable rollback', forks=forks)
    wait_for(lambda: all(n['mode'] == 'libp2p_only' and n['ready'] for n in stack.fleet()['nodes']),
             timeout=600, interval=0.5, what='every node libp2p_only and ready')
    wall = time.monotonic() - started
    after = stack.client_reads()
    rounds = re.search(r'in (\d+) round\(s\)', run.stdout)
    failed, total = after['failed'] - before['failed'], after['total'] - before['total']
    return {'order': order, 'rc': run.returncode, 'wall': wall, 'rounds': int(rounds.group(1)) if rounds else None,
            'failed': failed, 'total': total, 'share': failed / total if total else 0.0,
            'load': (load_before, load()), 'tail': '' if run.returncode == 0 else run.stdout[-2000:]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', default='50x20')
    parser.add_argument('--repeat', type=int, default=2)
    parser.add_argument('--forks', type=int, default=50)
    parser.add_argument('--ready-delay', type=float, default=2.0)
    args = parser.parse_args()
    hosts, per_host = (int(x) for x in args.size.split('x'))
    print('readable vs all-at-once fast rollback: %d hosts x %d nodes, ready delay %.1f s, forks %d, 2 cores, '
          'load %.1f' % (hosts, per_host, args.ready_delay, args.forks, load()), flush=True)
    with tempfile.TemporaryDirectory(prefix='bench-readable-') as tmp_name:
        tmp = Path(tmp_name)
        with SimStack(tmp / 'sim', hosts=hosts, nodes_per_host=per_host, ready_delay=args.ready_delay,
                      prometheus=False) as stack:
            inventory = tmp / 'inventory'
            inventory.mkdir()
            (inventory / 'hosts.yml').write_text(Path(stack.inventory).read_text())
            (inventory / 'group_vars').symlink_to(ROOT / 'inventories' / 'sim' / 'group_vars')
            results = []
            for i in range(args.repeat):
                for order in ORDERS if i % 2 == 0 else tuple(reversed(ORDERS)):
                    r = one_run(stack, inventory, tmp, order, args.forks)
                    results.append(r)
                    print('  %-12s rc %d  %5.1f s  rounds %s  client reads failed %7.1f of %7.1f (%5.2f %%)  '
                          'load %.1f -> %.1f' % (order, r['rc'], r['wall'], r['rounds'], r['failed'], r['total'],
                                                 100 * r['share'], *r['load']), flush=True)
                    if r['rc']:
                        print(r['tail'])
            for order in ORDERS:
                mine = [r for r in results if r['order'] == order]
                print('%-12s median %.1f s, client reads failed median %.2f %% (%d runs, %d succeeded)'
                      % (order, statistics.median(r['wall'] for r in mine),
                         100 * statistics.median(r['share'] for r in mine), len(mine),
                         sum(1 for r in mine if r['rc'] == 0)))
            walls = {o: statistics.median(r['wall'] for r in results if r['order'] == o) for o in ORDERS}
            print('ratio readable / all_at_once wall: %.2f (SLA 300 s)' % (walls['readable'] / walls['all_at_once']))


if __name__ == '__main__':
    main()
