"""Wall time of canary, a wave and a fast rollback over SSH vs the local connection, same fleet.

    .venv/bin/python bench/ssh_vs_local.py [--hosts 3] [--nodes 3] [--wave 60]

Both runs use the scenario harness (tests/scenarios/scenario_harness.py): the committed simulated
group_vars, a real Prometheus with the collection's rules, a ledger of their own. The SSH run
reaches every host through ant_fleet_sim.ssh (sshd on loopback, one account per host, become
through sudo, /usr/bin/python3, pipelining); it needs root. Prints one row per pass.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tests' / 'scenarios'))
sys.path.insert(0, str(ROOT / 'collections'))

from scenario_harness import Fleet  # noqa: E402


def module_round(fleet, rounds=5):
    """Median wall time of one transport_info task on every host (ad-hoc `ansible fleet -m ...`)."""
    argv = [str(Path(sys.executable).parent / 'ansible'), 'fleet', '-i', str(fleet.inventory_dir), '-m',
            'autonomi.network_migration.transport_info', '-a',
            'antctl_path={{ ant_antctl_path }} unit_dir={{ ant_systemd_unit_dir }} '
            'systemctl_path={{ ant_systemctl_path }}', '-e', 'ansible_become={{ migration_become }}']
    times = []
    for _ in range(rounds):
        start = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, env=fleet.env(), cwd=ROOT, timeout=300)
        times.append(time.monotonic() - start)
        if proc.returncode != 0:
            raise SystemExit('transport_info failed:\n%s' % (proc.stdout[-2000:] + proc.stderr[-2000:]))
    return statistics.median(times)


def passes(fleet, wave):
    out = {'transport_info (ad hoc)': module_round(fleet)}
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
    print('%-24s %8s %8s %9s' % ('pass', 'local', 'ssh', 'ssh/local'))
    for name in results['local']:
        local, ssh = results['local'][name], results['ssh'][name]
        print('%-24s %8.1f %8.1f %9.2f' % (name, local, ssh, ssh / local))


if __name__ == '__main__':
    main()
