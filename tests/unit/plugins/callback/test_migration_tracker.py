"""migration_tracker: the plain MigrationTracker, then the callback loaded by its FQCN with real results."""

from __future__ import annotations

import os

import pytest
from ansible import context
from ansible.executor.stats import AggregateStats
from ansible.executor.task_result import CallbackTaskResult
from ansible.inventory.host import Host
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.playbook import Playbook
from ansible.playbook.task import Task
from ansible.plugins.loader import callback_loader
from ansible.vars.manager import VariableManager

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import (
    MigrationTracker,
    TrackerConfig,
    short_action,
)

FQ = 'autonomi.network_migration.'
ENV_KEYS = (ledger_lib.ENV_LEDGER, ledger_lib.ENV_RUN_ID, ledger_lib.ENV_LOCK_HOLDER, ledger_lib.ENV_CONTROLLER_PID,
            'ANT_MIGRATION_FAILURE_BUDGET', 'ANT_MIGRATION_BATCH_FAILURE_PERCENT', 'ANT_MIGRATION_HALT_ON_UNHEALTHY',
            'ANT_MIGRATION_METRICS_TEXTFILE', 'ANT_MIGRATION_OPERATOR')


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def location(tmp_path):
    return str(tmp_path / 'ledger.sqlite3')


@pytest.fixture
def warnings():
    return []


@pytest.fixture
def make_tracker(location, warnings):
    trackers = []

    def _make(**options):
        options.setdefault('ledger', location)
        tracker = MigrationTracker(TrackerConfig(**options), warn=warnings.append, environ={})
        trackers.append(tracker)
        return tracker

    yield _make
    for tracker in trackers:
        if tracker.ledger is not None:
            tracker.ledger.close()


@pytest.fixture
def read(location):
    handles = []

    def _read():
        handle = ledger_lib.open_ledger(location)
        handles.append(handle)
        return handle

    yield _read
    for handle in handles:
        handle.close()


def switch_result(mode, nodes, failed_nodes=None):
    """A transport_mode result as the module returns it."""
    out = {'mode': mode, 'changed': any(n[2] == 'switched' for n in nodes), 'nodes': [
        {'service_name': name, 'peer_id': f'12D3KooW{name}', 'version': '0.4.6', 'previous_mode': prev,
         'mode': (mode if outcome in ('switched', 'unchanged') else prev), 'result': outcome,
         'changed': outcome == 'switched', 'seconds_to_ready': 2.0 if outcome == 'switched' else None,
         'error': 'not ready within 300 s' if outcome == 'failed' else None,
         'restored': True if outcome == 'failed' else None}
        for name, prev, outcome in nodes]}
    out['switched'] = [n[0] for n in nodes if n[2] == 'switched']
    if failed_nodes:
        out['failed_nodes'] = [{'service_name': n, 'error': 'not ready within 300 s'} for n in failed_nodes]
        out['msg'] = 'Switched: ... Not switched: ' + ', '.join(failed_nodes)
    return out


def health_result(nodes):
    return {'state': 'unhealthy' if any(s == 'unhealthy' for _name, _mode, s in nodes) else 'healthy', 'nodes': [
        {'service_name': name, 'peer_id': f'12D3KooW{name}', 'status': 'Running', 'mode': mode, 'state': state,
         'connected_peers': 2 if state == 'unhealthy' else 12,
         'failed_checks': [{'check': 'connectivity', 'reason': 'only 2 connected peers'}] if state == 'unhealthy'
         else []}
        for name, mode, state in nodes]}


# -- the plain class ----------------------------------------------------------------------------


def test_short_action():
    assert short_action(FQ + 'transport_mode') == 'transport_mode'
    assert short_action('transport_mode') == 'transport_mode'
    assert short_action('ansible.builtin.debug') is None
    assert short_action('other.collection.transport_mode') is None


