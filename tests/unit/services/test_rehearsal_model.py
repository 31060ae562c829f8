# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rollback rehearsal's decisions (services/rehearsal.py) and the preflight item that reads its result."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import wave_planning
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import preflight, rehearsal
from ant_fleet_sim.model import make_peer_id

DAY = 86400.0


def nodes(per_host, mode='dual_stack', state=None):
    out = []
    for host, count in per_host.items():
        for i in range(1, count + 1):
            node = {'host': host, 'service_name': 'antnode%d' % i, 'peer_id': make_peer_id(1, host, i)}
            node.update({'state': state} if state else {'mode': mode})
            out.append(node)
    return out


# ---------------------------------------------------------------------------------------------- the shape
def test_the_shape_is_the_host_count_the_largest_host_and_the_mode_most_nodes_run():
    fleet = nodes({'h1': 3, 'h2': 5, 'h3': 4}) + [{'host': 'h4', 'service_name': 'antnode1', 'mode': 'iroh_primary'}]
    shape = rehearsal.fleet_shape(fleet)
    assert shape == {'hosts': 4, 'nodes_per_host': 5, 'nodes': 13, 'mode': 'dual_stack'}


def test_the_shape_reads_the_ledger_state_and_skips_removed_nodes():
    fleet = nodes({'h1': 2, 'h2': 2}, state='iroh_primary') + [
        {'host': 'h3', 'service_name': 'antnode9', 'mode': 'dual_stack', 'status': 'Removed'}]
    assert rehearsal.fleet_shape(fleet) == {'hosts': 2, 'nodes_per_host': 2, 'nodes': 4, 'mode': 'iroh_primary'}


def test_a_fleet_still_on_libp2p_rehearses_the_first_waves_rollback_from_dual_stack():
    assert rehearsal.fleet_shape(nodes({'h1': 4}, mode='libp2p_only'))['mode'] == 'dual_stack'
    # a tie goes to the further mode (its rollback is the longer way back)
    tie = nodes({'h1': 2}, mode='dual_stack') + nodes({'h2': 2}, mode='iroh_primary')
    assert rehearsal.fleet_shape(tie)['mode'] == 'iroh_primary'


def test_no_node_is_a_clear_error():
    with pytest.raises(rehearsal.RehearsalError, match='no node known'):
        rehearsal.fleet_shape([])


def test_the_readiness_is_the_95th_percentile_of_the_measured_switches_else_the_planners_default():
    ready = rehearsal.readiness([float(s) for s in range(1, 101)], 'backward')
    assert ready == {'ready_delay': 95.0, 'measured': True, 'samples': 100, 'direction': 'backward'}
    assert rehearsal.readiness([]) == {'ready_delay': rehearsal.DEFAULT_SWITCH_SECONDS, 'measured': False,
                                       'samples': 0, 'direction': None}


def test_the_copy_is_capped_and_never_too_small_to_be_ready():
    assert rehearsal.simulated_hosts(400, 20, 50) == 50
    assert rehearsal.simulated_hosts(3, 20, 50) == 3
    assert rehearsal.simulated_hosts(2, 4, 50) == 2            # 8 nodes: every node can see more than 5 peers
    with pytest.raises(rehearsal.RehearsalError, match='at least 7 nodes'):
        rehearsal.simulated_hosts(2, 3, 50)
    with pytest.raises(rehearsal.RehearsalError, match='at least 1'):
        rehearsal.simulated_hosts(10, 5, 0)


# ---------------------------------------------------------------------------------------------- projection
def test_the_projection_is_the_planners_model_with_the_measured_cost_and_the_orders_rounds():
    got = rehearsal.projection(10, 5, [3.0], forks=20, rounds=3)
    model = wave_planning.project_fast_rollback(10, 5, [3.0], forks=20, rounds=3, **rehearsal.MODEL)
    assert got == model
    assert got['rounds'] == 3
    assert got['seconds'] == pytest.approx(rehearsal.MODEL['fixed_seconds'] + 3 * (3.0 + rehearsal.MODEL[
        'per_host_overhead']) + 10 * 0.4 / 2, abs=0.05)


def test_readable_rounds_are_counted_in_rounds_of_forks():
    fleet = nodes({'h%02d' % i: 5 for i in range(1, 13)})
    hosts = {n['host'] for n in fleet}
    layout = wave_planning.readable_rounds(fleet, sorted(hosts), 'libp2p_only')[0]
    assert len(layout) >= 2      # 12 hosts x 5 nodes: some close groups live on few hosts
    assert wave_planning.rollback_fork_rounds(fleet, hosts, 50) == len(layout)
    assert wave_planning.rollback_fork_rounds(fleet, hosts, 1) == 12
    assert wave_planning.rollback_fork_rounds(fleet, hosts, 50, order='all_at_once') == 1
    assert wave_planning.rollback_fork_rounds(fleet, hosts, 5, order='all_at_once') == 3
    no_peers = [dict(n, peer_id=None) for n in fleet]
    assert wave_planning.rollback_fork_rounds(no_peers, hosts, 5) == 3


