"""transport_mode: planning, every transition, idempotence, check mode, batches, failures and restore."""

from __future__ import annotations

import itertools
import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from node_fakes import FakeHost, dumps, params

from ansible_collections.autonomi.network_migration.plugins.module_utils import _mode_switch
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import NodeError, SystemdError
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODES, TransitionError
from ansible_collections.autonomi.network_migration.plugins.modules import transport_mode

FORWARD_ONE_STEP = {('libp2p_only', 'dual_stack'), ('dual_stack', 'iroh_primary'), ('iroh_primary', 'iroh_only')}


def switch(host, check_mode=False, **overrides):
    switcher = _mode_switch.ModeSwitcher(params(**overrides), host.reader(), check_mode=check_mode,
                                         clock=host.clock, sleep=host.sleep)
    return dumps(switcher.run())


def by_name(result):
    return {n['service_name']: n for n in result['nodes']}


# -- the mode rules, through the module --------------------------------------------------


@pytest.mark.parametrize('current,target,allow_rollback', list(itertools.product(MODES, MODES, (False, True))))
def test_every_transition(current, target, allow_rollback):
    # A second node already in the target keeps the host-local partition rule out of the way
    # except where it is the point (libp2p_only -> iroh_only is refused by the step rule first).
    host = FakeHost(current)
    index_cur, index_tgt = MODES.index(current), MODES.index(target)
    allowed = (current == target or (current, target) in FORWARD_ONE_STEP
               or (index_tgt < index_cur and allow_rollback))
    if not allowed:
        with pytest.raises(TransitionError) as info:
            switch(host, mode=target, allow_rollback=allow_rollback)
        message = str(info.value)
        assert 'antnode1' in message and current in message and target in message
        assert 'nothing was changed' in message
        assert host.restarts() == [] and host.modes() == {'antnode1': current}
        if index_tgt > index_cur:
            assert 'one step at a time' in message
        else:
            assert 'allow_rollback' in message
        return
    result = switch(host, mode=target, allow_rollback=allow_rollback)
    node = result['nodes'][0]
    assert host.modes() == {'antnode1': target}
    assert node['previous_mode'] == current and node['mode'] == target
    if current == target:
        assert not result['changed'] and node['result'] == 'unchanged' and host.restarts() == []
    else:
        assert result['changed'] and node['result'] == 'switched'
        assert host.restarts() == [('antnode1', target)]
        assert host.configured() == {'antnode1': target}


def test_one_forbidden_node_refuses_the_whole_host():
    host = FakeHost('libp2p_only', 'dual_stack', 'libp2p_only')
    with pytest.raises(TransitionError, match=r'node antnode2: cannot go from dual_stack to iroh_only') as info:
        switch(host, mode='iroh_only')
    assert 'antnode1' in str(info.value) and 'antnode3' in str(info.value)
    assert host.restarts() == []


def test_iroh_only_refused_while_a_host_node_runs_libp2p_only():
    host = FakeHost('iroh_primary', 'libp2p_only')
    with pytest.raises(TransitionError, match=r'antnode2 of this host still runs libp2p_only'):
        switch(host, mode='iroh_only', nodes=['antnode1'])
    assert host.restarts() == []


# -- switching ---------------------------------------------------------------------------