def test_run_is_opened_and_closed_with_redacted_vars_and_env(make_tracker, read):
    tracker = make_tracker()
    run = tracker.start_playbook('playbooks/rollout.yml', {'wave': 25, 'awx_user_name': 'alice',
                                                           'prometheus_password': 'x'})
    assert tracker._environ[ledger_lib.ENV_RUN_ID] == str(run)
    assert tracker._environ[ledger_lib.ENV_LEDGER] == tracker.location
    assert tracker._environ[ledger_lib.ENV_CONTROLLER_PID] == str(os.getpid())
    lines = tracker.end_playbook({'h1': {'failures': 0, 'unreachable': 0}})
    row = read().run(run)
    assert row['operator'] == 'alice' and row['outcome'] == 'ok' and row['ended_at']
    assert row['extra_vars']['prometheus_password'] == '********'
    # A fresh ledger has not seen the fleet: the summary says so instead of "0 of 0 nodes".
    assert any(line.startswith('the ledger has not read the fleet yet') for line in lines)
    assert not any(line.startswith('progress 0.0 % (0 of 0') for line in lines)


def test_transport_mode_results_become_transitions(make_tracker, read):
    tracker = make_tracker()
    tracker.start_playbook('rollout.yml')
    tracker.start_batch('wave', ['h1'])
    tracker.task_start(FQ + 'transport_mode')
    tracker.result('h1', FQ + 'transport_mode', switch_result('dual_stack', [
        ('antnode1', 'libp2p_only', 'switched'), ('antnode2', 'libp2p_only', 'switched'),
        ('antnode3', 'dual_stack', 'unchanged')]))
    ledger = read()
    assert ledger.node_states() == {'h1/antnode1': 'dual_stack_testing', 'h1/antnode2': 'dual_stack_testing',
                                    'h1/antnode3': 'dual_stack_testing'}
    history = ledger.history('h1/antnode1')[0]
    assert history['run_id'] == tracker.run_id and history['seconds_to_ready'] == 2.0
    assert history['reason'] == 'libp2p_only -> dual_stack by transport_mode'
    assert ledger.switch_times() == [2.0, 2.0]
    # A rollback back to libp2p_only.
    tracker.result('h1', FQ + 'transport_mode', switch_result('libp2p_only', [
        ('antnode1', 'dual_stack', 'switched')]))
    assert ledger.node('h1', 'antnode1')['state'] == 'rolled_back'
    assert tracker.transitions == 4


def test_rerun_records_nodes_already_switched_without_duplicates(make_tracker, read):
    tracker = make_tracker()
    tracker.start_playbook('rollout.yml')
    tracker.start_batch('wave', ['h1'])
    result = switch_result('dual_stack', [('antnode1', 'libp2p_only', 'switched')])
    tracker.result('h1', FQ + 'transport_mode', result)
    # The controller died before/after recording; the re-run finds the node already switched.
    tracker.result('h1', FQ + 'transport_mode', switch_result('dual_stack', [('antnode1', 'dual_stack', 'unchanged')]))
    assert len(read().history('h1/antnode1')) == 1


def test_intent_variable_names_the_state(make_tracker, read, warnings):
    tracker = make_tracker()
    tracker.start_playbook('rollout.yml')
    tracker.start_batch('wave', ['h1'])
    tracker.result('h1', FQ + 'transport_mode', switch_result('dual_stack', [('antnode1', 'libp2p_only', 'switched')]),
                   task_vars={'migration_ledger_state': 'dual_stack_stable'})
    assert read().node('h1', 'antnode1')['state'] == 'dual_stack_stable'
    # node_health with the intent promotes healthy nodes of the matching mode only.
    tracker.result('h1', FQ + 'transport_mode', switch_result('dual_stack', [('antnode2', 'libp2p_only', 'switched')]))
    tracker.result('h1', FQ + 'node_health', health_result([('antnode2', 'dual_stack', 'healthy'),
                                                            ('antnode3', 'libp2p_only', 'healthy')]),
                   task_vars={'migration_ledger_state': 'dual_stack_stable'})
    ledger = read()
    assert ledger.node('h1', 'antnode2')['state'] == 'dual_stack_stable'
    assert ledger.node('h1', 'antnode3')['state'] == 'libp2p_only'  # registered by the observation
    tracker.result('h1', FQ + 'transport_mode', switch_result('dual_stack', []),
                   task_vars={'migration_ledger_state': 'half_done'})
    assert any('half_done' in w for w in warnings)


