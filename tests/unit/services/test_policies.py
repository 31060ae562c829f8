# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Policies that do what they say: the failure budget, the gradual rollback's order and pause, the plan's words,
the drill, and a rollback that invalidates the canary."""

from __future__ import annotations

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, wave_planning
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import (
    alerts,
    canary,
    control,
    rollback,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.wording import shown
from ant_fleet_sim.model import make_peer_id


def fleet(hosts=6, per_host=4, modes=None):
    modes = modes or {}
    return [{'host': 'h%02d' % h, 'service_name': 'antnode%d' % i, 'peer_id': make_peer_id(1, 'h%02d' % h, i),
             'mode': modes.get('h%02d' % h, 'libp2p_only')}
            for h in range(1, hosts + 1) for i in range(1, per_host + 1)]


@pytest.fixture
def book(tmp_path):
    with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as handle:
        yield handle


def test_failures_accumulate_across_acknowledged_halts_until_an_explicit_reset(book):
    book.set_failure_budget(2)
    book.record_failure('h1', 'antnode1', reason='wave 1')
    book.set_halt('batch failed', 'tracker', 'migration_tracker')
    control.resume(book, 'op', ack=True)                          # the first halt acknowledged
    assert control.check(book).get('failed') is None                # one of two used: a wave may start
    book.record_failure('h2', 'antnode1', reason='wave 2')
    book.set_halt('batch failed', 'tracker', 'migration_tracker')
    control.resume(book, 'op', ack=True)                          # the second acknowledged too
    refused = control.check(book)
    assert refused['refused'] == 'budget' and 'budget: 2 of 2 failed node(s) used' in refused['msg']
    assert 'budget_reset.yml' in refused['msg']
    # A rollback (or a conclusion) is not refused by the budget.
    assert control.check(book, allow_paused=True, allow_halted=True).get('failed') is None
    assert control.reset_budget(book, 'op', 'both hosts repaired')['changed']
    assert control.check(book).get('failed') is None and control.check(book)['budget']['used'] == 0
    assert 'since the reset at' in control.check(book)['budget_text']


def test_a_zero_budget_allows_no_failure_but_starts_clean(book):
    book.set_failure_budget(0)
    assert not control.budget_exhausted(book.failure_budget())
    book.record_failure('h1', 'antnode1')
    assert control.budget_exhausted(book.failure_budget())


def test_a_gradual_rollback_takes_the_hosts_the_alert_names_first_worst_first():
    nodes = fleet(modes={'h01': 'dual_stack', 'h02': 'dual_stack', 'h03': 'dual_stack', 'h04': 'dual_stack'})
    ranking = {'verdict': 'fail', 'rules': [
        {'id': 'iroh_latency_spike', 'severity': 'warning', 'verdict': 'fail', 'hosts': {'h01': 0.9}},
        {'id': 'high_error_rate_iroh', 'severity': 'critical', 'verdict': 'fail', 'hosts': {'h04': 0.5, 'h02': 0.2}},
        {'id': 'high_error_rate_libp2p', 'severity': 'critical', 'verdict': 'pass', 'hosts': {}}]}
    assert alerts.worst_hosts(ranking) == ['h04', 'h02', 'h01']
    rules = alert_rules.load_rules(settings={'rate_window': '10s', 'evaluation_interval': '2s'})
    plan = rollback.plan('gradual', 'libp2p_only', [], nodes=nodes, batches=[1], ranking=ranking, pause_seconds=4,
                         ruleset=rules)
    assert plan['hosts'] == ['h04', 'h02', 'h01', 'h03']
    assert plan['pause_seconds'] == 12.0 and '12 s between batches, not the 4 asked' in plan['message']
    unranked = rollback.plan('gradual', 'libp2p_only', [], nodes=nodes, batches=[1], ruleset=rules, pause_seconds=30)
    assert unranked['hosts'] == ['h01', 'h02', 'h03', 'h04'] and unranked['pause_seconds'] == 30.0


def test_a_plan_whose_batches_differ_from_the_asked_says_why():
    plan = wave_planning.plan_wave(fleet(hosts=10, per_host=5), 100, batches=['100%'])
    assert plan['batch_sizes'] != [10]
    assert 'the batches differ from the [10] asked (100%) because no batch may restart more than 2' in plan['message']
    same = wave_planning.plan_wave(fleet(hosts=10, per_host=5), 10, batches=[1])
    assert 'differ' not in same['message']


def test_a_cut_list_says_how_many_it_left_out():
    assert shown(['a', 'b', 'c'], 2) == 'a, b (and 1 more)' and shown(['a', 'b'], 2) == 'a, b'
    nodes = fleet(hosts=10, per_host=3, modes={'h01': 'iroh_primary'})
    plan = wave_planning.plan_wave(nodes, 100, stage='iroh_only')
    assert any('27 node(s) still run libp2p_only' in r and '(and 7 more)' in r for r in plan['refusals'])


def test_the_rollback_time_advice_matches_the_arithmetic():
    nodes = fleet(hosts=4, per_host=2)
    one_round = wave_planning.plan_wave(nodes, 50, switch_seconds=[400.0], rollback_sla_seconds=60, rollback_forks=50)
    assert any('more forks cannot help' in r for r in one_round['refusals'])
    rounds = wave_planning.plan_wave(nodes, 50, switch_seconds=[40.0], rollback_sla_seconds=60, rollback_forks=1)
    assert any('more rollback forks (2 rounds of 1)' in r for r in rounds['refusals'])


def test_a_peer_id_that_does_not_decode_is_a_plan_error_naming_the_node():
    nodes = fleet(hosts=2, per_host=2)
    nodes[1]['peer_id'] = '12D3KooWnot-a-peer-id'
    with pytest.raises(wave_planning.PlanError, match='node h01/antnode2 reports a peer id'):
        wave_planning.plan_wave(nodes, 50)


def test_a_rollback_invalidates_the_canary_unless_kept(book):
    book.set_canary_verdict('passed', hosts=['h01'], reason='soaked')
    assert canary.after_rollback(book, 'dual_stack', ['h01'], 'x', 'op') is None      # another stage
    assert canary.after_rollback(book, 'libp2p_only', [], 'x', 'op') is None          # nothing moved back
    assert canary.after_rollback(book, 'libp2p_only', ['h01'], 'kept on purpose', 'op', keep=True) == 'kept'
    assert canary.passed(book.canary_verdict())
    assert book.events(kinds=['canary_kept'])[0]['data']['reason'] == 'kept on purpose'
    assert canary.after_rollback(book, 'libp2p_only', ['h01'], 'error rate', 'op') == 'invalidated'
    verdict = book.canary_verdict()
    assert verdict['verdict'] == 'invalidated' and 'run playbooks/canary.yml again' in verdict['reason']
    assert 'last verdict: invalidated' in control.check(book, require_canary=True)['msg']


def test_the_drill_is_recorded_as_a_drill_with_its_times(book):
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import transition_items

    run = book.start_run('canary.yml', 'op', kind='canary')
    back = {'mode': 'libp2p_only', 'nodes': [{'service_name': 'antnode1', 'previous_mode': 'dual_stack',
                                              'mode': 'libp2p_only', 'result': 'switched', 'seconds_to_ready': 3.5}]}
    forward = {'mode': 'dual_stack', 'nodes': [{'service_name': 'antnode1', 'previous_mode': 'libp2p_only',
                                                'mode': 'dual_stack', 'result': 'switched', 'seconds_to_ready': 4.0}]}
    book.record_transition('h01', 'antnode1', None, 'dual_stack_stable', mode='dual_stack', run_id=run)
    book.record_transitions(transition_items('h01', back, purpose=canary.DRILL + ' (back)'), run_id=run)
    book.record_transitions(transition_items('h01', forward, 'dual_stack_stable', purpose=canary.DRILL + ' (forward)'),
                            run_id=run)
    assert book.node('h01', 'antnode1')['state'] == 'dual_stack_stable'       # as it was
    assert book.history(limit=2, run_id=run)[1]['reason'].startswith('rollback drill (back): dual_stack -> libp2p_only')
    canary.record_verdict(book, 'passed', ['h01'], 'soaked', 'op', run_id=run)
    assert book.canary_verdict()['drill'] == {'back': [3.5], 'forward': [4.0]}
    assert book.events(kinds=['rollback_drill'])[0]['data']['back'] == [3.5]
    # The rollback projection takes the switches back only.
    assert control.rollback_switch_times(book) == {'switch_seconds': [3.5], 'switch_direction': 'backward'}


def test_judged_now_is_the_current_value_not_the_worst_over_the_for_window():
    rules = alert_rules.load_rules(settings={'rate_window': '10s', 'evaluation_interval': '2s'})
    rule = rules.get('high_error_rate_iroh')
    now = rules.judged_now()
    assert now.get('high_error_rate_iroh').for_seconds == 0 and rule.for_seconds == 300
    assert [r.id for r in now.select()] == [r.id for r in rules.select()]          # the same rules, enabled alike
    scope = alert_rules.Scope(hosts=['h1'])
    assert '_over_time(' in alert_rules.window_query(rule, rules, scope)[0]
    assert '_over_time(' not in alert_rules.window_query(now.get('high_error_rate_iroh'), now, scope)[0]
