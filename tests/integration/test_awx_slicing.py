"""Sliced AWX jobs: N slices of one job, each its own ansible-runner process, one PostgreSQL ledger.

AWX runs a job template with ``job_slice_count`` N as a workflow job of N slice jobs. Each slice
is an ansible-runner run of its own private data directory: the project, an inventory holding
every N-th host (AWX orders hosts by name and gives slice k the hosts k-1, k-1+N, ...), the job's
extra vars plus AWX's (``awx_job_id`` of the slice, ``awx_workflow_job_id`` and
``awx_job_template_id`` shared; no slice number - see awx/main/models/unified_jobs.py) and the
environment of the job's credentials (here the ledger DSN). The slices start at once, as AWX starts
them when capacity allows. They must reach the end state one job reaches, with one run in the
ledger, no slice refused by another's lock, a halt in one slice stopping the others before their
next batch, and the ledger's progress counting the whole fleet.

Also one job through ``ansible-runner transmit | ansible-runner worker | ansible-runner process``,
the protocol receptor carries to execution nodes.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests' / 'scenarios'))

from scenario_harness import Fleet  # noqa: E402

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib  # noqa: E402
from ant_fleet_sim.testing import wait_for  # noqa: E402

BIN = Path(sys.executable).parent
RUNNER = str(BIN / 'ansible-runner')
HOSTS = 6
NODES = 3
LIBP2P, DUAL = 'libp2p_only', 'dual_stack'
_job_ids = itertools.count(1000)


@pytest.fixture(scope='module')
def postgres():
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


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    """6 hosts x 3 nodes with Prometheus and the collection's rules (the wave's gate needs them)."""
    with Fleet(tmp_path_factory.mktemp('awx'), hosts=HOSTS, nodes_per_host=NODES, ready_delay=0.5) as f:
        yield f


@pytest.fixture
def clean_fleet(fleet):
    """Every node in libp2p_only and ready, no faults."""
    fleet.stack.clear_faults()
    set_modes(fleet, fleet.stack.host_names, LIBP2P)
    return fleet


@pytest.fixture
def dsn(postgres):
    """A fresh ledger (its own PostgreSQL schema) per test."""
    return postgres.new_schema()


def set_modes(fleet, hosts, mode):
    stack = fleet.stack
    for host in hosts:
        stack.set_mode(host, [n['service_name'] for n in stack.antctl_status(host)['nodes']], mode)
    wait_for(lambda: all(n['mode'] == mode and n['ready'] for n in stack.fleet()['nodes'] if n['host'] in hosts),
             timeout=120, what='hosts ready in %s' % mode)


def slice_hosts(hosts, number, count):
    """AWX's slicing: hosts ordered by name, slice ``number`` (1-based) takes every ``count``-th."""
    return sorted(hosts)[number - 1::count]


def private_data_dir(fleet, base, hosts, extravars, dsn):
    """What AWX writes for one job: project, the (sliced) inventory, extra vars, environment."""
    base.mkdir(parents=True)
    shutil.copytree(ROOT / 'playbooks', base / 'project' / 'playbooks')
    inventory = base / 'inventory'
    inventory.mkdir()
    full = yaml.safe_load(Path(fleet.stack.inventory).read_text())
    group = full['all']['children']['fleet']
    group['hosts'] = {h: v for h, v in group['hosts'].items() if h in hosts}
    (inventory / 'hosts.json').write_text(json.dumps(full))
    shutil.copytree(ROOT / 'inventories' / 'sim' / 'group_vars', inventory / 'group_vars')
    env = base / 'env'
    env.mkdir()
    (env / 'extravars').write_text(json.dumps(dict(extravars, **{
        'migration_prometheus_url': fleet.stack.prometheus_url,
        'monitoring_rules_dir': str(fleet.stack.state_dir / 'prometheus' / 'rules')})))
    (env / 'envvars').write_text(json.dumps({
        'ANSIBLE_CONFIG': str(ROOT / 'ansible.cfg'),
        'ANT_MIGRATION_LEDGER': dsn,
        'SIM_STATE_DIR': str(fleet.stack.state_dir),
        'ANSIBLE_NOCOLOR': '1',
    }))
    return base


