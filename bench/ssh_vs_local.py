"""Wall time of canary, a wave and a fast rollback over SSH vs the local connection, same fleet.

    .venv/bin/python bench/ssh_vs_local.py [--hosts 3] [--nodes 3] [--wave 60]

Both runs use the scenario harness (tests/scenarios/scenario_harness.py): the committed simulated
group_vars, a real Prometheus with the collection's rules, a ledger of their own. The SSH run
reaches every host through ant_fleet_sim.ssh (sshd on loopback, one account per host, become
through sudo, /usr/bin/python3, pipelining); it needs root. Prints one row per pass.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tests' / 'scenarios'))
sys.path.insert(0, str(ROOT / 'collections'))

from scenario_harness import Fleet  # noqa: E402


def passes(fleet, wave):
    out = {}
    for name, playbook, extra in (
            ('canary', 'canary.yml', ()),
            ('wave %d%%' % wave, 'rollout.yml', ('wave=%d' % wave,)),
            ('fast rollback', 'rollback.yml', ('rollback_strategy=fast', 'target=libp2p_only', 'reason=bench'))):
        start = time.monotonic()
        run = fleet.play(playbook, *extra)
        out[name] = time.monotonic() - start
        if run.rc != 0:
            raise SystemExit('%s failed over %s:\n%s' % (name, 'ssh' if fleet.stack.ssh else 'local', run.tail()))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, default=3)
    parser.add_argument('--nodes', type=int, default=3)
    parser.add_argument('--wave', type=int, default=60)
    args = parser.parse_args()
    results = {}
    for how in ('local', 'ssh'):
        with tempfile.TemporaryDirectory(prefix='bench-ssh-') as tmp:
            with Fleet(Path(tmp), hosts=args.hosts, nodes_per_host=args.nodes, ssh=(how == 'ssh')) as fleet:
                results[how] = passes(fleet, args.wave)
    print('fleet %d hosts x %d nodes; wall time in seconds' % (args.hosts, args.nodes))
    print('%-14s %8s %8s %8s' % ('pass', 'local', 'ssh', 'ssh/local'))
    for name in results['local']:
        local, ssh = results['local'][name], results['ssh'][name]
        print('%-14s %8.1f %8.1f %8.2f' % (name, local, ssh, ssh / local))


if __name__ == '__main__':
    main()