def test_switch_reports_every_node():
    host = FakeHost('libp2p_only', 'libp2p_only', 'dual_stack')
    result = switch(host, mode='dual_stack', interval=1000)
    assert result['changed'] is True
    assert result['switched'] == ['antnode1', 'antnode2'] and result['unchanged'] == ['antnode3']
    assert result['not_switched'] == []
    nodes = by_name(result)
    first = nodes['antnode1']
    assert first['previous_mode'] == 'libp2p_only' and first['mode'] == 'dual_stack'
    assert first['peer_id'] == '12D3KooWFake0001' and first['version'] == '0.4.6'
    assert first['seconds_to_ready'] >= 2.0
    # restarted one interval later; its time to ready counts from its own restart, not the batch's start
    assert 2.0 <= nodes['antnode2']['seconds_to_ready'] < 3.0
    assert nodes['antnode3']['changed'] is False and nodes['antnode3']['seconds_to_ready'] is None
    # the drop-ins first, one daemon-reload for the host, then one restart per node; no antctl call but status
    assert [c for c in host.calls if c[0] != 'status'] == [
        ('write', 'antnode1', 'dual_stack'), ('write', 'antnode2', 'dual_stack'), ('daemon-reload',),
        ('restart', 'antnode1', 'dual_stack'), ('restart', 'antnode2', 'dual_stack')]
    modes, *dropins = result['diff']
    assert modes['before'] == {'antnode1': 'libp2p_only', 'antnode2': 'libp2p_only', 'antnode3': 'dual_stack'}
    assert modes['after'] == {'antnode1': 'dual_stack', 'antnode2': 'dual_stack', 'antnode3': 'dual_stack'}
    assert [d['after_header'] for d in dropins] == [
        '/etc/systemd/system/antnode1.service.d/ant-transport-mode.conf',
        '/etc/systemd/system/antnode2.service.d/ant-transport-mode.conf']
    assert 'ANT_TRANSPORT_MODE=libp2p_only' in dropins[0]['before']
    assert 'Environment=ANT_TRANSPORT_MODE=dual_stack' in dropins[0]['after']


def test_second_run_changes_nothing():
    host = FakeHost('libp2p_only', 'libp2p_only')
    assert switch(host)['changed'] is True
    again = switch(host)
    assert again['changed'] is False and again['switched'] == []
    assert again['msg'] == 'every selected node already runs dual_stack'
    assert len(host.restarts()) == 2  # the first run only


def test_check_mode_touches_nothing():
    host = FakeHost('libp2p_only', 'dual_stack')
    result = switch(host, check_mode=True)
    assert result['changed'] is True and result['switched'] == ['antnode1']
    assert by_name(result)['antnode1']['result'] == 'would_switch'
    assert result['diff'][0]['after'] == {'antnode1': 'dual_stack', 'antnode2': 'dual_stack'}
    assert host.restarts() == [] and host.modes() == {'antnode1': 'libp2p_only', 'antnode2': 'dual_stack'}


def test_select_by_peer_id():
    host = FakeHost('libp2p_only', 'libp2p_only')
    result = switch(host, nodes=['12D3KooWFake0002'])
    assert result['switched'] == ['antnode2'] and host.modes()['antnode1'] == 'libp2p_only'


def test_unknown_node_is_an_error():
    with pytest.raises(NodeError, match='antnode7'):
        switch(FakeHost('libp2p_only'), nodes=['antnode7'])


def test_batches_wait_for_readiness_in_between():
    host = FakeHost(*['libp2p_only'] * 5)
    result = switch(host, batch_size=2)
    reloads = [i for i, c in enumerate(host.calls) if c[0] == 'daemon-reload']
    assert len(reloads) == 3  # one per batch of 2, 2, 1
    assert [c[1] for c in host.calls if c[0] == 'restart'] == [f'antnode{i}' for i in range(1, 6)]
    assert result['switched'] == [f'antnode{i}' for i in range(1, 6)]


def test_versions_are_kept_per_node():
    host = FakeHost('libp2p_only', 'libp2p_only')
    host.nodes[1].version = '0.4.7'
    result = switch(host)
    assert result['switched'] == ['antnode1', 'antnode2']
    assert [n.version for n in host.nodes] == ['0.4.6', '0.4.7']  # a restart, never an antctl upgrade


def test_stopped_node_is_skipped_with_a_warning():
    host = FakeHost('libp2p_only', 'libp2p_only')
    host.nodes[1].status = 'Stopped'
    result = switch(host)
    assert result['switched'] == ['antnode1'] and result['not_switched'] == ['antnode2']
    assert by_name(result)['antnode2']['result'] == 'skipped'
    assert 'antnode2' in result['warnings'][0]


def test_node_without_mode_metric_is_refused():
    host = FakeHost('libp2p_only')
    host.text = lambda node: 'ant_networking_connected_peers 20\n'
    with pytest.raises(NodeError, match='antnode1 does not report its transport mode'):
        switch(host)


def test_unreadable_node_is_refused_before_anything_changes():
    host = FakeHost('libp2p_only', 'libp2p_only')
    host.nodes[1].fault = 'unresponsive'
    with pytest.raises(NodeError, match='cannot read the transport mode of antnode2: .*timed out'):
        switch(host)
    assert host.restarts() == []