def test_batch_failure_percent_halts(make_tracker, read, warnings):
    tracker = make_tracker(batch_failure_percent=20, failure_budget=100)
    tracker.start_playbook('rollout.yml')
    tracker.start_batch('Migrate the wave', ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'])
    tracker.task_start(FQ + 'transport_mode')
    failed = switch_result('dual_stack', [('antnode1', 'libp2p_only', 'switched'),
                                          ('antnode2', 'libp2p_only', 'failed')], failed_nodes=['antnode2'])
    tracker.result('h1', FQ + 'transport_mode', failed, failed=True)
    assert read().get_flags()['halted'] is None  # 1 of 6 = 16.7 %
    tracker.host_failed('h2', FQ + 'transport_mode', 'ssh: connection refused', unreachable=True)
    halted = read().get_flags()['halted']
    assert halted['source'] == 'migration_tracker'
    assert "batch 1 of play 'Migrate the wave': 2 of 6 host(s) failed or unreachable (33.3 % > " \
           'batch_failure_percent 20)' in halted['reason']
    assert 'h2 (unreachable: ssh: connection refused)' in halted['reason']
    assert any('HALTED' in w for w in warnings)
    ledger = read()
    assert ledger.failures() == ['h1/antnode2', 'h2/*']
    # The restored node is recorded in the mode it runs again; the switched one moved on.
    assert ledger.node('h1', 'antnode1')['state'] == 'dual_stack_testing'
    assert ledger.node('h1', 'antnode2')['state'] == 'libp2p_only'
    lines = tracker.end_playbook({'h1': {'failures': 1}, 'h2': {'unreachable': 1}})
    assert read().runs()[0]['outcome'] == 'halted'
    assert any(line.startswith('HALTED since') and 'batch 1' in line for line in lines)


def test_failures_before_the_migration_task_count_once_it_starts(make_tracker, read):
    tracker = make_tracker(batch_failure_percent=0)
    tracker.start_playbook('rollout.yml')
    tracker.start_batch('discover', ['h1', 'h2'])
    tracker.host_failed('h1', 'ansible.builtin.command', 'boom')
    assert read().get_flags()['halted'] is None  # not a migration batch
    tracker.start_batch('wave', ['h1', 'h2'])
    tracker.host_failed('h2', 'ansible.builtin.command', 'pre-check failed')
    assert read().get_flags()['halted'] is None
    tracker.task_start(FQ + 'transport_mode')
    assert 'h2 (failed in task' in read().get_flags()['halted']['reason']


def test_refusals_and_verdict_tasks_are_not_node_failures(make_tracker, read):
    tracker = make_tracker(batch_failure_percent=0, failure_budget=0)
    tracker.start_playbook('rollout.yml')
    tracker.start_batch('wave', ['h1'])
    tracker.task_start(FQ + 'transport_mode')
    refusal = {'failed': True, 'msg': 'migration is paused', 'ledger_flags': {'paused': {'reason': 'x'}}}
    tracker.result('h1', FQ + 'transport_mode', refusal, failed=True)
    tracker.result('h1', FQ + 'migration_ledger', {'msg': 'refused: halted', 'refused': 'halted'}, failed=True)
    tracker.result('h1', 'ansible.builtin.command', {'msg': 'ignored'}, failed=True, ignored=True)
    assert read().get_flags()['halted'] is None
    assert read().failures_total() == 0


def test_failure_budget_across_waves(make_tracker, read):
    first = make_tracker(batch_failure_percent=100, failure_budget=2)
    first.start_playbook('rollout.yml', {'wave': 10})
    first.start_batch('wave', ['h1', 'h2'])
    first.task_start(FQ + 'transport_mode')
    failed_switch = switch_result('dual_stack', [('antnode1', 'libp2p_only', 'failed')], failed_nodes=['antnode1'])
    first.result('h1', FQ + 'transport_mode', failed_switch, failed=True)
    first.end_playbook({'h1': {'failures': 1}})
    second = make_tracker(batch_failure_percent=100, failure_budget=2)
    second.start_playbook('rollout.yml', {'wave': 25})
    second.start_batch('wave', ['h3', 'h4'])
    second.task_start(FQ + 'transport_mode')
    second.result('h3', FQ + 'transport_mode', switch_result('dual_stack', [('antnode1', 'libp2p_only', 'failed')],
                                                             failed_nodes=['antnode1']), failed=True)
    assert read().get_flags()['halted'] is None  # 2 of 2
    second.host_failed('h4', FQ + 'transport_mode', 'host down', unreachable=True)
    halted = read().get_flags()['halted']
    assert halted['reason'].startswith('3 node(s) failed across waves since the budget was last reset, over the '
                                       'failure budget of 2: h1/antnode1, h3/antnode1, h4/*')
    assert 'playbooks/budget_reset.yml' in halted['reason']


def test_unhealthy_nodes_halt_only_when_asked(make_tracker, read):
    tracker = make_tracker(halt_on_unhealthy=False, failure_budget=100, batch_failure_percent=100)
    tracker.start_playbook('rollout.yml')
    tracker.start_batch('wave', ['h1'])
    tracker.task_start(FQ + 'transport_mode')
    result = health_result([('antnode1', 'dual_stack', 'unhealthy'), ('antnode2', 'dual_stack', 'healthy')])
    tracker.result('h1', FQ + 'node_health', result)
    ledger = read()
    assert ledger.get_flags()['halted'] is None
    assert ledger.node('h1', 'antnode1')['health'] == 'unhealthy'
    assert ledger.node('h1', 'antnode1')['health_data']['failed_checks'][0]['check'] == 'connectivity'
    other = make_tracker(halt_on_unhealthy=True)
    other.start_playbook('rollout.yml')
    other.start_batch('wave', ['h1'])
    other.task_start(FQ + 'transport_mode')
    other.result('h1', FQ + 'node_health', result)
    halted = read().get_flags()['halted']
    assert halted['reason'] == '1 unhealthy node(s) on h1: antnode1 (halt_on_unhealthy)'


def test_gate_verdicts_are_events_and_a_failed_gate_halts(make_tracker, read):
    tracker = make_tracker()
    tracker.start_playbook('rollout.yml')
    tracker.start_batch('wave', ['h1'])
    tracker.result('h1', FQ + 'migration_gate', {'verdict': 'pass', 'msg': 'all rules pass'},
                   task_name='Soak, then judge')
    assert read().get_flags()['halted'] is None
    tracker.result('h1', FQ + 'migration_gate', {'verdict': 'fail', 'msg': 'high_error_rate_iroh 0.07 > 0.05',
                                                 'failures': ['high_error_rate_iroh']}, failed=True,
                   task_name='Soak, then judge')
    ledger = read()
    verdicts = ledger.events(kinds='gate_verdict')
    assert [v['data']['verdict'] for v in verdicts] == ['fail', 'pass']
    assert verdicts[0]['data']['failures'] == ['high_error_rate_iroh']
    halted = ledger.get_flags()['halted']
    assert halted['source'] == 'gate' and 'high_error_rate_iroh 0.07 > 0.05' in halted['reason']
    assert ledger.failures_total() == 0  # a verdict, not a node failure


def test_a_gate_that_could_not_judge_halts_without_a_verdict(make_tracker, read):
    """The probe before a batch writes nothing itself: its 'unavailable' halts with cause no_verdict (the wave
    freezes), and the batch's own halt after it cannot replace that cause (the first one is kept)."""
    tracker = make_tracker()
    tracker.start_playbook('rollout.yml')
    tracker.start_batch('wave', ['h2'])
    tracker.result('h2', FQ + 'migration_gate', {'verdict': 'unavailable', 'failed': True,
                                                 'msg': 'the gate cannot judge h2: Prometheus is unreachable'},
                   failed=True, task_name='Stop before touching this batch unless the gate can judge it')
    halted = read().get_flags()['halted']
    assert (halted['source'], halted['cause']) == ('gate', 'no_verdict'), halted


def test_the_collections_gate_owns_its_ledger_writes(make_tracker, read):
    tracker = make_tracker()
    tracker.start_playbook('rollout.yml')
    tracker.start_batch('wave', ['h1'])
    tracker.task_start(FQ + 'transport_mode')
    # Failed because the ledger was paused (nothing written by the gate), and an inconclusive verdict.
    for verdict, written in (('fail', []), ('inconclusive', ['gate_verdict', 'pause'])):
        tracker.result('h1', FQ + 'migration_gate', {'verdict': verdict, 'msg': 'the migration is paused',
                                                     'ledger': {'location': 'x', 'written': written}}, failed=True)
    ledger = read()
    assert ledger.get_flags()['halted'] is None
    assert ledger.events(kinds='gate_verdict') == []
    # The summary counts the verdicts the gate wrote (one), as the ledger's events do.
    assert ledger.failures_total() == 0 and tracker.gate_verdicts == 1


def test_transport_info_registers_the_fleet(make_tracker, read):
    tracker = make_tracker()
    tracker.start_playbook('status.yml')
    tracker.result('h1', FQ + 'transport_info', {'nodes': [
        {'service_name': 'antnode1', 'peer_id': 'p1', 'status': 'Running', 'mode': 'libp2p_only', 'version': '1'},
        {'service_name': 'antnode2', 'peer_id': 'p2', 'status': 'Running', 'mode': 'dual_stack', 'version': '1'},
        {'service_name': 'antnode3', 'peer_id': 'p3', 'status': 'Removed', 'mode': None}]})
    assert read().node_states() == {'h1/antnode1': 'libp2p_only', 'h1/antnode2': 'dual_stack_testing'}


def test_lock_refused_names_the_holder(make_tracker, read, location):
    holder = ledger_lib.open_ledger(location)
    holder.acquire_lock('bob@ctl-2 pid 77', 'rollback.yml')
    holder.close()
    tracker = make_tracker()
    with pytest.raises(ledger_lib.LedgerLocked, match=r'locked by bob@ctl-2 pid 77 since .* \(playbook rollback.yml'):
        tracker.start_playbook('rollout.yml', lock=True)
    assert read().runs()[0]['outcome'] == 'refused_locked'


def test_lock_taken_and_released(make_tracker, read):
    tracker = make_tracker()
    tracker.start_playbook('rollback.yml', lock=True)
    lock = read().lock()
    assert lock['holder'] == tracker.holder == tracker._environ[ledger_lib.ENV_LOCK_HOLDER]
    assert lock['playbook'] == 'rollback.yml' and lock['run_id'] == tracker.run_id
    tracker.end_playbook({})
    assert read().lock() is None


def test_role_lock_of_this_controller_is_released_at_the_end(make_tracker, read, location):
    tracker = make_tracker()
    tracker.start_playbook('rollout.yml')
    role = ledger_lib.open_ledger(location)
    role.acquire_lock('alice (run 1)', 'rollout.yml')  # as migration_ledger op=lock would, in a worker
    role.close()
    tracker._last_heartbeat = -1e9
    tracker.task_start('ansible.builtin.debug')
    tracker.end_playbook({})
    ledger = read()
    assert ledger.lock() is None
    assert ledger.events(kinds='lock_released')[0]['data']['reason'] == 'playbook ended'


def test_each_playbook_of_a_command_is_its_own_run(make_tracker, read):
    tracker = make_tracker()
    first = tracker.start_playbook('canary.yml')
    tracker.result('h1', FQ + 'transport_mode', switch_result('dual_stack', [('antnode1', 'libp2p_only', 'switched')]))
    tracker.end_playbook({})
    second = tracker.start_playbook('rollout.yml')
    assert second != first and tracker.transitions == 0 and tracker.batch_no == 0
    lines = tracker.end_playbook({})
    assert 'this run: 0 transition(s), 0 failed node(s)' in lines
    assert [r['playbook'] for r in read().runs()] == ['rollout.yml', 'canary.yml']


def test_unavailable_ledger(tmp_path, warnings):
    garbage = tmp_path / 'garbage.sqlite3'
    garbage.write_text('not a database')
    locked = MigrationTracker(TrackerConfig(ledger=str(garbage)), warn=warnings.append, environ={})
    with pytest.raises(ledger_lib.LedgerForeignDatabase):
        locked.start_playbook('rollout.yml', lock=True)
    plain = MigrationTracker(TrackerConfig(ledger=str(garbage)), warn=warnings.append, environ={})
    assert plain.start_playbook('status.yml') is None
    plain.result('h1', FQ + 'transport_mode', switch_result('dual_stack', [('a', 'libp2p_only', 'switched')]))
    assert plain.end_playbook({}) == []
    assert warnings == ['migration_tracker: ledger unavailable, nothing is recorded for this playbook']


def test_check_mode_writes_nothing(make_tracker, read):
    tracker = make_tracker()
    tracker.start_playbook('rollout.yml', lock=True, check_mode=True)
    tracker.result('h1', FQ + 'transport_mode', switch_result('dual_stack', [('a', 'libp2p_only', 'switched')]))
    tracker.host_failed('h1', FQ + 'transport_mode', 'x')
    tracker.end_playbook({})
    ledger = read()
    assert ledger.runs() == [] and ledger.nodes() == [] and ledger.lock() is None


def test_metrics_textfile_and_summary(make_tracker, tmp_path):
    textfile = tmp_path / 'prom' / 'autonomi_migration.prom'
    tracker = make_tracker(metrics_textfile=str(textfile))
    tracker.start_playbook('rollout.yml')
    tracker.start_batch('wave', ['h1'])
    tracker.result('h1', FQ + 'transport_mode', switch_result('iroh_primary', [('antnode1', 'dual_stack', 'switched')]))
    tracker.result('h1', FQ + 'transport_info', {'nodes': [{'service_name': 'antnode2', 'mode': 'libp2p_only'}]})
    tracker.ledger.set_pause('dashboards look odd', 'carol')
    lines = tracker.end_playbook({'h1': {'failures': 0}})
    text = textfile.read_text()
    assert 'autonomi_migration_nodes_total 2' in text and 'autonomi_migration_progress_percent 50.0' in text
    assert lines[1] == 'progress 50.0 % (1 of 2 nodes migrated), phase MajorityMigration, dual-stack coverage 50.0 %'
    assert lines[2].startswith('nodes: libp2p_only 1, dual_stack_testing 0')
    # The stage under way moves on its own (the seed's figure counts only iroh_primary and beyond).
    assert lines[3] == 'stage iroh_primary: 50.0 % of the nodes at it or beyond, 60 nodes/h (last 1 h)'
    assert lines[4].startswith('velocity 60 nodes/h (last 1 h), ETA 20')
    assert lines[5] == 'this run: 1 transition(s), 0 failed node(s)'
    assert lines[6].startswith('PAUSED since')
    assert 'the migration is paused (dashboards look odd; by carol at' in lines[6]


# -- the callback plugin, loaded by its FQCN ---------------------------------------------------


@pytest.fixture
def callback(plugin_loader, monkeypatch, location):
    monkeypatch.setenv('ANT_MIGRATION_LEDGER', location)
    monkeypatch.setenv('ANT_MIGRATION_FAILURE_BUDGET', '1')
    monkeypatch.setenv('ANT_MIGRATION_BATCH_FAILURE_PERCENT', '50')
    monkeypatch.setattr(context, 'CLIARGS', context.CLIARGS.__class__({'check': False}))
    plugin = callback_loader.get('autonomi.network_migration.migration_tracker')
    assert plugin is not None, 'callback not found by its FQCN'
    plugin.set_options()
    return plugin


def _playbook(tmp_path, lock=False):
    path = tmp_path / 'rollout.yml'
    play_vars = '  vars:\n    migration_lock: true\n' if lock else ''
    path.write_text(f'- name: Wave\n  hosts: all\n  gather_facts: false\n{play_vars}  tasks: []\n')
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources='sim-host-01,sim-host-02,sim-host-03,')
    return Playbook.load(str(path), variable_manager=VariableManager(loader=loader, inventory=inventory),
                         loader=loader)


