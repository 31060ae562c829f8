"""Issue 11, part A, through the real path: ansible-playbook and the CLI against a simulated fleet.

Findings covered here (each test names its finding):
  1 free text is data (reasons and names never templated, stored and shown verbatim)
  6 inputs refused before any host is read, naming the operator's variable and the accepted form
  7 no ledger DSN password in the CLI's output
  8 the CLI's dry run refuses what the rollout refuses (one planner)
  9 bookkeeping: run ids on lock events, ledger_nodes.wave, gate-verdict count, one operator per run
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sim_inventory import sim_inventory_dir

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLI = BIN / 'ant-network-migration'
INJECTION = "{{ lookup('pipe', 'touch %s') }} and two words"


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    from ant_fleet_sim.testing import SimStack

    directory = tmp_path_factory.mktemp('inputs-sim')
    # 8 nodes: a node is ready with more than 5 connected peers (CLOSE_GROUP_SIZE).
    with SimStack(directory, hosts=4, nodes_per_host=2, ready_delay=0.3) as sim:
        sim.wait_targets_up()
        sim.inventory_dir = _inventory_dir(sim, directory / 'inventory')
        _install_rules(sim, directory / 'rules-ledger.sqlite3')
        yield sim


def _install_rules(sim, ledger_path):
    args = [str(BIN / 'ansible-playbook'), '-i', str(sim.inventory_dir), str(ROOT / 'playbooks' / 'monitoring.yml')]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=_env(ledger_path), cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:]


def _wait_for_recorded_data(sim):
    # The gate judges only with enough data (3 samples in the sim's 10 s windows).
    for series in ('transport:ant_transport_error_rate:ratio{transport="libp2p"}', 'fleet:ant_partition_risk:ratio'):
        sim.wait_query(f'count_over_time({series}[10s])', lambda r: r and float(r[0]['value'][1]) >= 4, timeout=120)


def _inventory_dir(sim, path):
    """The stack's inventory, the committed sim group_vars, and a group with a host outside `fleet`."""
    sim_inventory_dir(sim, path, {'canary_duration': 8, 'canary_check_interval': 4, 'canary_analysis_enabled': False,
                                  'canary_rollback_drill': False, 'wave_soak_seconds': 8})
    (path / 'stray.yml').write_text(yaml.safe_dump({'all': {'children': {'stray': {'hosts': {
        'not-a-fleet-host': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}}}}))
    return path


@pytest.fixture
def ledger_path(tmp_path):
    return tmp_path / 'ledger.sqlite3'


def _env(ledger_path, **extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANT_MIGRATION_LEDGER=str(ledger_path),
               ANSIBLE_NOCOLOR='1', COLUMNS='200')
    for name in ('ANT_MIGRATION_OPERATOR', 'ANT_MIGRATION_RUN_ID', 'ANT_MIGRATION_LOCK_HOLDER',
                 'ANT_MIGRATION_CONTROLLER_PID', 'MIGRATION_PROMETHEUS_URL', 'ANT_MIGRATION_INVENTORY'):
        env.pop(name, None)
    env.update(extra)
    return env


def play(stack, ledger_path, playbook, *extra, env=None):
    """ansible-playbook with each of ``extra`` passed as one -e argument, exactly as given."""
    args = [str(BIN / 'ansible-playbook'), str(ROOT / 'playbooks' / playbook), '-i', str(stack.inventory_dir)]
    args += [a for e in extra for a in ('-e', e)]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=_env(ledger_path, **(env or {})),
                          check=False, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def cli(stack, ledger_path, *args, ledger=None, inventory=None):
    argv = [str(CLI), '--ledger', str(ledger or ledger_path), '-i', str(inventory or stack.inventory_dir), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=_env(ledger_path), check=False,
                          timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def opened(ledger_path):
    return ledger_lib.open_ledger(str(ledger_path))


def fleet_nodes(stack):
    """Every node with the mode it runs now (the simulator's view, the same as its metrics)."""
    return [{'host': n['host'], 'service_name': n['service_name'], 'mode': n['mode']} for n in stack.fleet()['nodes']]


def fleet_modes(stack):
    modes = {}
    for node in fleet_nodes(stack):
        assert node['mode'] in ('libp2p_only', 'dual_stack', 'iroh_primary', 'iroh_only'), node
        modes.setdefault(node['host'], []).append((node['service_name'], node['mode']))
    return {host: sorted(nodes) for host, nodes in modes.items()}


# -- finding 1: free text is data ----------------------------------------------------------------

def test_free_text_from_extra_vars_is_stored_and_shown_verbatim(stack, ledger_path, tmp_path):
    marker = tmp_path / 'templated'
    reason = INJECTION % marker
    name = "{{ lookup('pipe', 'touch %s') }}" % marker
    rc, out = play(stack, ledger_path, 'pause.yml', 'reason=%s' % json.dumps(reason), 'operator=%s' % json.dumps(name))
    assert rc == 0, out[-3000:]
    assert not marker.exists(), 'a pause reason was templated on the controller'
    with opened(ledger_path) as ledger:
        paused = ledger.get_flags()['paused']
        events = ledger.events(kinds=['pause'])
    assert paused['reason'] == reason and paused['operator'] == name
    assert events[0]['data']['reason'] == reason
    assert reason in out                       # shown as given
    rc, out = play(stack, ledger_path, 'resume.yml', 'operator=%s' % json.dumps(name))
    assert rc == 0, out[-3000:]
    assert not marker.exists()


def test_rollback_reason_is_not_templated(stack, ledger_path, tmp_path):
    marker = tmp_path / 'templated'
    reason = INJECTION % marker
    rc, out = play(stack, ledger_path, 'rollback.yml', '{"reason": %s}' % json.dumps(reason),
                   'rollback_strategy=fast')
    assert rc == 0, out[-3000:]
    assert not marker.exists(), 'a rollback reason was templated on the controller'


def test_base64_reason_of_the_eda_rulebook_is_decoded_verbatim(stack, ledger_path, tmp_path):
    import base64

    marker = tmp_path / 'templated'
    reason = INJECTION % marker
    encoded = base64.b64encode(reason.encode()).decode()
    rc, out = play(stack, ledger_path, 'rollback.yml', '{"reason_b64": "%s", "trigger": "alert:X"}' % encoded)
    assert rc == 0, out[-3000:]
    assert not marker.exists()


def test_free_text_through_the_cli_is_not_templated(stack, ledger_path, tmp_path):
    marker = tmp_path / 'templated'
    reason = INJECTION % marker
    rc, out = cli(stack, ledger_path, 'init')      # the CLI refuses a ledger that does not exist
    assert rc == 0, out
    rc, out = cli(stack, ledger_path, 'pause', '--reason', reason, '--operator', 'carol')
    assert rc == 0, out
    assert not marker.exists(), 'a CLI pause reason was templated'
    with opened(ledger_path) as ledger:
        assert ledger.get_flags()['paused']['reason'] == reason
        ledger.acquire_lock('gone@nowhere pid 1', 'rollout.yml', stale_after=3600)
    rc, out = cli(stack, ledger_path, 'unlock', '--reason', reason, '--yes')
    assert rc == 0, out
    assert not marker.exists()
    with opened(ledger_path) as ledger:
        override = ledger.events(kinds=['lock_override'])[0]
    assert override['data']['reason'] == reason


@pytest.mark.parametrize('argument', ['reason=two words', 'reason="two words"'])
def test_a_reason_keeps_both_words(stack, ledger_path, argument):
    # The shell turns the documented -e reason="two words" into the argument reason=two words.
    rc, out = play(stack, ledger_path, 'pause.yml', argument)
    assert rc == 0, out[-3000:]
    with opened(ledger_path) as ledger:
        assert ledger.get_flags()['paused']['reason'] == 'two words'


# -- finding 6: inputs ------------------------------------------------------------------------------

@pytest.mark.parametrize('argument,shown', [
    ('wave=1e2', "wave='1e2'"),
    ('{"wave": " 25"}', "wave=' 25'"),
    ('wave= 25', "wave=''"),
    ('wave=25.0', "wave='25.0'"),
    ('{"wave": true}', 'wave=True'),
    ('{"wave": 25.0}', 'wave=25.0'),
    ('{"wave": 101}', 'wave=101'),
])
def test_bad_wave_is_refused_before_any_host_is_read(stack, ledger_path, argument, shown):
    before = fleet_modes(stack)
    rc, out = play(stack, ledger_path, 'rollout.yml', argument)
    assert rc != 0
    assert shown in out and 'an integer from 1 to 100 written as such' in out, out[-3000:]
    assert 'wave_percent' not in out.split('fatal:')[-1].split('\n')[0]
    assert 'Read the fleet' not in out and 'transport_info' not in out
    assert fleet_modes(stack) == before
    with opened(ledger_path) as ledger:
        assert ledger.lock() is None and not ledger.events(kinds=['lock_acquired'])


def test_a_mistyped_canary_group_is_refused(stack, ledger_path):
    before = fleet_modes(stack)
    rc, out = play(stack, ledger_path, 'canary.yml', 'canary_group=canaries_typo')
    assert rc != 0
    assert "canary_group='canaries_typo'" in out and 'no such group' in out, out[-3000:]
    assert 'Read the fleet' not in out
    assert fleet_modes(stack) == before


def test_a_canary_group_host_outside_the_fleet_is_refused(stack, ledger_path):
    args = [str(BIN / 'ansible-playbook'), str(ROOT / 'playbooks' / 'canary.yml'), '-i', str(stack.inventory_dir),
            '-i', str(stack.inventory_dir / 'stray.yml'), '-e', 'canary_group=stray']
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=_env(ledger_path), timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "canary_group='stray'" in out and 'not-a-fleet-host' in out and 'not in fleet' in out, out[-3000:]
    assert 'Read the fleet' not in out
    with opened(ledger_path) as ledger:
        assert ledger.failures_total() == 0 and ledger.get_flags()['halted'] is None


@pytest.mark.parametrize('stage', ['iroh_primary', 'iroh_only'])
def test_promote_with_nothing_eligible_fails_and_says_why(stack, ledger_path, stage):
    before = fleet_modes(stack)
    rc, out = play(stack, ledger_path, 'promote.yml', 'stage=%s' % stage, 'wave=50')
    assert rc != 0, out[-3000:]
    assert 'nothing eligible' in out, out[-3000:]
    if stage == 'iroh_only':
        assert 'still run libp2p_only' in out
    assert fleet_modes(stack) == before


def test_string_booleans_as_awx_passes_them(stack, ledger_path, tmp_path):
    rules = tmp_path / 'rules'
    rc, out = play(stack, ledger_path, 'monitoring.yml', 'monitoring_reload=false',
                   'monitoring_verify_loaded=false', 'monitoring_rules_dir=%s' % rules,
                   'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable)
    assert rc == 0, out[-3000:]
    # "false" is a string here; it must mean false (no reload), not a truthy string or an error.
    assert re.search(r'RUNNING HANDLER \[[^\]]*Reload Prometheus\] \**\nskipping', out), out[-3000:]
    rc, out = play(stack, ledger_path, 'monitoring.yml', 'monitoring_reload=maybe')
    assert rc != 0 and "monitoring_reload='maybe'" in out and 'true or false' in out


def test_rollback_strategy_without_the_reserved_name_warning(stack, ledger_path):
    rc, out = play(stack, ledger_path, 'rollback.yml', 'rollback_strategy=gradual')
    assert rc == 0, out[-3000:]
    assert 'reserved name' not in out
    assert 'gradual rollback' in out or 'nothing to roll back' in out
    # The old name still works (ansible-core itself warns about a variable named `strategy`).
    rc, out = play(stack, ledger_path, 'rollback.yml', 'strategy=fast')
    assert rc == 0, out[-3000:]
    rc, out = play(stack, ledger_path, 'rollback.yml', 'rollback_strategy=slow')
    assert rc != 0 and "rollback_strategy='slow'" in out and 'fast, gradual' in out


# -- finding 7: secrets -----------------------------------------------------------------------------

def test_the_cli_never_prints_the_ledger_password(stack, ledger_path):
    dsn = 'postgresql://migrator:hunter2-secret@127.0.0.1:1/ledger'
    for command in (['status'], ['pause', '--reason', 'x']):
        rc, out = cli(stack, ledger_path, *command, ledger=dsn)
        assert rc != 0
        assert 'hunter2-secret' not in out and 'migrator:********@' in out, out


@pytest.fixture(scope='module')
def postgres():
    sys.path.insert(0, str(ROOT / 'tests' / 'unit' / 'ledger'))
    from ledger_pg_server import PostgresServer, pg_bindir

    bindir = pg_bindir()
    if not bindir:
        if os.environ.get('CI'):
            pytest.fail('PostgreSQL server binaries not found; CI is set, so this is a failure')
        pytest.skip('PostgreSQL server binaries not found (Debian: apt-get install postgresql)')
    for attempt in range(3):   # a free port can be taken by another process before the server binds it
        server = PostgresServer(bindir)
        try:
            server.start()
            break
        except subprocess.CalledProcessError:
            server.stop()
            if attempt == 2:
                raise
    yield server
    server.stop()


def test_gate_results_never_carry_the_ledger_password(stack, ledger_path, postgres):
    # The test server trusts local connections, so the password is accepted and ignored.
    dsn = postgres.new_schema().replace('postgresql://%s@' % postgres.user,
                                        'postgresql://%s:hunter2-secret@' % postgres.user)
    args = [str(BIN / 'ansible-playbook'), str(ROOT / 'tests' / 'integration' / 'playbooks_inputs' / 'gate_secret.yml'),
            '-i', str(stack.inventory_dir), '-e', 'secret_dsn=%s' % dsn]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=_env(ledger_path), timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    shown = [line for line in out.splitlines() if "gate" in line and "location" in line]
    assert shown and ('postgresql://%s:********@' % postgres.user) in shown[0], out[-3000:]
    for line in out.splitlines():
        assert 'hunter2-secret' not in line, line[:2000]
    assert 'hunter2-secret' not in out


# -- finding 8: the preview is the plan ------------------------------------------------------------

def test_dry_run_refuses_what_the_rollout_refuses(stack, ledger_path, tmp_path):
    inventory = tmp_path / 'inventory'
    shutil.copytree(stack.inventory_dir, inventory)
    sla = inventory / 'group_vars' / 'all' / 'sla.yml'
    sla.write_text('wave_rollback_sla_seconds: 1\n')
    with opened(ledger_path) as ledger:
        ledger.set_canary_verdict('passed', hosts=[])
    plan = tmp_path / 'plan.yml'
    plan.write_text('waves: [{percent: 50}]\n')
    before = fleet_modes(stack)
    rc, preview = cli(stack, ledger_path, 'start', '--plan', str(plan), '--dry-run', inventory=inventory)
    assert rc == 3, preview
    assert 'over the 1 s SLA' in preview
    args = [str(BIN / 'ansible-playbook'), str(ROOT / 'playbooks' / 'rollout.yml'), '-i', str(inventory),
            '-e', 'wave=50']
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=_env(ledger_path), timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and 'over the 1 s SLA' in out, out[-3000:]
    assert fleet_modes(stack) == before


# -- finding 9: bookkeeping -------------------------------------------------------------------------

def test_one_run_one_operator_run_ids_and_waves(stack, ledger_path):
    # Under AWX the launching user is the operator everywhere, whatever the environment says.
    _wait_for_recorded_data(stack)
    awx = ['awx_user_name=awx-alice', 'awx_job_id=42']
    env = {'ANT_MIGRATION_OPERATOR': 'someone-else'}
    rc, out = play(stack, ledger_path, 'canary.yml', *awx, env=env)
    assert rc == 0, out[-4000:]
    with opened(ledger_path) as ledger:
        run = ledger.runs(limit=1)[0]
        events = ledger.events(run_id=run['id'], limit=500)
        locks = ledger.events(kinds=['lock_acquired', 'lock_released'], limit=50)
        canaries = [n for n in ledger.nodes() if n['state'] != 'libp2p_only']
    assert run['operator'] == 'awx-alice'
    operators = {e['data'].get('operator') for e in events if e['data'].get('operator')}
    assert operators == {'awx-alice'}, operators
    assert locks and all(e['run_id'] == run['id'] for e in locks), locks
    assert canaries and {n['wave'] for n in canaries} == {'canary'}
    verdicts = [e for e in events if e['kind'] == 'gate_verdict']
    summary = (run.get('summary') or {})
    assert summary.get('gate_verdicts') == len(verdicts), (summary, len(verdicts))

    rc, out = play(stack, ledger_path, 'rollout.yml', 'wave=60', *awx, env=env)
    assert rc == 0, out[-4000:]
    with opened(ledger_path) as ledger:
        run = ledger.runs(limit=1)[0]
        events = ledger.events(run_id=run['id'], limit=500)
        waved = [n for n in ledger.nodes() if n['wave'] == '60']
    assert waved
    verdicts = [e for e in events if e['kind'] == 'gate_verdict']
    assert (run.get('summary') or {}).get('gate_verdicts') == len(verdicts)
    assert {e['data'].get('operator') for e in events if e['data'].get('operator')} == {'awx-alice'}

    # A halt names the operator, not the module. The fault is on the hosts the next wave switches
    # only, so the fleet-wide gate before the wave is green and the batch's gate trips.
    untouched = sorted({n['host'] for n in fleet_nodes(stack) if n['mode'] == 'libp2p_only'})
    assert untouched
    stack.fault('transport', transport='iroh', error_rate=0.9, hosts=untouched)
    try:
        rc, out = play(stack, ledger_path, 'rollout.yml', 'wave=100', *awx, env=env)
    finally:
        stack.clear_faults()
    assert rc != 0, out[-3000:]
    with opened(ledger_path) as ledger:
        halted = ledger.get_flags()['halted']
    assert halted and halted['operator'] == 'awx-alice', (halted, out[-3000:])