# -- failures ----------------------------------------------------------------------------


def test_crash_on_switch_fails_and_restores():
    host = FakeHost('libp2p_only', 'libp2p_only', 'libp2p_only')
    host.nodes[1].fault, host.nodes[1].fault_modes = 'crash', {'dual_stack'}
    result = switch(host, batch_size=1, ready_timeout=60)
    assert result['failed'] is True and result['changed'] is True
    assert result['switched'] == ['antnode1']
    assert result['not_switched'] == ['antnode2', 'antnode3']
    crashed, untouched = by_name(result)['antnode2'], by_name(result)['antnode3']
    assert 'stopped after the restart' in crashed['error']
    assert crashed['restored'] is True and crashed['mode'] == 'libp2p_only'
    assert untouched['result'] == 'not_attempted' and untouched['changed'] is False
    assert host.modes() == {'antnode1': 'dual_stack', 'antnode2': 'libp2p_only', 'antnode3': 'libp2p_only'}
    assert host.nodes[1].status == 'Running'
    assert result['failed_nodes'][0]['service_name'] == 'antnode2'
    msg = result['msg']
    assert msg.startswith('1 of 3 node(s) failed to switch to dual_stack: antnode2: node stopped')
    assert 'Switched: antnode1.' in msg and 'Not switched: antnode2, antnode3.' in msg
    assert 'antnode2 is back in libp2p_only.' in msg
    # found quickly through antctl status, not after the whole ready_timeout
    assert crashed['seconds_to_ready'] is None


def test_never_ready_times_out_naming_the_node():
    host = FakeHost('libp2p_only', 'libp2p_only')
    host.nodes[0].fault, host.nodes[0].fault_modes = 'never_ready', {'dual_stack'}
    start = host.now
    result = switch(host, ready_timeout=30)
    failed = by_name(result)['antnode1']
    assert failed['error'].startswith('not ready within 30 s: mode dual_stack, 2 connected peers')
    assert 'more than 5 connected peers' in failed['error']
    assert failed['restored'] is True and host.modes()['antnode1'] == 'libp2p_only'
    assert result['switched'] == ['antnode2']  # same batch: it was restarted and became ready
    assert host.now - start < 30 + 30 + 10


def test_unresponsive_after_switch_times_out():
    host = FakeHost('libp2p_only')
    host.nodes[0].fault, host.nodes[0].fault_modes = 'unresponsive', {'dual_stack'}
    result = switch(host, ready_timeout=20)
    failed = by_name(result)['antnode1']
    assert 'not ready within 20 s' in failed['error'] and 'timed out' in failed['error']
    assert failed['restored'] is True


def test_no_restore_when_disabled():
    host = FakeHost('libp2p_only')
    host.nodes[0].fault = 'never_ready'
    result = switch(host, ready_timeout=10, restore_on_failure=False)
    node = result['nodes'][0]
    assert node['restored'] is None and node['mode'] == 'dual_stack'
    assert 'left as it is (restore_on_failure is false)' in result['msg']
    assert host.modes() == {'antnode1': 'dual_stack'}


def test_restore_that_fails_is_reported():
    host = FakeHost('libp2p_only')
    host.nodes[0].fault = 'never_ready'  # in every mode: the restore cannot succeed either
    result = switch(host, ready_timeout=10)
    node = result['nodes'][0]
    assert node['restored'] is False and 'not ready within 10 s' in node['restore_error']
    assert 'antnode1 could NOT be put back in libp2p_only' in result['msg']


def test_restart_failure_of_one_node_does_not_stop_the_others():
    host = FakeHost('libp2p_only', 'libp2p_only', 'libp2p_only')
    host.nodes[1].fault = 'restart_fails'
    result = switch(host, ready_timeout=30)
    nodes = by_name(result)
    assert nodes['antnode1']['result'] == 'switched' and nodes['antnode3']['result'] == 'switched'
    assert nodes['antnode2']['error'].startswith('systemctl could not restart it: systemctl restart antnode2')
    assert nodes['antnode2']['restored'] is True  # it never left libp2p_only
    assert result['switched'] == ['antnode1', 'antnode3']


