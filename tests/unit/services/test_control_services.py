# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pause, resume, the canary verdict, a wave's end and the rollback guard: each use case written once."""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import alerts, canary, control, wave


def test_pause_twice_and_resume_decisions(tmp_path):
    with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as book:
        assert control.resume(book, 'bob')['msg'] == 'migration is neither paused nor halted'
        assert control.pause(book, 'why', 'alice')['changed'] is True
        again = control.pause(book, 'other', 'bob')
        assert again['changed'] is False and again['msg'] == 'already paused by alice: why'
        book.set_halt('gate failed', 'tracker', 'gate')
        refused = control.resume(book, 'bob')
        assert refused['failed'] and refused['refused'] == 'halted' and 'resume with ack' in refused['msg']
        assert book.get_flags()['paused'] and book.get_flags()['halted']    # nothing cleared
        done = control.resume(book, 'bob', ack=True)
        assert done['changed'] and done['msg'] == 'migration resumed by bob (halt acknowledged)'
        assert book.get_flags() == {'paused': None, 'halted': None}


def test_a_stopped_batch_halts_unless_the_guard_saw_a_pause(tmp_path):
    with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as book:
        assert control.stop_batch(book, {'refused': 'paused'}, 'x', 'op', 'wave')['changed'] is False
        assert book.get_flags()['halted'] is None
        control.stop_batch(book, {'msg': 'boom'}, 'switch failed', 'op', 'wave')
        assert book.get_flags()['halted']['reason'] == 'switch failed'


def test_the_canary_verdict_has_one_test():
    assert canary.passed({'verdict': 'passed'})
    for verdict in (None, {}, {'verdict': 'PASSED'}, {'status': 'passed'}, {'verdict': 'failed'}):
        assert not canary.passed(verdict)
        assert canary.refusal(verdict).startswith('the canary has not passed')
    assert canary.conclusion({'verdict': 'frozen', 'hosts': ['h1']})['outcome'] == 'frozen'
    assert canary.conclusion({'verdict': 'passed', 'hosts': ['h1']})['failed'] is False


def test_a_stopped_canary_is_frozen_without_a_verdict_and_failed_with_one(tmp_path):
    with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as book:
        book.set_halt('no data', 'gate', 'gate', cause='no_verdict')
        frozen = canary.record_stop(book, ['h1'], 'gate inconclusive', 'op')
        assert frozen['verdict'] == 'frozen' and frozen['roll_back'] is False
        book.resume('op', ack=True)
        book.set_halt('error rate', 'gate', 'gate', cause='verdict')
        failed = canary.record_stop(book, ['h1'], 'gate failed', 'op')
        assert failed['verdict'] == 'failed' and failed['roll_back'] is True
        assert book.canary_verdict()['verdict'] == 'failed'


def test_wave_conclusion_and_containment(tmp_path):
    assert wave.conclusion({}, 'rollback')['failed'] is False
    assert wave.conclusion({'halted': {'reason': 'r', 'cause': 'no_verdict'}}, 'rollback')['outcome'] == 'frozen'
    assert wave.conclusion({'halted': {'reason': 'r', 'cause': 'verdict'}}, 'freeze')['outcome'] == 'halted'
    assert wave.conclusion({'paused': {'reason': 'r', 'operator': 'a'}}, 'rollback')['outcome'] == 'paused'
    with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as book:
        assert wave.record_containment(book, 'rollback', ['h1'])['recorded'] is False
        book.set_halt('gate failed', 'gate', 'gate', cause='verdict')
        wave.record_containment(book, 'rollback', ['h1'])
        assert book.events(kinds=['rollback'])[0]['data']['strategy'] == 'fast'


def test_the_previous_mode_comes_from_the_mode_order():
    assert [_modes.previous_mode(m) for m in _modes.MODES] == [None, 'libp2p_only', 'dual_stack', 'iroh_primary']


def test_rollback_rules_are_the_critical_rules_and_follow_overrides():
    rules = alert_rules.load_rules()
    assert alerts.rollback_rule_ids(rules) == [r.id for r in rules.select() if r.severity == 'critical']
    demoted = alert_rules.load_rules(overrides={'high_error_rate_iroh': {'severity': 'warning'}})
    assert 'high_error_rate_iroh' not in alerts.rollback_rule_ids(demoted)
    promoted = alert_rules.load_rules(overrides={'iroh_latency_spike': {'severity': 'critical'}})
    assert 'iroh_latency_spike' in alerts.rollback_rule_ids(promoted)


def gate(*rules, verdict='fail'):
    return {'verdict': verdict, 'rules': list(rules), 'msg': 'gate says'}


def test_the_guard_rolls_back_exactly_the_hosts_the_alert_names():
    status = {'migrated_hosts': ['h1', 'h2', 'h3', 'h4'], 'nodes_overdue': []}
    one = alerts.guard_decision(status, gate({'id': 'high_error_rate_iroh', 'verdict': 'fail', 'transport': 'iroh',
                                              'hosts': {'h2': 0.4}}))
    assert one['hosts'] == ['h2'] and 'high_error_rate_iroh on h2' in one['msg']
    fleet = alerts.guard_decision(status, gate({'id': 'network_partition_risk', 'verdict': 'fail', 'transport': 'all',
                                                'hosts': {}}))
    assert fleet['hosts'] == ['h1', 'h2', 'h3', 'h4'] and fleet['fleet_wide'] and 'fleet-wide' in fleet['msg']
    quiet = alerts.guard_decision(status, gate(verdict='pass'))
    assert quiet['hosts'] == [] and quiet['msg'].startswith('nothing to do')
    down = alerts.guard_decision(status, {'verdict': 'unavailable', 'msg': 'Prometheus down', 'rules': []})
    assert down['hosts'] == [] and down['no_verdict'] == 'Prometheus down'
    overdue = alerts.guard_decision({'migrated_hosts': ['h1'], 'nodes_overdue': [{'host': 'h1'}]}, None)
    assert overdue['hosts'] == ['h1'] and 'past the deadline' in overdue['reason']
