# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One host's nodes batch by batch, the guard asked before each batch (finding 3: no orphan switching)."""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.node_batches import BatchedSwitch

NODES = ['antnode1', 'antnode2', 'antnode3', 'antnode4', 'antnode5']


class FakeModule:
    """transport_mode over five libp2p_only nodes (antnode5 already dual_stack)."""

    def __init__(self, fail_on=None):
        self.calls = []
        self.fail_on = fail_on

    def __call__(self, args, check_mode):
        self.calls.append((tuple(args.get('nodes') or ()), check_mode))
        nodes = []
        for name in args.get('nodes') or NODES:
            if name == 'antnode5':
                nodes.append({'service_name': name, 'previous_mode': 'dual_stack', 'mode': 'dual_stack',
                              'result': 'unchanged', 'changed': False})
            elif check_mode:
                nodes.append({'service_name': name, 'previous_mode': 'libp2p_only', 'mode': 'dual_stack',
                              'result': 'would_switch', 'changed': True})
            elif name == self.fail_on:
                nodes.append({'service_name': name, 'previous_mode': 'libp2p_only', 'mode': 'libp2p_only',
                              'result': 'failed', 'changed': True, 'error': 'not ready', 'restored': True})
            else:
                nodes.append({'service_name': name, 'previous_mode': 'libp2p_only', 'mode': 'dual_stack',
                              'result': 'switched', 'changed': True, 'seconds_to_ready': 1.0})
        out = {'changed': any(n['changed'] for n in nodes), 'mode': 'dual_stack', 'nodes': nodes}
        if any(n['result'] == 'failed' for n in nodes):
            out.update(failed=True, msg='1 of 1 node(s) failed', failed_nodes=[{'service_name': self.fail_on}])
        return out


def allow():
    return guard.Decision(True)


def test_batch_size_zero_is_one_call():
    module = FakeModule()
    result = BatchedSwitch(module, allow, 0).run({'mode': 'dual_stack'})
    assert module.calls == [((), False)] and len(result['nodes']) == 5


def test_one_call_per_batch_after_a_check_mode_plan():
    module = FakeModule()
    asked = []

    def may_continue():
        asked.append(1)
        return guard.Decision(True)
    result = BatchedSwitch(module, may_continue, 2).run({'mode': 'dual_stack'})
    assert module.calls == [((), True), (('antnode1', 'antnode2'), False), (('antnode3', 'antnode4'), False)]
    assert len(asked) == 1  # before every batch but the first (the task's own guard ran before)
    assert result['switched'] == NODES[:4] and result['unchanged'] == ['antnode5'] and result['changed']
    assert not result.get('failed') and result['node_batches'] == 2


def test_the_guard_stops_between_batches_and_the_rest_is_not_attempted():
    module = FakeModule()
    decisions = iter([guard.Decision(False, guard.HALTED, 'the migration is halted (x)')])
    result = BatchedSwitch(module, lambda: next(decisions), 1).run({'mode': 'dual_stack'})
    assert module.calls == [((), True), (('antnode1',), False)]
    assert result['failed'] and result['refused'] == guard.HALTED and result['switched'] == ['antnode1']
    rest = {n['service_name']: n for n in result['nodes']}
    assert rest['antnode2']['result'] == 'not_attempted' and 'the migration is halted' in rest['antnode2']['error']
    assert rest['antnode2']['mode'] == 'libp2p_only'
    assert 'Stopped before the next node batch' in result['msg']
    assert not result.get('orphaned')


def test_a_dead_controller_stops_the_worker_which_records_what_it_did():
    module = FakeModule()
    recorded = []
    gone = guard.Decision(False, guard.CONTROLLER_GONE, 'the controller process 1 of this run is gone')
    result = BatchedSwitch(module, lambda: gone, 2, controller_alive=lambda: False,
                           on_orphaned=recorded.append).run({'mode': 'dual_stack'})
    assert module.calls == [((), True), (('antnode1', 'antnode2'), False)]
    assert result['orphaned'] and result['refused'] == guard.CONTROLLER_GONE
    assert recorded == [result] and recorded[0]['switched'] == ['antnode1', 'antnode2']


def test_a_controller_dying_during_the_last_call_is_recorded_too():
    recorded = []
    result = BatchedSwitch(FakeModule(), allow, 0, controller_alive=lambda: False,
                           on_orphaned=recorded.append).run({'mode': 'dual_stack'})
    assert result['orphaned'] and recorded == [result]


def test_a_failed_batch_stops_the_host():
    module = FakeModule(fail_on='antnode2')
    result = BatchedSwitch(module, allow, 1).run({'mode': 'dual_stack'})
    assert module.calls[-1] == (('antnode2',), False) and len(module.calls) == 3
    assert result['failed'] and result['switched'] == ['antnode1']
    assert {n['service_name']: n['result'] for n in result['nodes']}['antnode3'] == 'not_attempted'
    assert result['msg'].startswith('1 of 1 node(s) failed')


def test_few_nodes_need_no_plan_batches():
    module = FakeModule()
    BatchedSwitch(module, allow, 10).run({'mode': 'dual_stack'})
    assert module.calls == [((), True), ((), False)]


def test_a_refused_plan_is_returned_as_is():
    def refuse(args, check_mode):
        return {'failed': True, 'msg': 'refused, nothing was changed'}
    assert BatchedSwitch(refuse, allow, 1).run({'mode': 'iroh_only'})['msg'] == 'refused, nothing was changed'


def test_a_rollback_node_not_ready_is_carried_through_and_the_next_batches_run():
    module = FakeModule()

    def run(args, check_mode):
        out = module(args, check_mode)
        if not check_mode and 'antnode1' in (args.get('nodes') or ()):
            slow = out['nodes'][0]
            slow.update(result='not_ready', error='not ready within 5 s', seconds_waited=5.2)
            out['not_ready'] = [{'service_name': 'antnode1', 'seconds_waited': 5.2, 'mode': 'dual_stack',
                                 'error': 'not ready within 5 s'}]
        return out
    result = BatchedSwitch(run, allow, 2).run({'mode': 'dual_stack'})
    assert not result.get('failed') and result['node_batches'] == 2
    assert result['switched'] == ['antnode2', 'antnode3', 'antnode4']
    assert [n['service_name'] for n in result['not_ready']] == ['antnode1']
    assert 'antnode1' in result['not_switched'] and 'NOT READY yet: antnode1' in result['msg']