def test_daemon_reload_failure_fails_the_batch_and_names_the_reason():
    host = FakeHost('libp2p_only', 'libp2p_only')
    host.systemd.fail_reload = True
    result = switch(host, ready_timeout=10, restore_on_failure=False)
    assert result['not_switched'] == ['antnode1', 'antnode2'] and host.restarts() == []
    assert 'systemd did not reload the drop-in' in by_name(result)['antnode1']['error']
    assert 'Access denied' in result['msg']


# -- the module edge (AnsibleModule, exit_json / fail_json) ------------------------------


class _Exit(Exception):
    def __init__(self, kind, result):
        super().__init__(kind)
        self.kind, self.result = kind, result


@pytest.fixture
def module_run(monkeypatch):
    """Run transport_mode.main() against a FakeHost; returns (kind, result)."""
    def exit_json(self, **result):
        raise _Exit('exit', result)

    def fail_json(self, msg, **result):
        raise _Exit('fail', dict(result, msg=msg))

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    real = transport_mode.ModeSwitcher

    def run(host, args):
        monkeypatch.setattr(transport_mode, 'reader_from_params', lambda _params: host.reader())
        monkeypatch.setattr(transport_mode, 'ModeSwitcher',
                            lambda *a, **kw: real(*a, clock=host.clock, sleep=host.sleep, **kw))
        with patch_module_args(args), pytest.raises(_Exit) as info:
            transport_mode.main()
        return info.value.kind, json.loads(json.dumps(info.value.result))
    return run


def test_main_diff_only_when_asked(module_run):
    kind, result = module_run(FakeHost('libp2p_only'), {'mode': 'dual_stack'})
    assert kind == 'exit' and 'diff' not in result and result['changed']
    kind, result = module_run(FakeHost('libp2p_only'), {'mode': 'dual_stack', '_ansible_diff': True})
    assert result['diff'][0]['before'] == {'antnode1': 'libp2p_only'}
    assert result['diff'][1]['before_header'].endswith('antnode1.service.d/ant-transport-mode.conf')


def test_main_check_mode(module_run):
    host = FakeHost('libp2p_only')
    kind, result = module_run(host, {'mode': 'dual_stack', '_ansible_check_mode': True})
    assert kind == 'exit' and result['changed'] and host.restarts() == []
    assert [c for c in host.calls if c[0] != 'status'] == []  # nothing written, nothing reloaded
    assert host.configured() == {'antnode1': 'libp2p_only'}


def test_main_forbidden_transition_fails_cleanly(module_run):
    host = FakeHost('libp2p_only')
    kind, result = module_run(host, {'mode': 'iroh_only'})
    assert kind == 'fail' and result['changed'] is False
    assert 'node antnode1: cannot go from libp2p_only to iroh_only' in result['msg']


def test_main_node_failure_is_a_failed_result(module_run):
    host = FakeHost('libp2p_only')
    host.nodes[0].fault = 'crash'
    kind, result = module_run(host, {'mode': 'dual_stack', 'ready_timeout': 30})
    assert kind == 'fail' and result['changed'] is True
    assert result['failed_nodes'][0]['service_name'] == 'antnode1'
    assert 'failed' not in result  # fail_json sets it


def test_main_rejects_unknown_mode(module_run):
    kind, result = module_run(FakeHost('libp2p_only'), {'mode': 'quic'})
    assert kind == 'fail' and 'value of mode must be one of' in result['msg']


def test_no_version_is_needed():
    host = FakeHost('libp2p_only')
    status = host.status
    host.status = lambda: [dict(n, version=None) for n in status()]
    host.text = lambda node: FakeHost.text(host, node).replace('ant_node_antnode_version_info', 'other_info')
    assert switch(host)['switched'] == ['antnode1']


def test_restore_puts_the_drop_in_back_and_restarts_a_crashed_node():
    host = FakeHost('libp2p_only')
    host.nodes[0].fault, host.nodes[0].fault_modes = 'crash', {'dual_stack'}
    result = switch(host, ready_timeout=30)
    node = result['nodes'][0]
    assert node['restored'] is True and host.nodes[0].status == 'Running'
    assert host.restarts() == [('antnode1', 'dual_stack'), ('antnode1', 'libp2p_only')]
    assert host.modes() == {'antnode1': 'libp2p_only'} and host.configured() == {'antnode1': 'libp2p_only'}


