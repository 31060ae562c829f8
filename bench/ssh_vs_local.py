"""Wall time of canary, a wave and a fast rollback over SSH vs the local connection, same fleet.

    .venv/bin/python bench/ssh_vs_local.py [--hosts 3] [--nodes 3] [--wave 60] [--module-only]

First one module task (transport_info on every host) on a local and an SSH fleet side by side,
rounds interleaved; then the three playbook passes, local fleet first, then the SSH fleet.

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

from ant_fleet_sim.testing import SimStack  # noqa: E402


def module_task(stack):
    """Wall time of one transport_info task on every host of ``stack`` (ad-hoc `ansible fleet -m ...`)."""
    argv = [str(Path(sys.executable).parent / 'ansible'), 'fleet', '-i', str(stack.inventory), '-m',
            'autonomi.network_migration.transport_info', '-a',
            'antctl_path={{ ant_antctl_path }} unit_dir={{ ant_systemd_unit_dir }} '
            'systemctl_path={{ ant_systemctl_path }}', '-e', 'ansible_become={{ migration_become }}']
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=300)
    if proc.returncode != 0:
        raise SystemExit('transport_info failed:\n%s' % (proc.stdout[-2000:] + proc.stderr[-2000:]))
    return time.monotonic() - start


def module_rounds(hosts, nodes, rounds):
    """One module task, local and SSH fleets side by side, rounds interleaved (the machine's load
    drifts; interleaving lets both see the same). Returns {how: [seconds, ...]}."""
    out = {'local': [], 'ssh': []}
    with tempfile.TemporaryDirectory(prefix='bench-ssh-') as tmp:
        with SimStack(Path(tmp) / 'local', hosts=hosts, nodes_per_host=nodes, prometheus=False) as local, \
                SimStack(Path(tmp) / 'ssh', hosts=hosts, nodes_per_host=nodes, prometheus=False, ssh=True) as ssh:
            for i in range(rounds):
                order = [('local', local), ('ssh', ssh)]
                for how, stack in order if i % 2 == 0 else order[::-1]:
                    out[how].append(module_task(stack))
    return out


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
    parser.add_argument('--rounds', type=int, default=8, help='interleaved rounds of the single module task')
    parser.add_argument('--module-only', action='store_true', help='only the single module task')
    args = parser.parse_args()
    rounds = module_rounds(args.hosts, args.nodes, args.rounds)
    print('one transport_info task on %d hosts x %d nodes, %d interleaved rounds (s):' % (
        args.hosts, args.nodes, args.rounds))
    for how, times in rounds.items():
        print('  %-5s median %5.2f  min %5.2f  %s' % (how, statistics.median(times), min(times),
                                                     ' '.join('%.1f' % t for t in times)))
    if args.module_only:
        return
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