def awx_vars(job_id, workflow_id, template_id=42, name='Migration'):
    return {'awx_job_id': job_id, 'awx_job_launch_type': 'workflow', 'awx_workflow_job_id': workflow_id,
            'awx_workflow_job_name': name, 'awx_workflow_job_launch_type': 'manual',
            'awx_job_template_id': template_id, 'awx_job_template_name': name, 'awx_user_name': 'awx-operator',
            'tower_job_id': job_id, 'tower_workflow_job_id': workflow_id, 'tower_job_template_id': template_id}


def runner_env():
    env = dict(os.environ)
    env['PATH'] = '%s:%s' % (BIN, env.get('PATH', ''))
    for key in ('ANT_MIGRATION_LEDGER', 'ANSIBLE_CONFIG'):
        env.pop(key, None)
    return env


class Slices:
    """N slices of one job started as AWX starts them: at once, one ansible-runner process each."""

    def __init__(self, fleet, tmp_path, playbook, job_vars, count, dsn):
        self.workflow_id = next(_job_ids)
        self.count = count
        self.hosts = {}
        self.procs = []
        for number in range(1, count + 1):
            hosts = slice_hosts(fleet.stack.host_names, number, count)
            self.hosts[number] = hosts
            job_id = next(_job_ids)
            pdd = private_data_dir(fleet, tmp_path / ('job-%d' % job_id), hosts,
                                   dict(job_vars, **awx_vars(job_id, self.workflow_id)), dsn)
            log = open(pdd / 'runner.log', 'w+')
            proc = subprocess.Popen([RUNNER, 'run', str(pdd), '-p', playbook], stdout=log, stderr=subprocess.STDOUT,
                                    env=runner_env(), start_new_session=True)
            proc.log, proc.number = log, number
            self.procs.append(proc)

    def wait(self, timeout=900):
        for proc in self.procs:
            proc.wait(timeout=timeout)
        return [proc.returncode for proc in self.procs]

    def output(self, number):
        proc = self.procs[number - 1]
        proc.log.flush()
        proc.log.seek(0)
        return proc.log.read()

    def outputs(self):
        return '\n'.join('--- slice %d ---\n%s' % (p.number, self.output(p.number)[-4000:]) for p in self.procs)


def job_runs(dsn, workflow_id):
    ledger = ledger_lib.open_ledger(dsn)
    try:
        return [r for r in ledger.runs(limit=100) if (r['extra_vars'] or {}).get('awx_workflow_job_id') == workflow_id]
    finally:
        ledger.close()


def ledger_view(dsn):
    ledger = ledger_lib.open_ledger(dsn)
    try:
        return {'lock': ledger.lock(), 'flags': ledger.get_flags(), 'nodes': ledger.nodes(),
                'events': ledger.events(limit=500)}
    finally:
        ledger.close()


def assert_one_run(dsn, slices, outcome):
    runs = job_runs(dsn, slices.workflow_id)
    assert len(runs) == 1, runs
    run = runs[0]
    assert run['outcome'] == outcome and run['ended_at'], run
    assert len(run['summary']['slices']) == slices.count, run['summary']
    view = ledger_view(dsn)
    joined = [e for e in view['events'] if e['kind'] == 'run_joined' and e['run_id'] == run['id']]
    assert len(joined) == slices.count
    assert not [e for e in view['events'] if e['kind'] == 'lock_recovered']
    assert view['lock'] is None, 'the lock outlived the last slice: %s' % view['lock']
    return run, view


@pytest.mark.parametrize('count', [2, 3])
def test_sliced_fast_rollback_is_one_run_and_brings_the_whole_fleet_back(clean_fleet, dsn, tmp_path, count):
    fleet = clean_fleet
    set_modes(fleet, fleet.stack.host_names, DUAL)
    slices = Slices(fleet, tmp_path, 'playbooks/rollback.yml', {'strategy': 'fast', 'target': LIBP2P}, count, dsn)
    rcs = slices.wait()
    assert rcs == [0] * count, slices.outputs()
    outputs = slices.outputs()
    assert 'locked by' not in outputs
    nodes = fleet.stack.fleet()['nodes']
    assert {n['mode'] for n in nodes} == {LIBP2P} and all(n['ready'] for n in nodes)
    _run, view = assert_one_run(dsn, slices, 'ok')
    # Progress counts the whole fleet: every node of every slice is in the one ledger, rolled back.
    states = {n['node_id']: n['state'] for n in view['nodes']}
    assert len(states) == HOSTS * NODES, states
    assert set(states.values()) == {'rolled_back'}


