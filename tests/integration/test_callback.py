"""migration_tracker through real ansible-playbook runs against the simulated fleet.

Each test starts from a fleet with every node in libp2p_only and uses its own ledger, passed to
ansible-playbook through ANT_MIGRATION_LEDGER (the callback and the transport_mode guard read the
same one).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ant_fleet_sim.systemd import configured_modes

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / 'tests' / 'integration' / 'playbooks_callback'
ANSIBLE_PLAYBOOK = str(ROOT / '.venv' / 'bin' / 'ansible-playbook')
HOSTS = ('sim-host-01', 'sim-host-02', 'sim-host-03', 'sim-host-04')

SimStack = pytest.importorskip('ant_fleet_sim.testing').SimStack


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    with SimStack(tmp_path_factory.mktemp('callback'), hosts=len(HOSTS), nodes_per_host=3, ready_delay=0.5,
                  prometheus=False) as sim:
        yield sim


@pytest.fixture(scope='module')
def postgres(tmp_path_factory):
    """The ledger tests' throw-away PostgreSQL server (tests/unit/ledger/ledger_pg_server.py)."""
    spec = importlib.util.spec_from_file_location(
        'ledger_pg_server', ROOT / 'tests' / 'unit' / 'ledger' / 'ledger_pg_server.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bindir = module.pg_bindir()
    if not bindir:
        if os.environ.get('CI'):
            pytest.fail('PostgreSQL server binaries not found; CI is set, so this is a failure')
        pytest.skip('PostgreSQL server binaries not found')
    server = module.PostgresServer(bindir).start()
    yield server
    server.stop()


def modes(stack, host):
    return configured_modes(stack.state, host)  # the systemd drop-ins (antctl keeps no mode)


@pytest.fixture
def fleet(stack):
    """A fault-free fleet with every node in libp2p_only and ready."""
    stack.clear_faults()
    for host in HOSTS:
        status = stack.antctl_status(host)
        if any(n['status'] != 'Running' for n in status['nodes']):
            stack.antctl(host, 'start', check=True)
        moved = [name for name, mode in modes(stack, host).items() if mode != 'libp2p_only']
        if moved:
            stack.set_mode(host, moved, 'libp2p_only')
    stack.wait_ready(timeout=60)
    return stack


def env_for(ledger, **extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANT_MIGRATION_LEDGER=str(ledger),
               ANSIBLE_NOCOLOR='1')
    env.update({k: str(v) for k, v in extra.items()})
    return env


def playbook_cmd(stack, *args):
    return [ANSIBLE_PLAYBOOK, '-i', str(stack.inventory), str(PLAYBOOKS / 'switch.yml'), *args]


def run(stack, ledger, *args, **env):
    return subprocess.run(playbook_cmd(stack, *args), cwd=ROOT, env=env_for(ledger, **env), capture_output=True,
                          text=True, timeout=600)


def test_transitions_recorded_and_summary_printed(fleet, tmp_path):
    ledger_path = tmp_path / 'ledger.sqlite3'
    textfile = tmp_path / 'textfile' / 'autonomi_migration.prom'
    proc = run(fleet, ledger_path, '-e', 'batch=2', ANT_MIGRATION_METRICS_TEXTFILE=textfile)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert 'MIGRATION SUMMARY' in proc.stdout
    assert 'progress 0.0 % (0 of 12 nodes migrated), phase Initialization, dual-stack coverage 100.0 %' in proc.stdout
    assert 'nodes: libp2p_only 0, dual_stack_testing 12,' in proc.stdout
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        assert set(ledger.node_states().values()) == {'dual_stack_testing'}
        assert len(ledger.node_states()) == 12
        run_row = ledger.runs()[0]
        assert run_row['outcome'] == 'ok' and run_row['playbook'].endswith('switch.yml')
        history = ledger.history(limit=100)
        assert len(history) == 12 and all(h['run_id'] == run_row['id'] for h in history)
        assert all(h['reason'] == 'libp2p_only -> dual_stack by transport_mode' for h in history)
        assert len(ledger.switch_times()) == 12
        assert ledger.lock() is None
        node = ledger.node('sim-host-01', 'antnode1')
        assert node['peer_id'].startswith('12D3KooW') and node['version']
    assert 'autonomi_migration_nodes_dual_stack 12' in textfile.read_text()
    # Again: nothing changes, nothing is recorded twice.
    again = run(fleet, ledger_path)
    assert again.returncode == 0, again.stdout[-3000:]
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        assert len(ledger.history(limit=100)) == 12
        assert [r['outcome'] for r in ledger.runs()] == ['ok', 'ok']


def test_halt_written_when_a_batch_exceeds_its_budget(fleet, tmp_path):
    ledger_path = tmp_path / 'ledger.sqlite3'
    fleet.fault('crash_on_switch', hosts=['sim-host-02'], mode='dual_stack')
    proc = run(fleet, ledger_path, '-e', 'batch=2', ANT_MIGRATION_BATCH_FAILURE_PERCENT=20,
               ANT_MIGRATION_FAILURE_BUDGET=100)
    assert proc.returncode != 0
    assert 'MIGRATION SUMMARY' in proc.stdout and 'HALTED since' in proc.stdout
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        halted = ledger.get_flags()['halted']
        assert halted['source'] == 'migration_tracker'
        assert "batch 1 of play 'Switch the fleet': 1 of 2 host(s) failed or unreachable (50.0 % > " \
               'batch_failure_percent 20)' in halted['reason']
        assert 'sim-host-02' in halted['reason']
        assert ledger.runs()[0]['outcome'] == 'halted'
        assert any(f.startswith('sim-host-02/') for f in ledger.failures())
        states = ledger.node_states()
        assert all(states[f'sim-host-01/antnode{i}'] == 'dual_stack_testing' for i in (1, 2, 3))
        assert not any(node.startswith(('sim-host-03/', 'sim-host-04/')) for node in states)
    # The second batch was refused by the transport_mode guard: untouched.
    for host in ('sim-host-03', 'sim-host-04'):
        assert set(modes(fleet, host).values()) == {'libp2p_only'}
    assert 'halted' in proc.stdout.lower()


def test_cumulative_failure_budget_across_waves(fleet, tmp_path):
    ledger_path = tmp_path / 'ledger.sqlite3'
    fleet.fault('crash_on_switch', hosts=['sim-host-01'], mode='dual_stack')
    first = run(fleet, ledger_path, '--limit', 'sim-host-01,sim-host-02', ANT_MIGRATION_BATCH_FAILURE_PERCENT=100,
                ANT_MIGRATION_FAILURE_BUDGET=100)
    assert first.returncode != 0
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        assert ledger.get_flags()['halted'] is None
        budget = ledger.failures_total()
    assert budget >= 1
    # The next wave fails on its own less than the budget, but the total across waves exceeds it.
    fleet.clear_faults()
    fleet.fault('crash_on_switch', hosts=['sim-host-03'], mode='dual_stack')
    second = run(fleet, ledger_path, '--limit', 'sim-host-03,sim-host-04', ANT_MIGRATION_BATCH_FAILURE_PERCENT=100,
                 ANT_MIGRATION_FAILURE_BUDGET=budget)
    assert second.returncode != 0
    assert 'HALTED since' in second.stdout
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        halted = ledger.get_flags()['halted']
        runs = ledger.runs()
        second_failures = ledger.failures_total(run_ids=[runs[0]['id']])
    assert second_failures <= budget
    assert halted and f'over the failure budget of {budget}' in halted['reason']
    assert 'sim-host-01/' in halted['reason'] and 'sim-host-03/' in halted['reason']


def test_second_run_is_refused_while_the_lock_is_held(fleet, tmp_path):
    ledger_path = tmp_path / 'ledger.sqlite3'
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        ledger.acquire_lock('bob@other-controller pid 4242', 'rollback.yml')
    proc = run(fleet, ledger_path)
    assert proc.returncode == 1
    assert 'locked by bob@other-controller pid 4242' in proc.stderr
    assert 'playbook rollback.yml' in proc.stderr
    assert 'Switch every node' not in proc.stdout
    for host in HOSTS:
        assert set(modes(fleet, host).values()) == {'libp2p_only'}


def test_bad_ledger_stops_before_any_host_is_touched(fleet, tmp_path):
    garbage = tmp_path / 'garbage.sqlite3'
    garbage.write_bytes(b'\x00\x01not a database' * 100)
    proc = run(fleet, garbage)
    assert proc.returncode == 1
    assert 'is not a SQLite database' in proc.stderr
    for host in HOSTS:
        assert set(modes(fleet, host).values()) == {'libp2p_only'}


def test_sigkill_mid_wave_then_rerun_resumes(fleet, tmp_path):
    ledger_path = tmp_path / 'ledger.sqlite3'
    proc = subprocess.Popen(playbook_cmd(fleet, '-e', 'batch=1', '-f', '1'), cwd=ROOT, env=env_for(ledger_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        recorded = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if ledger_path.exists():
                try:
                    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
                        recorded = len(ledger.node_states())
                except ledger_lib.LedgerError:
                    recorded = 0
            if recorded >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, 'the playbook ended before it could be killed'
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    # Its forked workers outlive it (own sessions): the one in flight stops at its next node batch and
    # keeps the lock until then; the re-run below, started at once, waits for it (wait_for_gone_controller).
    fleet.wait_ready(timeout=60)
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        states = ledger.node_states()
        lock = ledger.lock()
        first_run = ledger.runs()[0]
    assert 3 <= len(states) < 12
    assert first_run['ended_at'] is None  # killed: the run stays open
    assert lock is not None  # held by the dead controller
    for node_id, state in states.items():
        host, service = node_id.split('/')
        assert state == 'dual_stack_testing'
        assert modes(fleet, host)[service] == 'dual_stack', f'{node_id} recorded as switched but is not'
    uptime_before = {f"{n['host']}/{n['service_name']}": n['uptime'] for n in fleet.fleet()['nodes']}
    rerun = run(fleet, ledger_path, '-e', 'batch=1')
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-2000:]
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        final = ledger.node_states()
        history = ledger.history(limit=1000)
        recovered = ledger.events(kinds='lock_recovered')
    assert len(final) == 12 and set(final.values()) == {'dual_stack_testing'}
    # No node was switched twice: one restart record per node at most.
    restarts = {}
    for row in history:
        if row['reason'].endswith('by transport_mode'):
            restarts[row['node_id']] = restarts.get(row['node_id'], 0) + 1
    assert max(restarts.values()) == 1
    # Nodes recorded before the kill were left alone by the re-run.
    second_run_nodes = {row['node_id'] for row in history if row['run_id'] != first_run['id']}
    assert not second_run_nodes & set(states)
    assert recovered and 'is gone' in recovered[0]['data']['reason']
    # And on the hosts: the nodes switched before the kill were not restarted by the re-run.
    uptime_after = {f"{n['host']}/{n['service_name']}": n['uptime'] for n in fleet.fleet()['nodes']}
    for node_id in states:
        assert uptime_after[node_id] >= uptime_before[node_id], f'{node_id} was restarted by the re-run'


def test_postgresql_ledger_through_ansible_playbook(fleet, postgres):
    dsn = postgres.new_schema()
    proc = run(fleet, dsn, '-e', 'batch=2')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f'ledger {dsn}, run 1, outcome ok' in proc.stdout
    with ledger_lib.open_ledger(dsn) as ledger:
        assert ledger.dialect == 'postgresql'
        assert set(ledger.node_states().values()) == {'dual_stack_testing'}
        assert len(ledger.history(limit=100)) == 12
        assert ledger.lock() is None
        ledger.set_pause('maintenance window', 'alice')
    # The transport_mode guard reads the same PostgreSQL ledger in the workers.
    refused = run(fleet, dsn, '-e', 'target_mode=libp2p_only', '-e', 'allow_rollback=true')
    assert refused.returncode != 0
    assert 'paused' in refused.stdout.lower()
    for host in HOSTS:
        assert set(modes(fleet, host).values()) == {'dual_stack'}


def _localhost(ledger, *args, **env):
    return subprocess.run([ANSIBLE_PLAYBOOK, '-i', 'localhost,', '-c', 'local', str(PLAYBOOKS / 'basic.yml'), *args],
                          cwd=ROOT, env=env_for(ledger, **env), capture_output=True, text=True, timeout=300)


def test_controller_only_playbook_opens_and_closes_a_run(tmp_path):
    ledger_path = tmp_path / 'ledger.sqlite3'
    proc = _localhost(ledger_path, '-e', 'db_password=hunter2', ANT_MIGRATION_OPERATOR='carol')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'MIGRATION SUMMARY' in proc.stdout and f'ledger {ledger_path}, run 1, outcome ok' in proc.stdout
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        run_row = ledger.runs()[0]
        assert run_row['operator'] == 'carol' and run_row['extra_vars'] == {'db_password': '********'}
        assert [e['kind'] for e in ledger.events()] == ['lock_released', 'run_ended', 'lock_acquired', 'run_started']
        assert ledger.lock() is None


def test_check_mode_writes_nothing(tmp_path):
    ledger_path = tmp_path / 'ledger.sqlite3'
    proc = _localhost(ledger_path, '--check')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'MIGRATION SUMMARY' in proc.stdout
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        assert ledger.runs() == [] and ledger.events() == []


def test_two_concurrent_runs_the_second_is_refused_naming_the_first(fleet, tmp_path):
    ledger_path = tmp_path / 'ledger.sqlite3'
    first = subprocess.Popen(playbook_cmd(fleet, '-e', 'batch=1', '-f', '1'), cwd=ROOT, env=env_for(ledger_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        lock = None
        while time.monotonic() < deadline and first.poll() is None and lock is None:
            if ledger_path.exists():
                try:
                    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
                        lock = ledger.lock()
                except ledger_lib.LedgerError:
                    pass
            time.sleep(0.05)
        assert lock is not None, 'the first run never took the lock'
        second = run(fleet, ledger_path, '-e', 'target_mode=dual_stack')
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert lock['holder'].endswith(f'pid {first.pid}') and lock['playbook'].endswith('switch.yml')
    assert second.returncode == 1
    assert f"locked by {lock['holder']} since {lock['started_at']}" in second.stderr
    assert 'nothing was touched' in second.stderr
    assert first.returncode == 0, out[-3000:] + err[-2000:]
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        outcomes = sorted(r['outcome'] for r in ledger.runs())
        assert outcomes == ['ok', 'refused_locked']
        assert len(ledger.history(limit=100)) == 12  # only the first run switched nodes
        assert ledger.lock() is None


def test_a_renamed_rollback_playbook_keeps_its_kind_and_the_eda_source_sees_it_end(fleet, tmp_path):
    """The run's kind is what the playbook declares, recorded when it starts: a copy of rollback.yml under
    another name is still a rollback, and the EDA source's "did the rollback I started end" sees it."""
    ledger_path = tmp_path / 'ledger.sqlite3'
    renamed = tmp_path / 'fleet-recovery-2026.yml'
    renamed.write_text((ROOT / 'playbooks' / 'rollback.yml').read_text())
    spec = importlib.util.spec_from_file_location(
        'eda_source', ROOT / 'extensions' / 'eda' / 'plugins' / 'event_source' / 'alertmanager.py')
    source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(source)
    clock = {'now': time.time() - 5}
    guard = source.RollbackGuard(str(ledger_path), dispatch_timeout=3600, clock=lambda: clock['now'])
    firing = {'status': 'firing', 'startsAt': '2026-12-07T00:00:00Z',
              'labels': {'alertname': 'NetworkPartitionRisk', 'severity': 'critical',
                         'rule_id': 'network_partition_risk', 'figure': 'partition_risk'}}
    assert guard.events_for({'alerts': [firing]})[0]['migration']['actionable'] is True   # dispatched
    assert guard.events_for({'alerts': [firing]})[0]['migration']['actionable'] is False  # still running
    proc = subprocess.run([ANSIBLE_PLAYBOOK, '-i', str(fleet.inventory), str(renamed), '-e', 'rollback_strategy=fast'],
                          cwd=ROOT, env=env_for(ledger_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    with ledger_lib.open_ledger(str(ledger_path)) as ledger:
        run_row = ledger.runs()[0]
        assert run_row['playbook'].endswith('fleet-recovery-2026.yml') and run_row['kind'] == 'rollback'
        assert run_row['ended_at']
    clock['now'] = time.time()
    # The rollback ended: another alert may start one (the same firing never again: one rollback per firing).
    other = dict(firing, fingerprint='other', labels=dict(firing['labels'], alertname='HighErrorRateIroh',
                                                          rule_id='high_error_rate_iroh', figure='error_rate'))
    assert guard.events_for({'alerts': [other]})[0]['migration']['actionable'] is True
