"""The seed's production scenarios 1 and 4, and a controller killed mid-wave.

Scenarios 2 (partition during migration) and 3 (rapid rollback) are in test_rollout_and_rollback.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

LIBP2P = 'libp2p_only'
DUAL = 'dual_stack'
CLI = str(Path(sys.executable).parent / 'ant-network-migration')

CLIENT_SUCCESS = ('sum(increase(ant_sim_client_requests_total{outcome="ok"}[%ds])) '
                  '/ sum(increase(ant_sim_client_requests_total[%ds]))')


def hosts_in_mode(fleet, mode):
    per_host = {}
    for node, m in fleet.modes().items():
        per_host.setdefault(node.split('/')[0], set()).add(m)
    return sorted(h for h, modes in per_host.items() if modes == {mode})


def test_canary_failure_blocks_rollout(fleet):
    """Scenario 1: iroh fails on the canaries once they switch."""
    fleet.stack.fault('transport', transport='iroh', error_rate=0.3, mode=DUAL)
    run = fleet.play('canary.yml')
    assert run.rc != 0, run.tail()
    assert 'The canary FAILED' in run.output, run.tail()
    # The canaries are back on libp2p_only (the simulator's truth and antctl agree).
    assert set(fleet.modes().values()) == {LIBP2P}
    for node in fleet.antctl_modes('sim-host-01').values():
        assert node['status'] == 'Running'
    # The ledger says why: the check that tripped, its measured value and its threshold (node_health
    # sees the node's own iroh error rate within seconds; the gate's rule would fire a window later).
    ledger = fleet.ledger()
    try:
        verdict = ledger.canary_verdict()
    finally:
        ledger.close()
    assert verdict['verdict'] == 'failed'
    reason = verdict.get('reason') or ''
    assert 'iroh error rate' in reason and 'is above 5.0%' in reason, verdict
    states = fleet.ledger_states()
    assert {states['sim-host-01/antnode%d' % i] for i in range(1, 5)} == {'rolled_back'}

    # The rollout then refuses and touches no node.
    uptimes = fleet.uptimes()
    refused = fleet.play('rollout.yml', 'wave=25')
    assert refused.rc != 0
    assert 'the canary has not passed' in refused.output and 'failed' in refused.output, refused.tail()
    assert set(fleet.modes().values()) == {LIBP2P}
    after = fleet.uptimes()
    assert all(after[n] >= uptimes[n] for n in uptimes), 'a node restarted although the rollout refused'


def test_gradual_migration_under_load(fleet):
    """Scenario 4: waves 5 -> 25 -> 50 -> 75 -> 100 with client traffic; reads stay >= 99.9 %."""
    start = fleet.stack.client_reads()
    started = time.monotonic()
    canary = fleet.play('canary.yml')
    assert canary.rc == 0, canary.tail()
    for wave in (5, 25, 50, 75, 100):
        run = fleet.play('rollout.yml', 'wave=%d' % wave)
        assert run.rc == 0, 'wave %d: %s' % (wave, run.tail())
    end = fleet.stack.client_reads()
    ok = end['ok'] - start['ok']
    total = end['total'] - start['total']
    assert total > 1000
    assert ok / total >= 0.999, 'client read success %.5f over the migration' % (ok / total)
    # Throughout, not only on average: the worst of the 10 s windows that cover the migration, every
    # one inside it (the fleet is shared by the module: what earlier tests did to it stays outside).
    seconds = max(int(time.monotonic() - started) - 10, 10)
    worst = fleet.stack.query_value('min_over_time((%s)[%ds:2s])' % (CLIENT_SUCCESS % (10, 10), seconds))
    assert worst is not None and worst >= 0.999, worst
    # Every node ends dual_stack_stable, and runs dual_stack.
    assert set(fleet.ledger_states().values()) == {'dual_stack_stable'}
    assert set(fleet.modes().values()) == {DUAL}
    # The progress report shows iroh's latency improvement over libp2p.
    proc = subprocess.run([CLI, '--ledger', str(fleet.ledger_path), '--prometheus-url', fleet.stack.prometheus_url,
                           'metrics', '--format', 'json'], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    iroh, libp2p = report['transports']['iroh'], report['transports']['libp2p']
    assert iroh['latency_p95'] < libp2p['latency_p95'], report['transports']
    assert iroh['latency_p50'] < libp2p['latency_p50'], report['transports']
    assert report['migration']['dual_stack_coverage_percent'] == 100.0


def test_controller_killed_mid_wave_then_rerun(fleet):
    canary = fleet.play('canary.yml', 'canary_rollback_drill=false')
    assert canary.rc == 0, canary.tail()
    proc = fleet.start_play('rollout.yml', 'wave=100', '{"wave_batches": [1]}')
    # Kill the controller once the second host of the wave has switched.
    fleet.wait_until(lambda: len(hosts_in_mode(fleet, DUAL)) >= 3, timeout=300, what='two wave hosts switched')
    fleet.kill(proc)
    # The ledger opens; every node it recorded past libp2p_only really runs dual_stack.
    states = fleet.ledger_states()
    modes = fleet.modes()
    recorded = [n for n, s in states.items() if s in ('dual_stack_testing', 'dual_stack_stable')]
    assert len(recorded) >= 8
    assert all(modes[n] == DUAL for n in recorded), {n: modes[n] for n in recorded}
    switched_before = [n for n, m in modes.items() if m == DUAL]
    uptimes = fleet.uptimes()

    # A re-run resumes (the dead controller's lock is recovered) without restarting a node twice.
    rerun = fleet.play('rollout.yml', 'wave=100')
    assert rerun.rc == 0, rerun.tail()
    assert set(fleet.modes().values()) == {DUAL}
    after = fleet.uptimes()
    restarted_twice = [n for n in switched_before if after[n] < uptimes[n]]
    assert not restarted_twice, restarted_twice