WAVE = {'wave': 100, 'wave_require_canary': False, 'wave_batches': [1]}


@pytest.mark.parametrize('count', [2, 3])
def test_sliced_wave_reaches_the_same_end_state_as_one_job(clean_fleet, dsn, tmp_path, count):
    fleet = clean_fleet
    slices = Slices(fleet, tmp_path, 'playbooks/rollout.yml', WAVE, count, dsn)
    rcs = slices.wait()
    assert rcs == [0] * count, slices.outputs()
    assert 'locked by' not in slices.outputs()
    nodes = fleet.stack.fleet()['nodes']
    assert {n['mode'] for n in nodes} == {DUAL}
    _run, view = assert_one_run(dsn, slices, 'ok')
    states = {n['node_id']: n['state'] for n in view['nodes']}
    assert len(states) == HOSTS * NODES
    assert len(set(states.values())) == 1 and set(states.values()) != {ledger_lib.state_for_mode(LIBP2P)}, states


def test_a_halt_in_one_slice_stops_the_others_before_their_next_batch(clean_fleet, dsn, tmp_path):
    """Slice 1's first host crashes on the switch: the halt it causes stops slice 2 at its next batch."""
    fleet = clean_fleet
    first_of_slice_1 = slice_hosts(fleet.stack.host_names, 1, 2)[0]
    fleet.stack.fault('crash_on_switch', hosts=[first_of_slice_1], behaviour='crash')
    slices = Slices(fleet, tmp_path, 'playbooks/rollout.yml', WAVE, 2, dsn)
    rcs = slices.wait()
    assert rcs[0] != 0, slices.outputs()
    view = ledger_view(dsn)
    assert view['flags']['halted'], slices.outputs()
    assert [e for e in view['events'] if e['kind'] == 'halt']
    # Slice 2 has 3 hosts in 3 batches (one host each, a soak between): the halt arrives during its
    # first batches, so at least its last host was never touched ...
    slice_2 = slices.hosts[2]
    modes = {}
    for node in fleet.stack.fleet()['nodes']:
        modes.setdefault(node['host'], set()).add(node['mode'])
    touched = [h for h in slice_2 if modes[h] != {LIBP2P}]
    assert len(touched) < len(slice_2), (modes, slices.outputs())
    # ... and it says why it stopped: the ledger is halted.
    assert 'halted' in slices.output(2).lower(), slices.output(2)[-3000:]
    runs = job_runs(dsn, slices.workflow_id)
    assert len(runs) == 1 and runs[0]['outcome'] in ('halted', 'failed'), runs
    assert view['lock'] is None


def test_one_job_through_transmit_worker_process(clean_fleet, dsn, tmp_path):
    """The receptor path: transmit the job, run it in a worker, process the stream back."""
    fleet = clean_fleet
    set_modes(fleet, fleet.stack.host_names[:2], DUAL)
    job_id = next(_job_ids)
    job_vars = {'strategy': 'fast', 'target': LIBP2P, 'awx_job_id': job_id, 'awx_user_name': 'awx-operator'}
    pdd = private_data_dir(fleet, tmp_path / 'job', fleet.stack.host_names, job_vars, dsn)
    env = runner_env()
    transmit = subprocess.Popen([RUNNER, 'transmit', str(pdd), '-p', 'playbooks/rollback.yml'],
                                stdout=subprocess.PIPE, env=env)
    worker = subprocess.Popen([RUNNER, 'worker'], stdin=transmit.stdout, stdout=subprocess.PIPE, env=env)
    transmit.stdout.close()
    process = subprocess.run([RUNNER, 'process', str(pdd)], stdin=worker.stdout, capture_output=True, text=True,
                             env=env, timeout=900)
    worker.wait(timeout=60)
    transmit.wait(timeout=60)
    assert transmit.returncode == 0 and worker.returncode == 0, process.stdout[-3000:]
    assert process.returncode == 0, process.stdout[-4000:] + process.stderr[-2000:]
    assert 'PLAY RECAP' in process.stdout
    assert {n['mode'] for n in fleet.stack.fleet()['nodes']} == {LIBP2P}
    ledger = ledger_lib.open_ledger(dsn)
    try:
        runs = [r for r in ledger.runs(limit=20) if (r['extra_vars'] or {}).get('awx_job_id') == job_id]
        assert len(runs) == 1 and runs[0]['outcome'] == 'ok', runs
        assert ledger.lock() is None
    finally:
        ledger.close()


