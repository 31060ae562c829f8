"""One wave batch with its gate, against the one-liner switching the same hosts, same run.

A simulated fleet with its Prometheus and the collection's alert rules (tests/scenarios'
harness: the monitoring role installs them, then the recording rules fill one gate window).
``rollout.yml -e wave=P`` with one batch (``wave_batches: [B]``, canary not required) switches
whole hosts to dual_stack, waits for readiness, soaks and asks the gate; then the same hosts are
put back and switched by the one-liner with its readiness wait (bench/oneliner_rollback.yml with
target=dual_stack, --limit to those hosts). CPU split as in bench/rollback.py.

    .venv/bin/python bench/wave.py [--hosts 10] [--nodes 20] [--wave 50] [--forks 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests' / 'scenarios'))

from rollback import BIN, ROOT, Accounting, fmt, measure, set_fleet_mode, write_inventory  # noqa: E402
from scenario_harness import Fleet  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, default=10)
    parser.add_argument('--nodes', type=int, default=20)
    parser.add_argument('--wave', type=int, default=50, help='percent of the fleet the wave brings to dual_stack')
    parser.add_argument('--forks', type=int, default=50)
    args = parser.parse_args(argv)
    batch_hosts = max(1, args.hosts * args.wave // 100)
    with tempfile.TemporaryDirectory(prefix='wave-bench-') as tmp:
        tmp = Path(tmp)
        with Fleet(tmp / 'fleet', hosts=args.hosts, nodes_per_host=args.nodes, ready_delay=2.0, tick=1.0,
                   startup_timeout=600) as fleet:
            stack = fleet.stack
            acct = Accounting(tmp, stack)
            write_inventory(tmp, stack, acct, inventory=fleet.inventory_dir)
            print('wave batch benchmark: %d hosts x %d nodes, wave %d %% in one batch of %d hosts, forks %d, load %.1f'
                  % (args.hosts, args.nodes, args.wave, batch_hosts, args.forks, os.getloadavg()[0]), flush=True)
            argv = fleet.playbook_args('rollout.yml', 'wave=%d' % args.wave, 'wave_require_canary=false',
                                       '{"wave_batches": [%d]}' % batch_hosts) + ['-f', str(args.forks)]
            wave = measure('wave batch', argv, fleet.env(), stack, acct, lambda n: True)
            print(fmt(wave, batch_hosts), flush=True)
            moved = sorted({n['host'] for n in stack.fleet()['nodes'] if n['mode'] == 'dual_stack'})
            print('hosts in dual_stack after the wave: %d' % len(moved))
            if not wave['ok'] or not moved:
                return 1
            set_fleet_mode(stack, 'libp2p_only', hosts=moved)
            plain = tmp / 'plain.cfg'
            plain.write_text('[defaults]\ncollections_path = %s\nhost_key_checking = False\n' % (ROOT / 'collections'))
            env = dict(os.environ, ANSIBLE_CONFIG=str(plain), ANSIBLE_NOCOLOR='1')
            argv = [str(BIN / 'ansible-playbook'), 'bench/oneliner_rollback.yml', '-i', str(fleet.inventory_dir),
                    '-e', 'target=dual_stack', '-e', 'wait=metrics', '-f', str(args.forks), '--limit', ','.join(moved)]
            one = measure('plain', argv, env, stack, acct,
                          lambda n: (n['mode'] == 'dual_stack') == (n['host'] in moved))
            print(fmt(one, len(moved)), flush=True)
            print('ratio wave batch/one-liner+wait: wall %.2f  controller CPU %.2f  module CPU %.2f '
                  '(the wave also soaks wave_soak_seconds and asks the gate)' % (
                      wave['wall'] / one['wall'], wave['controller'] / one['controller'],
                      wave['modules'] / one['modules'] if one['modules'] else float('nan')))
            return 0 if one['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
