"""Simulator load benchmark: 50 hosts x 20 nodes scraped by Prometheus every 2 s.

Prints the simulator's CPU use over a steady-state window (share of one core, from
/proc/<pid>/stat), the scrape rate it served, CPU milliseconds per scrape, and the start-up
time of the demo-size fleet (10 x 5) and of the 1,000-node fleet.

    .venv/bin/python bench/sim_load.py [--hosts 50] [--nodes 20] [--window 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from ant_fleet_sim.testing import SimStack

CLK_TCK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as fh:
        fields = fh.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def startup_time(directory, hosts, nodes):
    started = time.monotonic()
    with SimStack(directory, hosts=hosts, nodes_per_host=nodes, prometheus=False, tick=1.0):
        elapsed = time.monotonic() - started
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, default=50)
    parser.add_argument('--nodes', type=int, default=20)
    parser.add_argument('--window', type=float, default=30.0, help='steady-state measurement window, seconds')
    parser.add_argument('--warmup', type=float, default=10.0, help='seconds after all targets are up')
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix='sim-bench-') as tmp:
        demo = startup_time(os.path.join(tmp, 'demo'), 10, 5)
        print('demo fleet (10 x 5) start-up: %.2f s (until every metrics port listens)' % demo)

        started = time.monotonic()
        with SimStack(os.path.join(tmp, 'big'), hosts=args.hosts, nodes_per_host=args.nodes, tick=1.0,
                      ready_delay=3.0) as stack:
            up = time.monotonic() - started
            pid = stack.info['pid']
            total = args.hosts * args.nodes
            print('%d-node fleet start-up: %.2f s (simulator and Prometheus ready)' % (total, up))
            stack.wait_targets_up(timeout=120)
            print('all %d targets up after %.1f s' % (total + 1, time.monotonic() - started))
            time.sleep(args.warmup)  # steady state: let Prometheus settle its scrape offsets
            scrapes0 = stack.client.get('/api/health')['scrapes']
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(args.window)
            cpu1, t1 = cpu_seconds(pid), time.monotonic()
            scrapes1 = stack.client.get('/api/health')['scrapes']
            down = stack.query_value('count(up{job="ant_node"} == 0)', default=0.0)
            duration = stack.query_value(
                'avg(scrape_duration_seconds{job="ant_node"})', default=float('nan'))
        elapsed = t1 - t0
        cpu = (cpu1 - cpu0) / elapsed
        scrapes = (scrapes1 - scrapes0) / elapsed
        print('steady state over %.0f s: simulator CPU %.1f %% of one core' % (elapsed, 100 * cpu))
        print('scrapes served: %.0f /s (expected %.0f /s for %d nodes every 2 s)' % (scrapes, total / 2.0, total))
        print('CPU per scrape: %.3f ms (including the model ticks)' % (1000 * cpu / scrapes if scrapes else 0))
        print('targets down at the end: %d; mean scrape duration seen by Prometheus: %.1f ms'
              % (down, 1000 * duration))
        verdict = 'OK' if cpu < 0.5 else 'OVER BUDGET'
        print('budget: < 50 %% of one core -> %s' % verdict)
        return 0 if cpu < 0.5 else 1


if __name__ == '__main__':
    sys.exit(main())