def kill_tree(pid):
    """SIGKILL a process and every descendant at once, as AWX ends a job's container: ansible-runner starts
    ansible-playbook in a session of its own (pexpect's pty), so killing its process group is not enough."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as fh:
                    ppid = int(fh.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return tree


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql'])
@pytest.mark.parametrize('moment', ['before_switch', 'during_switch'])
def test_a_killed_slice_ends_its_run_blocks_no_relaunch_and_the_ledger_equals_the_fleet(
        clean_fleet, postgres, tmp_path, backend, moment):
    """Slice 1 of a two-slice wave is SIGKILLed (its ansible-runner, ansible-playbook and workers) before its
    first switch, or while it is in flight (its first host's nodes never become ready). The other slice
    finishes; the run ends ``killed``; every node's ledger row equals the mode it runs, or an un-ended intent
    names its host; a relaunch is not refused by the dead slice's lock."""
    fleet = clean_fleet
    location = postgres.new_schema() if backend == 'postgresql' else str(tmp_path / 'ledger.sqlite3')
    victim = slice_hosts(fleet.stack.host_names, 1, 2)[0]
    if moment == 'during_switch':
        fleet.stack.fault('crash_on_switch', hosts=[victim], behaviour='never_ready')
        marker = 'TASK [autonomi.network_migration.wave : Switch every node of the host'
    else:
        marker = 'PLAY [Plan the wave]'
    slices = Slices(fleet, tmp_path, 'playbooks/rollout.yml', WAVE, 2, location)
    wait_for(lambda: marker in slices.output(1) or slices.procs[0].poll() is not None, timeout=600,
             what='slice 1 at %s' % moment)
    assert slices.procs[0].poll() is None, slices.output(1)[-3000:]
    if moment == 'during_switch':
        wait_for(lambda: any(n['host'] == victim and n['mode'] == DUAL for n in fleet.stack.fleet()['nodes']),
                 timeout=120, what='the victim host restarted in dual_stack')
    killed = kill_tree(slices.procs[0].pid)
    try:
        # ansible-runner and ansible-playbook, and its workers if a task was running (between two plays there is
        # none: a worker lives for one task of one host).
        assert len(killed) >= 2, killed
        slices.procs[0].wait(timeout=60)
        assert slices.procs[1].wait(timeout=900) is not None
    finally:
        # Whatever failed above, the other slice must not go on switching the fleet the next test starts from.
        if slices.procs[1].poll() is None:
            kill_tree(slices.procs[1].pid)
        fleet.stack.clear_faults()

    ledger = ledger_lib.open_ledger(location)
    try:
        rows = {n['node_id']: n for n in ledger.nodes()}
        intents = {i['host'] for i in ledger.intents()}
    finally:
        ledger.close()
    for node in fleet.stack.fleet()['nodes']:
        row = rows.get('%s/%s' % (node['host'], node['service_name']))
        recorded = row['mode'] if row else None
        assert recorded == node['mode'] or node['host'] in intents, (node, row, intents)
    assert (victim in intents) == (moment == 'during_switch'), intents

    # A relaunch (one job) is not refused by the dead slice's lock; an un-ended intent is a halt to reconcile.
    job_id = next(_job_ids)
    pdd = private_data_dir(fleet, tmp_path / ('relaunch-%d' % job_id), fleet.stack.host_names,
                           dict(WAVE, **awx_vars(job_id, next(_job_ids))), location)
    relaunch = subprocess.run([RUNNER, 'run', str(pdd), '-p', 'playbooks/rollout.yml'], capture_output=True,
                              text=True, env=runner_env(), timeout=900)
    output = relaunch.stdout + relaunch.stderr
    (tmp_path / 'relaunch.log').write_text(output)
    assert 'locked by' not in output, output[-3000:]
    # The killed job's run ended, killed: with its last live slice, or - when the killed slice was the last -
    # when the relaunch found every slice gone and recovered the lock.
    runs = job_runs(location, slices.workflow_id)
    assert len(runs) == 1 and runs[0]['ended_at'] and runs[0]['outcome'] == 'killed', runs
    if moment == 'during_switch':
        assert relaunch.returncode != 0, output[-3000:]
        assert 'never recorded' in output and victim in output, output[-3000:]
    else:
        assert relaunch.returncode == 0, output[-3000:]