@pytest.mark.parametrize('name,value,message', [
    ('batch_size', -1, 'batch_size must be at least 0, got -1'),
    ('ready_timeout', 0, 'ready_timeout must be at least 1, got 0'),
    ('interval', -5, 'interval must be at least 0'),
    ('metrics_timeout', 0.0, 'metrics_timeout must be positive'),
])
def test_out_of_range_options(name, value, message):
    problems = _mode_switch.check_params(params(**{name: value}))
    assert len(problems) == 1 and message in problems[0]
    assert _mode_switch.check_params(params()) == []


def test_main_refuses_out_of_range_options(module_run):
    host = FakeHost('libp2p_only')
    kind, result = module_run(host, {'mode': 'dual_stack', 'batch_size': -2})
    assert kind == 'fail' and 'batch_size must be at least 0' in result['msg'] and host.calls == []


def test_rollback_to_libp2p_only_switches_an_unreadable_node():
    host = FakeHost('dual_stack', 'dual_stack')
    host.nodes[0].fault, host.nodes[0].fault_modes = 'unresponsive', {'dual_stack'}
    result = switch(host, mode='libp2p_only', allow_rollback=True)
    blind = by_name(result)['antnode1']
    assert blind['result'] == 'switched' and blind['previous_mode'] == 'dual_stack'  # from its drop-in
    assert 'mode unreadable' in blind['note'] and 'timed out' in blind['note']
    assert host.modes() == {'antnode1': 'libp2p_only', 'antnode2': 'libp2p_only'}


def test_unreadable_node_still_stops_other_rollbacks():
    host = FakeHost('iroh_primary')
    host.nodes[0].fault = 'unresponsive'
    with pytest.raises(NodeError, match='cannot read the transport mode of antnode1'):
        switch(host, mode='dual_stack', allow_rollback=True)
    assert host.restarts() == []


def test_blind_rollback_that_fails_is_not_undone():
    host = FakeHost('dual_stack')
    host.nodes[0].fault = 'unresponsive'  # in every mode
    result = switch(host, mode='libp2p_only', allow_rollback=True, ready_timeout=10)
    node = result['nodes'][0]
    # a rollback degrades, never fails: a node not ready in time is reported, not a failure
    assert 'failed' not in result and result['changed'] is True
    assert node['result'] == 'not_ready' and 'not ready within 10 s' in node['error']
    assert node['seconds_waited'] >= 10
    assert node['previous_mode'] == 'dual_stack'  # from its drop-in
    assert node['restored'] is None and host.restarts() == [('antnode1', 'libp2p_only')]
    assert host.configured() == {'antnode1': 'libp2p_only'}  # a rollback is not undone
    assert [n['service_name'] for n in result['not_ready']] == ['antnode1']
    assert result['not_switched'] == ['antnode1'] and result['switched'] == []
    assert 'NOT READY' in result['msg'] and 'antnode1' in result['msg']
    assert any('not ready yet' in w and 'antnode1' in w for w in result['warnings'])


def test_failed_rollback_of_a_readable_node_is_not_undone_either():
    host = FakeHost('iroh_primary', 'iroh_primary')
    host.nodes[1].fault, host.nodes[1].fault_modes = 'never_ready', {'dual_stack'}
    result = switch(host, mode='dual_stack', allow_rollback=True, ready_timeout=10)
    assert result['switched'] == ['antnode1'] and by_name(result)['antnode2']['restored'] is None
    assert host.configured() == {'antnode1': 'dual_stack', 'antnode2': 'dual_stack'}


def test_blind_rollback_without_a_recorded_mode():
    host = FakeHost('dual_stack')
    host.nodes[0].fault = 'unresponsive'
    del host.systemd.files['antnode1']  # a node never switched by the collection: no drop-in
    result = switch(host, mode='libp2p_only', allow_rollback=True, ready_timeout=10)
    node = result['nodes'][0]
    assert node['previous_mode'] is None and node['result'] == 'not_ready'
    assert host.restarts() == [('antnode1', 'libp2p_only')]