def test_the_calibrated_model_gives_the_measured_time_for_the_copy_and_scales_by_rounds():
    copy = rehearsal.calibrated_projection(30.0, (50, 2), (50, 2), 20, [5.0], forks=50)
    assert copy['seconds'] == pytest.approx(30.0, abs=0.1)
    fleet = rehearsal.calibrated_projection(30.0, (50, 2), (500, 20), 20, [5.0], forks=50)
    per_round = copy['per_round_overhead'] + 5.0
    assert fleet['seconds'] == pytest.approx(30.0 + 18 * per_round + 450 * 0.4 / 2, abs=0.2)
    # a copy faster than the model's fixed cost does not make the overhead negative
    assert rehearsal.calibrated_overhead(0.5, 2, 4, [1.0], forks=20) == 0.0


def test_the_verdict_judges_the_measurement_or_for_a_scaled_copy_the_projection():
    assert rehearsal.verdict(12.0, 300.0) == (True, 'the rehearsed fast rollback took 12 s, within the 300 s SLA')
    assert rehearsal.verdict(412.0, 300.0) == (False, 'the rehearsed fast rollback took 412 s, over the 300 s SLA')
    passed, message = rehearsal.verdict(40.0, 300.0, projected_seconds=350.0, scaled=True)
    assert not passed and message == 'the projected fast rollback of the whole fleet took 350 s, over the 300 s SLA'


# ---------------------------------------------------------------------------------------------- preflight item
NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC).timestamp()


def event(age_seconds, **data):
    at = datetime.datetime.fromtimestamp(NOW - age_seconds, datetime.UTC).isoformat()
    base = {'passed': True, 'measured_seconds': 12.0, 'projected_seconds': 11.0, 'sla_seconds': 300.0,
            'shape': {'hosts': 4, 'nodes_per_host': 2, 'mode': 'dual_stack'}, 'simulated_hosts': 4,
            'operator': 'alice', 'message': 'the rehearsed fast rollback took 12 s, within the 300 s SLA'}
    return {'at': at, 'data': dict(base, **data)}


def judge(last, max_age=7 * DAY):
    return preflight.judge_rollback_tested(last, NOW, max_age, '7d')


def test_rollback_tested_passes_on_a_recent_passed_rehearsal():
    result = judge(event(2 * 3600))
    assert result['result'] == preflight.PASS, result['message']
    assert result['message'].startswith('rollback_tested: the fast rollback rehearsed 2h ago: the rehearsed')
    assert result['evidence']['measured_seconds'] == 12.0 and result['evidence']['operator'] == 'alice'


def test_rollback_tested_fails_without_a_rehearsal():
    result = judge(None)
    assert result['result'] == preflight.FAIL
    assert result['message'] == 'rollback_tested: no rehearsal recorded: run ant-network-migration rehearse'


def test_rollback_tested_fails_on_an_old_rehearsal_naming_its_age():
    result = judge(event(9 * DAY + 60))
    assert result['result'] == preflight.FAIL
    assert result['problems'] == ['the last rehearsal is 9d 1m old (allowed: 7d): run ant-network-migration rehearse']
    assert judge(event(7 * DAY - 1))['result'] == preflight.PASS      # the allowed age itself still passes


def test_rollback_tested_fails_on_a_rehearsal_over_the_sla():
    result = judge(event(60, passed=False, measured_seconds=412.0,
                         message='the rehearsed fast rollback took 412 s, over the 300 s SLA'))
    assert result['result'] == preflight.FAIL
    assert result['problems'][0].startswith('the last rehearsal took 412 s, over the 300 s SLA')
    # a scaled copy is judged by its projection for the whole fleet
    scaled = judge(event(60, passed=False, measured_seconds=40.0, projected_seconds=350.0, simulated_hosts=50,
                         shape={'hosts': 500, 'nodes_per_host': 20}))
    assert scaled['problems'][0].startswith('the last rehearsal took 350 s, over the 300 s SLA')
    # old and over: both reasons
    assert len(judge(event(9 * DAY, passed=False, measured_seconds=412.0))['problems']) == 2


def test_rollback_tested_fails_on_a_rehearsal_that_did_not_finish():
    result = judge(event(60, passed=False, measured_seconds=None,
                         message='the rehearsal failed: rehearsal: fast rollback failed (rollback.yml: failed, rc=2)'))
    assert result['problems'] == ['the last rehearsal failed (%s): the rehearsal failed: rehearsal: fast rollback '
                                  'failed (rollback.yml: failed, rc=2); see docs/runbooks/rehearsal-failed.md'
                                  % event(60)['at']]


def test_rollback_tested_is_waivable_like_every_item():
    waivers = preflight.parse_waivers({'rollback_tested': 'first rehearsal booked for tomorrow'}, 'bob')
    [waived] = preflight.apply_waivers([judge(None)], waivers)
    assert waived['result'] == preflight.WAIVED
    assert 'waived by bob (first rehearsal booked for tomorrow)' in waived['message']


def test_the_rehearsal_is_one_ledger_event_and_the_newest_is_read(tmp_path):
    handle = ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3'), create=True)
    try:
        assert rehearsal.latest(handle) is None
        rehearsal.record(handle, {'passed': False, 'measured_seconds': 400.0})
        rehearsal.record(handle, {'passed': True, 'measured_seconds': 12.0})
        last = rehearsal.latest(handle)
        assert last['data'] == {'passed': True, 'measured_seconds': 12.0}
        assert [e['kind'] for e in handle.events(limit=10)].count('rehearsal') == 2
    finally:
        handle.close()
