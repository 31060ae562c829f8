"""The operator CLI as an operator runs it: the real `ant-network-migration` command in a
subprocess, against a simulated fleet and a real Prometheus (ant_fleet_sim.testing.SimStack),
running the collection's playbooks through ansible-runner.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sim_inventory import sim_inventory_dir

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_mod
from ant_fleet_sim.systemd import configured_modes

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / 'ant-network-migration'
HOSTS, NODES = 4, 3


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    from ant_fleet_sim.testing import SimStack

    directory = tmp_path_factory.mktemp('cli-sim')
    with SimStack(directory, hosts=HOSTS, nodes_per_host=NODES, ready_delay=0.5) as sim:
        sim.inventory_dir = _inventory_dir(sim, directory / 'inventory')
        yield sim


def _inventory_dir(sim, path):
    return sim_inventory_dir(sim, path)


@pytest.fixture
def ledger_path(tmp_path):
    return tmp_path / 'ledger.sqlite3'


@pytest.fixture
def cli(stack, ledger_path):
    env = dict(os.environ, COLUMNS='200', ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'))
    for name in ('ANT_MIGRATION_LEDGER', 'MIGRATION_PROMETHEUS_URL', 'ANT_MIGRATION_INVENTORY'):
        env.pop(name, None)

    def run(*args, timeout=600, input=None, **extra_env):
        argv = [str(CLI), '--ledger', str(ledger_path), '-i', str(stack.inventory_dir), *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=dict(env, **extra_env),
                              cwd=str(ROOT), input=input)

    return run


def fleet_snapshot(stack):
    """What antctl reports for every node, minus the figures that move on their own."""
    keep = ('service_name', 'peer_id', 'status', 'version', 'pid')
    snapshot = {}
    for host in stack.host_names:
        configured = configured_modes(stack.state, host)  # the systemd drop-ins (antctl keeps no mode)
        snapshot[host] = [dict({k: node.get(k) for k in keep}, transport_mode=configured[node['service_name']])
                          for node in stack.antctl_status(host)['nodes']]
    return snapshot


def ledger_snapshot(path):
    with ledger_mod.open_ledger(str(path)) as handle:
        return handle.nodes(), handle.events(limit=10000), handle.get_flags(), handle.lock(), handle.runs(limit=100)


def seed_ledger(stack, path, dual_stack_hosts=()):
    """Switch ``dual_stack_hosts`` for real (antctl) and record the fleet in the ledger as the
    tracker would after a passed canary."""
    for host in dual_stack_hosts:
        stack.set_mode(host, [f'antnode{n}' for n in range(1, NODES + 1)], 'dual_stack')
    with ledger_mod.open_ledger(str(path)) as handle:
        items = []
        for host in stack.host_names:
            for node in stack.antctl_status(host)['nodes']:
                items.append({'host': host, 'service_name': node['service_name'], 'peer_id': node['peer_id'],
                              'to_state': 'dual_stack_stable' if host in dual_stack_hosts else 'libp2p_only'})
        handle.record_transitions(items)
        handle.set_canary_verdict('passed', hosts=list(dual_stack_hosts))


def write_plan(tmp_path, text):
    path = tmp_path / 'plan.yml'
    path.write_text(text)
    return path


def test_status_while_prometheus_is_down(stack, cli, ledger_path):
    seed_ledger(stack, ledger_path)
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.set_pause('maintenance window', 'alice')
    stack.stop_prometheus()
    # status reads the ledger alone: a Prometheus that accepts connections and never answers (the
    # worst kind of down) is never asked. (No wall-time bound: the machine's load decides that.)
    silent = socket.create_server(('127.0.0.1', 0))
    try:
        status = cli('status', '--json', MIGRATION_PROMETHEUS_URL='http://127.0.0.1:%d' % silent.getsockname()[1])
        assert status.returncode == 0, status.stderr
        silent.settimeout(0)
        with pytest.raises(BlockingIOError):
            silent.accept()
        data = json.loads(status.stdout)
        assert data['progress']['total'] == HOSTS * NODES
        assert data['flags']['paused']['reason'] == 'maintenance window'

        table = cli('status', '--detailed')
        assert table.returncode == 0 and 'PAUSED' in table.stdout and 'sim-host-04' in table.stdout

        metrics = cli('metrics', '--format', 'json')
        assert metrics.returncode == 1
        assert json.loads(metrics.stdout)['migration']['total'] == HOSTS * NODES
        assert 'unreachable' in metrics.stderr

        health = cli('health')
        assert health.returncode == 1 and 'unreachable' in health.stdout
    finally:
        silent.close()
        stack.start_prometheus()


def test_dry_run_changes_nothing(stack, cli, ledger_path, tmp_path):
    plan = write_plan(tmp_path, 'canary: {count: 1}\nbatches: [1]\nwaves: [{percent: 50}, {percent: 100}]\n')

    # A fresh migration: the ledger records nothing yet; hosts are asked (read-only) what they run.
    # (No ledger at all is refused: a mistyped --ledger must not look like a fresh migration.)
    refused = cli('start', '--plan', plan, '--dry-run')
    assert refused.returncode == 2 and 'init' in refused.stderr, refused.stdout + refused.stderr
    assert not ledger_path.exists()
    assert cli('init').returncode == 0
    before, recorded = fleet_snapshot(stack), ledger_snapshot(ledger_path)
    fresh = cli('start', '--plan', plan, '--dry-run')
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert ledger_snapshot(ledger_path) == recorded
    out = fresh.stdout
    canary, wave1, wave2 = out.split('Canary')[1].split('Wave 1')[0], out.split('Wave 1')[1].split('Wave 2')[0], \
        out.split('Wave 2')[1]
    assert 'sim-host-01' in canary
    assert 'sim-host-02' in wave1 and 'sim-host-03' not in wave1
    assert 'sim-host-03' in wave2 and 'sim-host-04' in wave2
    assert fleet_snapshot(stack) == before

    # A migration under way: sim-host-01 is dual-stack and the canary passed.
    seed_ledger(stack, ledger_path, dual_stack_hosts=['sim-host-01'])
    before, recorded = fleet_snapshot(stack), ledger_snapshot(ledger_path)
    again = cli('start', '--plan', plan, '--dry-run')
    assert again.returncode == 0, again.stdout + again.stderr
    assert 'nothing to do: the ledger records a passed canary' in again.stdout
    wave1 = again.stdout.split('Wave 1')[1].split('Wave 2')[0]
    assert 'sim-host-02' in wave1 and 'sim-host-01' not in wave1
    assert fleet_snapshot(stack) == before
    assert ledger_snapshot(ledger_path) == recorded
    stack.set_mode('sim-host-01', [f'antnode{n}' for n in range(1, NODES + 1)], 'libp2p_only')


def test_plan_with_errors_names_each(cli, tmp_path, ledger_path):
    plan = write_plan(tmp_path, 'waves: [{percent: 150}, {percent: abc}]\nrollback_policy: sometimes\n'
                                'exclude: [no-such-host]\n')
    result = cli('start', '--plan', plan, '--dry-run')
    assert result.returncode == 2
    for expected in ('waves[0].percent: 150 is greater than the maximum of 100',
                     "waves[1].percent: 'abc' is not of type 'integer'",
                     "rollback_policy: 'sometimes' is not one of ['rollback', 'freeze']"):
        assert expected in result.stderr
    assert not ledger_path.exists()


def test_pause_and_resume_through_the_playbooks(stack, cli, ledger_path, tmp_path):
    seed_ledger(stack, ledger_path)
    paused = cli('pause', '--reason', 'investigating iroh latency', '--operator', 'bob')
    assert paused.returncode == 0, paused.stdout + paused.stderr
    status = json.loads(cli('status', '--json').stdout)
    assert status['flags']['paused']['reason'] == 'investigating iroh latency'
    assert status['flags']['paused']['operator'] == 'bob'
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        assert any(run['playbook'].endswith('pause.yml') for run in handle.runs())

    before = fleet_snapshot(stack)
    refused = cli('start', '--plan', write_plan(tmp_path, 'waves: [{percent: 50}]\n'))
    assert refused.returncode == 3
    assert 'paused' in refused.stderr and 'investigating iroh latency' in refused.stderr
    assert fleet_snapshot(stack) == before

    resumed = cli('resume', '--operator', 'bob')
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads(cli('status', '--json').stdout)['flags']['paused'] is None

    # A halt needs an acknowledgement.
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.set_halt('gate: high_error_rate_iroh 0.31 > 0.05', 'migration_gate', 'gate')
    assert cli('resume').returncode == 3
    acked = cli('resume', '--ack', '--operator', 'bob')
    assert acked.returncode == 0, acked.stdout + acked.stderr
    assert json.loads(cli('status', '--json').stdout)['flags']['halted'] is None


def _install_rules(stack, ledger_path):
    proc = subprocess.run([str(Path(sys.executable).parent / 'ansible-playbook'), '-i', str(stack.inventory_dir),
                           str(ROOT / 'playbooks' / 'monitoring.yml')], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'),
                                   ANT_MIGRATION_LEDGER=str(ledger_path)), cwd=str(ROOT))
    assert proc.returncode == 0, proc.stdout[-3000:]


def _wait_for_recorded_data(stack):
    # The gate judges only with enough data (3 samples in the sim's 10 s windows): let the
    # recording rules fill their windows before a wave's fleet-wide pre-check.
    for series in ('transport:ant_transport_error_rate:ratio{transport="libp2p"}', 'fleet:ant_partition_risk:ratio'):
        stack.wait_query(f'count_over_time({series}[10s])', lambda r: r and float(r[0]['value'][1]) >= 4,
                         timeout=120)


def test_plan_runs_canary_and_wave_then_health_metrics_and_rollback(stack, cli, ledger_path, tmp_path):
    _install_rules(stack, ledger_path)
    stack.wait_targets_up()
    _wait_for_recorded_data(stack)
    plan = write_plan(tmp_path, 'canary: {count: 1, duration: 6}\nsoak: 3\nwaves: [{percent: 50, batches: [1]}]\n'
                                'target_duration: 1d\n')
    run = cli('start', '--plan', plan)
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'canary: passed' in run.stdout and 'wave 50 %: done' in run.stdout
    modes = {host: {n['transport_mode'] for n in nodes} for host, nodes in fleet_snapshot(stack).items()}
    assert modes == {'sim-host-01': {'dual_stack'}, 'sim-host-02': {'dual_stack'},
                     'sim-host-03': {'libp2p_only'}, 'sim-host-04': {'libp2p_only'}}
    status = json.loads(cli('status', '--json').stdout)
    assert status['progress']['by_state']['dual_stack_stable'] == 2 * NODES
    assert status['canary']['verdict'] == 'passed' and status['plan']['deadline']
    assert any(v['data'].get('verdict') == 'pass' for v in status['gate_verdicts'])

    metrics = cli('metrics', '--format', 'prometheus')
    assert metrics.returncode == 0, metrics.stderr
    assert 'autonomi_migration_transport_request_rate{transport="iroh"}' in metrics.stdout
    assert 'autonomi_migration_nodes_dual_stack 6' in metrics.stdout

    health = cli('health', '--check-nodes', '--json')
    assert health.returncode == 0, health.stdout + health.stderr
    report = json.loads(health.stdout)
    assert report['healthy'] and report['nodes']['healthy'] == HOSTS * NODES

    declined = cli('rollback', input='n\n')
    assert declined.returncode == 1 and 'Roll back 6 nodes on 2 hosts to libp2p_only' in declined.stdout
    rolled = cli('rollback', '--strategy', 'fast', '--yes')
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    modes = {n['transport_mode'] for nodes in fleet_snapshot(stack).values() for n in nodes}
    assert modes == {'libp2p_only'}
    assert json.loads(cli('status', '--json').stdout)['progress']['rolled_back'] == 2 * NODES


def test_a_run_that_halts(stack, cli, ledger_path, tmp_path):
    """iroh fails on every dual-stack node: the gate after the wave's first batch trips, the
    migration halts, the CLI stops with exit 1 and says why; status shows the halt."""
    _install_rules(stack, ledger_path)
    stack.wait_targets_up()
    _wait_for_recorded_data(stack)
    seed_ledger(stack, ledger_path)                  # canary passed, nothing migrated yet
    stack.fault('transport', transport='iroh', error_rate=0.6, mode='dual_stack')
    try:
        plan = write_plan(tmp_path, 'batches: [1]\nrollback_policy: rollback\nwaves: [{percent: 50}, {percent: 100}]\n')
        result = cli('start', '--plan', plan)
        assert result.returncode == 1, result.stdout + result.stderr
        assert 'wave 50 % failed' in result.stderr
        assert 'wave 100' not in result.stdout + result.stderr            # stopped at the first failure
        # The message is the ledger's halt reason (whichever check tripped first: the unhealthy
        # nodes seen by node_health, or the gate's rule with its value and threshold).
        status = cli('status', '--json')
        halted = json.loads(status.stdout)['flags']['halted']
        assert halted and f"migration halted: {halted['reason']}" in result.stderr
        # status exits with the outcome the ledger recorded for that wave run (docs/operator-guide.md).
        run = json.loads(status.stdout)['run']
        assert status.returncode == 1 and run['stage'] == 'wave' and run['failed'] is True, run
        assert run['outcome'] not in ('ok', 'stopped_early'), run
        assert 'sim-host-01' in halted['reason'] or 'high_error_rate_iroh' in halted['reason']
        # Policy rollback: nothing stays on dual_stack.
        modes = {node['transport_mode'] for nodes in fleet_snapshot(stack).values() for node in nodes}
        assert modes == {'libp2p_only'}
    finally:
        stack.clear_faults()
