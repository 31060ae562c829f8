"""Trust in the rehearsal's projection: wave_planning.project_fast_rollback against a measured fast rollback.

For each shape (HOSTSxNODES[/FORKS][@READY_DELAY], default 2x4, 4x4/2, 8x3/2, 6x4/1@2: fewer forks give more
rounds, so the fixed cost and the per-round overhead can be told apart) a simulated fleet on free ports (SimStack, no
Prometheus: a fast rollback asks no gate) starts in dual_stack with a ready delay, and playbooks/rollback.yml
(fast, readable order, to libp2p_only) rolls it back through the CLI's runner, exactly as
``ant-network-migration rehearse`` does (cmd_rehearse.run_copy). Printed per shape: the measured wall time, the
projection of the model as the wave planner calls it (hosts / forks rounds, default overheads), the projection
with the readable order's rounds, and the calibrated model (services/rehearsal.MODEL) fitted on the other
shapes (leave one out), each with its error against the measurement; then the fit through all shapes.

    .venv/bin/python bench/rehearsal.py [--shapes 2x4,4x4/2,8x3/2,6x4/1@2] [--ready-delay 1.0] [--forks 20] [--repeat 1]

Prints figures only; no test asserts a time.
"""

from __future__ import annotations

import argparse
import os
import sys

from ant_network_migration_common import collection

collection.install()

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import wave_planning
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import rehearsal
from ant_network_migration_cli import cmd_rehearse, common


def fit(points):
    """Least squares of measured - rounds * p95 - controller = fixed + rounds * overhead over
    (rounds, p95, measured, hosts)."""
    n = len(points)
    xs = [r for r, _p, _m, _h in points]
    ys = [m - r * p - wave_planning.project_fast_rollback(h, 1, [0.0], per_host_overhead=0.0, rounds=1)['seconds']
          for r, p, m, h in points]
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return max(0.0, my - slope * mx), max(0.0, slope)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--shapes', default='2x4,4x4/2,8x3/2,6x4/1@2')
    parser.add_argument('--ready-delay', type=float, default=1.0)
    parser.add_argument('--forks', type=int, default=20)
    parser.add_argument('--repeat', type=int, default=1)
    args = parser.parse_args()
    settings = common.Settings(inventory=None, ledger=None, prometheus_url=None, verbosity=0)
    console = common.make_console()
    runs = []
    for shape in args.shapes.split(','):
        shape, _, ready = shape.partition('@')
        shape, _, forks = shape.partition('/')
        hosts, per_host = (int(v) for v in shape.split('x'))
        forks, ready = int(forks or args.forks), float(ready or args.ready_delay)
        for _ in range(args.repeat):
            load = os.getloadavg()[0]
            copy = cmd_rehearse.run_copy(settings, console, hosts, per_host, 'dual_stack', ready, forks, 'readable',
                                         'bench')
            rounds = wave_planning.rollback_fork_rounds(copy['nodes'], {n['host'] for n in copy['nodes']}, forks)
            runs.append({'shape': '%dx%d' % (hosts, per_host), 'forks': forks, 'ready': ready, 'hosts': hosts,
                         'per_host': per_host, 'rounds': rounds, 'measured': copy['seconds'], 'load': load,
                         'copy_p95': rehearsal.readiness(copy['copy_switch_seconds'])['ready_delay']})
    print('\norder readable; the projections take the ready delay as the measured switch p95 (as the rehearsal '
          'does); load = 1-min load average at the start')
    print('| shape | forks | ready delay | rounds | measured | planner model (err) | + readable rounds (err) | '
          'calibrated, leave one out (err) | rehearsal.MODEL (err) | copy switch p95 | load |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for i, run in enumerate(runs):
        samples, forks = [run['ready']], run['forks']
        planner = wave_planning.project_fast_rollback(run['hosts'], run['per_host'], samples, forks=forks)
        rounds = wave_planning.project_fast_rollback(run['hosts'], run['per_host'], samples, forks=forks,
                                                     rounds=run['rounds'])
        model = rehearsal.projection(run['hosts'], run['per_host'], samples, forks, rounds=run['rounds'])
        others = [(r['rounds'], r['ready'], r['measured'], r['hosts']) for j, r in enumerate(runs)
                  if j != i and (r['shape'], r['forks'], r['ready']) != (run['shape'], run['forks'], run['ready'])]
        if len({r[0] for r in others}) >= 2:
            fixed, overhead = fit(others)
            loo = wave_planning.project_fast_rollback(run['hosts'], run['per_host'], samples, forks=forks,
                                                      rounds=run['rounds'], fixed_seconds=fixed,
                                                      per_host_overhead=overhead)['seconds']
            loo_text = '%.1f s (%+.0f %%)' % (loo, 100.0 * (loo - run['measured']) / run['measured'])
        else:
            loo_text = 'n/a (needs two other round counts)'
        print('| %s | %d | %.1f s | %d | %.1f s | %.1f s (%+.0f %%) | %.1f s (%+.0f %%) | %s | %.1f s (%+.0f %%) '
              '| %.2f s | %.1f |' % (
                  run['shape'], forks, run['ready'], run['rounds'], run['measured'],
                  planner['seconds'], 100.0 * (planner['seconds'] - run['measured']) / run['measured'],
                  rounds['seconds'], 100.0 * (rounds['seconds'] - run['measured']) / run['measured'],
                  loo_text, model['seconds'], 100.0 * (model['seconds'] - run['measured']) / run['measured'],
                  run['copy_p95'], run['load']))
    if len({r['rounds'] for r in runs}) >= 2:
        fixed, overhead = fit([(r['rounds'], r['ready'], r['measured'], r['hosts']) for r in runs])
        print('\nfit through every run: fixed %.1f s + per round (switch p95 + %.1f s)' % (fixed, overhead))
        print('services/rehearsal.MODEL now: %s' % (rehearsal.MODEL,))
    return 0


if __name__ == '__main__':
    sys.exit(main())