def test_rollback_rewrites_the_mode_of_stopped_nodes_without_starting_them():
    host = FakeHost('iroh_primary', 'iroh_primary', 'libp2p_only')
    host.nodes[1].status = 'Stopped'
    host.nodes[2].status = 'Stopped'  # already in the target: left alone
    preview = switch(host, check_mode=True, mode='libp2p_only', allow_rollback=True)
    assert by_name(preview)['antnode2']['result'] == 'would_reconfigure' and host.calls.count(('status',)) >= 1
    assert [c for c in host.calls if c[0] != 'status'] == []
    result = switch(host, mode='libp2p_only', allow_rollback=True)
    nodes = by_name(result)
    assert nodes['antnode1']['result'] == 'switched'
    assert nodes['antnode2']['result'] == 'reconfigured' and nodes['antnode2']['previous_mode'] == 'iroh_primary'
    assert nodes['antnode3']['result'] == 'skipped'
    assert result['reconfigured'] == ['antnode2'] and result['switched'] == ['antnode1']
    assert ('write', 'antnode2', 'libp2p_only') in host.calls
    assert 'antnode2' not in [name for name, _mode in host.restarts()] and ('start', 'antnode2') not in host.calls
    assert host.nodes[1].status == 'Stopped' and host.configured()['antnode2'] == 'libp2p_only'
    assert result['msg'] == 'switched antnode1 and set stopped antnode2 to libp2p_only'
    assert result['diff'][0]['before']['antnode2'] == 'iroh_primary'


def test_forward_moves_leave_stopped_nodes_alone():
    host = FakeHost('libp2p_only', 'libp2p_only')
    host.nodes[1].status = 'Stopped'
    result = switch(host)
    assert by_name(result)['antnode2']['result'] == 'skipped'
    assert ('write', 'antnode2', 'dual_stack') not in host.calls


def test_no_unit_file_refuses_before_writing_anything():
    host = FakeHost('libp2p_only', 'libp2p_only')
    host.systemd.no_unit = {'antnode2'}
    with pytest.raises(TransitionError, match=r'no unit file for antnode2 in /etc/systemd/system: set unit_dir'):
        switch(host)
    assert [c for c in host.calls if c[0] != 'status'] == []


# -- one systemctl call per batch, per-node ready timeouts, rollbacks that degrade -------


def test_a_batch_is_restarted_by_one_systemctl_call():
    host = FakeHost('libp2p_only', 'libp2p_only', 'libp2p_only')
    result = switch(host, interval=0)
    assert result['switched'] == ['antnode1', 'antnode2', 'antnode3']
    assert [c for c in host.calls if c[0] in ('daemon-reload', 'systemctl-restart')] == [
        ('daemon-reload',), ('systemctl-restart', ('antnode1', 'antnode2', 'antnode3'))]


def test_one_unit_failing_in_a_multi_unit_restart_is_named_and_the_others_switch():
    host = FakeHost('libp2p_only', 'libp2p_only', 'libp2p_only')
    host.nodes[1].fault = 'restart_fails'
    result = switch(host, interval=0, ready_timeout=30)
    nodes = by_name(result)
    assert result['failed'] is True
    assert result['switched'] == ['antnode1', 'antnode3']
    assert nodes['antnode2']['result'] == 'failed'
    assert nodes['antnode2']['error'].startswith('systemctl could not restart it: Job for antnode2.service failed')
    assert len([c for c in host.calls if c[0] == 'systemctl-restart']) == 1


def test_failed_units_reads_systemctl_messages():
    from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import failed_units
    stderr = ('Failed to restart antnode9.service: Unit antnode9.service not found.\n'
              'Job for antnode2.service failed because the control process exited with error code.\n'
              'See "systemctl status antnode2.service" and "journalctl -xeu antnode2.service" for details.\n')
    assert set(failed_units(stderr, ['antnode2', 'antnode9', 'antnode1'])) == {'antnode2', 'antnode9'}
    assert failed_units(stderr, ['antnode1']) == {}


def test_unnamed_systemctl_failure_is_put_on_every_unit():
    host = FakeHost('libp2p_only', 'libp2p_only')

    def broken(*args, timeout=None):
        raise SystemdError('systemctl restart ... did not finish within 120 s', cmd=['systemctl', *args])
    host.systemd.run = broken
    result = switch(host, interval=0, ready_timeout=10, restore_on_failure=False)
    assert all('did not finish' in n['error'] for n in result['nodes'])
    assert result['switched'] == []