def _task(action, name='task', task_vars=None):
    task = Task()
    task.action = action
    task.name = name
    task.vars = task_vars or {}
    return task


def test_callback_metadata_and_options(callback):
    assert callback.CALLBACK_NEEDS_ENABLED is True
    assert callback.CALLBACK_TYPE == 'aggregate'
    assert callback.tracker.config.failure_budget == 1
    assert callback.tracker.config.batch_failure_percent == 50.0
    assert callback.get_option_and_origin('ledger')[1].startswith('env')


def test_callback_driven_with_real_results(callback, tmp_path, location, capsys, monkeypatch):
    pb = _playbook(tmp_path)
    callback.v2_playbook_on_start(pb)
    play = pb.get_plays()[0]
    callback.v2_playbook_on_play_start(play)
    switch = _task(FQ + 'transport_mode', 'Switch every node')
    callback.v2_playbook_on_task_start(switch, False)
    h1, h2 = Host('sim-host-01'), Host('sim-host-02')
    callback.v2_runner_on_ok(CallbackTaskResult(h1, switch, switch_result('dual_stack', [
        ('antnode1', 'libp2p_only', 'switched'), ('antnode2', 'libp2p_only', 'switched')]), {}))
    callback.v2_runner_on_failed(CallbackTaskResult(h2, switch, switch_result('dual_stack', [
        ('antnode1', 'libp2p_only', 'failed'), ('antnode2', 'libp2p_only', 'failed')],
        failed_nodes=['antnode1', 'antnode2']), {}))
    callback.v2_runner_on_unreachable(CallbackTaskResult(Host('sim-host-03'), switch, {'msg': 'timed out'}, {}))
    stats = AggregateStats()
    stats.increment('ok', 'sim-host-01')
    stats.increment('failures', 'sim-host-02')
    stats.increment('dark', 'sim-host-03')
    callback.v2_playbook_on_stats(stats)
    out = capsys.readouterr().out
    assert 'MIGRATION SUMMARY' in out
    assert 'progress 0.0 % (0 of 4 nodes migrated), phase Initialization, dual-stack coverage 50.0 %' in out
    assert 'HALTED since' in out
    with ledger_lib.open_ledger(location) as ledger:
        assert ledger.node_states()['sim-host-01/antnode1'] == 'dual_stack_testing'
        halted = ledger.get_flags()['halted']
        assert 'over the failure budget of 1' in halted['reason']
        run = ledger.runs()[0]
        assert run['outcome'] == 'halted' and run['playbook'].endswith('rollout.yml')
        assert run['summary']['hosts']['sim-host-03']['unreachable'] == 1


def test_callback_refuses_a_locked_playbook_before_anything_runs(callback, tmp_path, location):
    with ledger_lib.open_ledger(location) as ledger:
        ledger.acquire_lock('bob@ctl-2 pid 77', 'rollback.yml')
    with pytest.raises(SystemExit) as info:
        callback.v2_playbook_on_start(_playbook(tmp_path, lock=True))
    assert info.value.code == 1