def test_ready_timeout_counts_from_each_nodes_own_restart():
    # antnode3 is restarted 2 x 8 s after the batch started and needs 5 s to be ready: 21 s after the
    # batch's start, beyond a 15 s timeout counted from the batch, within it counted from its restart.
    host = FakeHost('libp2p_only', 'libp2p_only', 'libp2p_only', restart_time=5.0)
    result = switch(host, interval=8000, ready_timeout=15)
    assert 'failed' not in result and result['switched'] == ['antnode1', 'antnode2', 'antnode3']
    assert 5.0 <= by_name(result)['antnode3']['seconds_to_ready'] < 15


def test_rollback_reports_a_slow_node_and_finishes_the_other_batches():
    host = FakeHost('dual_stack', 'dual_stack', 'dual_stack', 'dual_stack')
    host.nodes[0].fault, host.nodes[0].fault_modes = 'never_ready', {'libp2p_only'}
    result = switch(host, mode='libp2p_only', allow_rollback=True, batch_size=2, interval=0, ready_timeout=10)
    assert 'failed' not in result
    assert result['switched'] == ['antnode2', 'antnode3', 'antnode4']
    assert host.configured() == dict.fromkeys(['antnode1', 'antnode2', 'antnode3', 'antnode4'], 'libp2p_only')
    (slow,) = result['not_ready']
    assert slow['service_name'] == 'antnode1' and slow['seconds_waited'] >= 10 and slow['mode'] == 'libp2p_only'
    assert '2 connected peers' in slow['error']


def test_forward_switch_still_fails_on_a_slow_node():
    host = FakeHost('libp2p_only', 'libp2p_only', 'libp2p_only')
    host.nodes[0].fault, host.nodes[0].fault_modes = 'never_ready', {'dual_stack'}
    result = switch(host, batch_size=1, interval=0, ready_timeout=10)
    assert result['failed'] is True and result['not_ready'] == []
    assert by_name(result)['antnode1']['result'] == 'failed'
    assert [by_name(result)[n]['result'] for n in ('antnode2', 'antnode3')] == ['not_attempted'] * 2


def test_main_rollback_with_a_slow_node_succeeds(module_run):
    host = FakeHost('dual_stack', 'dual_stack')
    host.nodes[1].fault = 'never_ready'
    args = {'mode': 'libp2p_only', 'allow_rollback': True, 'ready_timeout': 5, 'interval': 0}
    kind, result = module_run(host, args)
    assert kind == 'exit' and result['changed'] is True
    assert result['switched'] == ['antnode1'] and result['not_ready'][0]['service_name'] == 'antnode2'


# -- what a rollback needs to know without reading the fleet first -------------------------


def test_beyond_target_names_the_nodes_a_rollback_brings_back():
    host = FakeHost('dual_stack', 'libp2p_only', 'iroh_primary', 'dual_stack')
    host.nodes[3].status = 'Stopped'  # its drop-in says dual_stack
    result = switch(host, mode='libp2p_only', allow_rollback=True)
    # running nodes by their metric, the stopped one by its drop-in; the one already there is not named
    assert result['beyond_target'] == ['antnode1', 'antnode3', 'antnode4']
    assert result['switched'] == ['antnode1', 'antnode3'] and result['reconfigured'] == ['antnode4']
    assert result['unchanged'] == ['antnode2']


def test_host_already_at_the_target_is_not_touched_and_names_nothing():
    host = FakeHost('libp2p_only', 'libp2p_only')
    result = switch(host, mode='libp2p_only', allow_rollback=True)
    assert result['beyond_target'] == [] and result['changed'] is False
    assert host.restarts() == [] and [c for c in host.calls if c[0] != 'status'] == []


def test_beyond_target_is_reported_when_a_node_fails_the_rollback():
    host = FakeHost('dual_stack', 'dual_stack')
    host.nodes[1].fault, host.nodes[1].fault_modes = 'crash', {'libp2p_only'}
    result = switch(host, mode='libp2p_only', allow_rollback=True, ready_timeout=60)
    assert result['failed'] is True
    assert result['beyond_target'] == ['antnode1', 'antnode2']


def test_readiness_asks_antctl_only_while_a_node_does_not_answer():
    # Slow nodes that answer their metrics all along are running: no crash check through antctl status
    # besides the plan's read, however long they take (10 s here, status checks were every 2 s).
    host = FakeHost('dual_stack', 'dual_stack', restart_time=10.0)
    result = switch(host, mode='libp2p_only', allow_rollback=True, ready_timeout=60)
    assert result['switched'] == ['antnode1', 'antnode2']
    assert host.calls.count(('status',)) == 1
    # A node that stops answering is looked up (and found crashed) as before.
    host = FakeHost('dual_stack', 'dual_stack', restart_time=10.0)
    host.nodes[0].fault, host.nodes[0].fault_modes = 'crash', {'libp2p_only'}
    result = switch(host, mode='libp2p_only', allow_rollback=True, ready_timeout=60)
    assert 'stopped after the restart' in by_name(result)['antnode1']['error']
    assert host.calls.count(('status',)) > 1


# -- readiness polling: one probe per round until the batch comes up ----------------------


def readiness_scrapes(host):
    """Scrapes after the plan's read of every node (one each)."""
    return host.scrapes[len(host.nodes):]


def test_a_batch_coming_up_together_is_polled_through_one_node_until_it_is_ready():
    host = FakeHost(*['dual_stack'] * 20, restart_time=4.0)
    result = switch(host, mode='libp2p_only', allow_rollback=True, interval=0)
    assert result['switched'] == [f'antnode{i}' for i in range(1, 21)]
    polls = readiness_scrapes(host)
    # Until the first node is ready (4 s), one node per round; then every other node once (each was ready).
    assert len(polls) <= 4.0 / _mode_switch.POLL_INTERVAL + 2 + 19, polls
    assert sorted(polls[-19:]) == sorted(f'antnode{i}' for i in range(1, 21) if f'antnode{i}' != polls[-20])
    assert all(4.0 <= n['seconds_to_ready'] < 6.0 for n in result['nodes'])


def test_a_probe_that_never_gets_ready_does_not_hold_the_others_back():
    host = FakeHost(*['dual_stack'] * 5, restart_time=2.0)
    host.nodes[0].fault, host.nodes[0].fault_modes = 'never_ready', {'libp2p_only'}  # the first probe
    result = switch(host, mode='libp2p_only', allow_rollback=True, interval=0, ready_timeout=30)
    assert result['switched'] == ['antnode2', 'antnode3', 'antnode4', 'antnode5']
    assert all(n['seconds_to_ready'] < 2.0 + 3.0 for n in result['nodes'] if n['result'] == 'switched')
    (slow,) = result['not_ready']
    assert slow['service_name'] == 'antnode1' and slow['seconds_waited'] >= 30


def test_a_node_that_crashes_beside_the_probe_is_found_by_the_crash_check():
    host = FakeHost(*['libp2p_only'] * 4, restart_time=20.0)
    host.nodes[2].fault, host.nodes[2].fault_modes = 'crash', {'dual_stack'}
    start = host.now
    result = switch(host, interval=0, ready_timeout=120, restore_on_failure=False)
    crashed = by_name(result)['antnode3']
    assert 'stopped after the restart' in crashed['error']
    assert host.now - start < 120  # found by antctl status, not at the timeout
    assert result['switched'] == ['antnode1', 'antnode2', 'antnode4']


def test_a_node_is_timed_out_only_on_an_answer_read_at_its_deadline():
    # antnode2 becomes ready just before its deadline while the probes look at antnode1 (never ready):
    # the round at the deadline reads it again, so it is switched, not reported on an old answer.
    host = FakeHost('dual_stack', 'dual_stack', restart_time=1.0)
    host.nodes[0].fault, host.nodes[0].fault_modes = 'never_ready', {'libp2p_only'}
    host.nodes[1].restart_time = 9.95
    result = switch(host, mode='libp2p_only', allow_rollback=True, interval=0, ready_timeout=10)
    assert result['switched'] == ['antnode2']
    assert [n['service_name'] for n in result['not_ready']] == ['antnode1']
