# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a rollback covers and how it ended: the one decision (wave_planning) and its use case (services/rollback)."""

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.autonomi.network_migration.plugins.module_utils import _kademlia
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import wave_planning
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import rollback

FLEET = ['h1', 'h2', 'h3', 'h4']


def switched(beyond=(), not_ready=(), failed=False, unreachable=False):
    return {'beyond_target': list(beyond), 'not_ready': list(not_ready), 'failed': failed, 'unreachable': unreachable}


def test_the_fast_plan_takes_every_host_in_scope_without_a_read():
    plan = wave_planning.plan_fast_rollback(FLEET, 'libp2p_only')
    assert plan['hosts'] == FLEET and plan['batch_sizes'] == [4] and plan['from_switch'] and plan['whole_fleet']
    limited = wave_planning.plan_fast_rollback(FLEET, 'libp2p_only', only_hosts=['h3', 'elsewhere'])
    assert limited['hosts'] == ['h3'] and not limited['whole_fleet']
    assert wave_planning.plan_fast_rollback(FLEET, 'libp2p_only', only_hosts=[])['batch_sizes'] == []
    with pytest.raises(wave_planning.PlanError):
        wave_planning.plan_fast_rollback(FLEET, 'iroh_only')


def peer_id(*parts):
    return _kademlia.peer_id_from_ed25519(hashlib.sha256(repr(parts).encode()).digest())


def network(hosts, nodes_per_host, seed=1, mode='dual_stack'):
    """What the ledger knows of a fleet: every node with the peer id the simulator gives it."""
    return [{'host': 'h%03d' % h, 'service_name': 'antnode%d' % i, 'node_id': 'h%03d/antnode%d' % (h, i),
             'peer_id': peer_id(seed, h, i), 'mode': mode, 'state': 'dual_stack_stable'}
            for h in range(hosts) for i in range(1, nodes_per_host + 1)]


@pytest.mark.parametrize('hosts, per_host, seed', [(10, 5, 1), (10, 5, 2), (50, 20, 3), (7, 1, 4), (3, 10, 5)])
def test_a_readable_fast_rollback_keeps_a_member_of_every_close_group_up_in_every_round(hosts, per_host, seed):
    nodes = network(hosts, per_host, seed)
    fleet = sorted({n['host'] for n in nodes})
    plan = wave_planning.plan_fast_rollback(fleet, 'libp2p_only', nodes=nodes)
    assert plan['order'] == 'readable' and sorted(plan['hosts']) == fleet and sum(plan['batch_sizes']) == len(fleet)
    groups = _kademlia.close_groups_of_nodes([n['peer_id'] for n in nodes])
    host_of = {n['peer_id']: n['host'] for n in nodes}
    start, unreadable = 0, 0
    for size in plan['batch_sizes']:
        restarting = set(plan['hosts'][start:start + size])
        start += size
        for members in groups.values():
            if all(host_of[p] in restarting for p in members):
                unreadable += 1
                assert len({host_of[p] for p in members}) == 1  # only a group that lives on one host
    assert unreadable == plan['groups_on_one_host']
    # As few rounds as that needs: not one per host.
    assert len(plan['batch_sizes']) <= 4 and (len(plan['batch_sizes']) > 1) == (len(fleet) > 1)
    # A multi-round plan runs the hosts in its own order, so its switch group is built host by host.
    assert plan['switch_group'] == ('migration_rollback' if len(plan['batch_sizes']) > 1 else 'fleet')


def test_nodes_already_back_are_holders_and_unknown_hosts_go_first():
    nodes = network(6, 5, seed=7)
    fleet = sorted({n['host'] for n in nodes}) + ['new-host']
    back = [dict(n, mode='libp2p_only') for n in nodes]
    plan = wave_planning.plan_fast_rollback(fleet, 'libp2p_only', nodes=back)
    assert plan['batch_sizes'] == [len(fleet)]            # nothing restarts: nothing to keep up
    mixed = [dict(n, mode='libp2p_only') if n['host'] in ('h000', 'h001') else n for n in nodes]
    rounds, alone = wave_planning.readable_rounds(mixed, fleet, 'libp2p_only')
    assert alone == 0 and 'new-host' in rounds[0]


def test_all_at_once_is_one_round_named_as_an_emergency_and_a_bad_order_is_refused():
    nodes = network(10, 5)
    fleet = sorted({n['host'] for n in nodes})
    plan = wave_planning.plan_fast_rollback(fleet, 'libp2p_only', nodes=nodes, order='all_at_once')
    assert plan['batch_sizes'] == [10] and plan['switch_group'] == 'fleet' and 'emergency' in plan['message']
    with pytest.raises(wave_planning.PlanError, match='readable or all_at_once'):
        wave_planning.plan_fast_rollback(fleet, 'libp2p_only', order='sometimes')


def test_the_service_says_when_the_ledger_cannot_give_the_close_groups():
    out = rollback.plan('fast', 'libp2p_only', FLEET, ledger_nodes=None,
                        ledger_problem='the ledger could not be read: x')
    assert out['batch_sizes'] == [4] and 'close groups are unknown (the ledger could not be read: x): one round' in (
        out['message'])
    assert 'knows no node yet' in rollback.plan('fast', 'libp2p_only', FLEET, ledger_nodes=[])['message']


@pytest.mark.parametrize('results, stopped_early, unknown, outcome', [
    ({'h1': switched(['antnode1']), 'h2': switched([]), 'h3': switched([]), 'h4': switched([])}, False, None,
     'succeeded'),
    ({'h1': switched(['antnode1'], not_ready=[{'service_name': 'antnode1', 'seconds_waited': 9, 'mode': 'x'}])},
     False, None, 'degraded'),
    ({'h1': switched(['antnode1'], failed=True)}, False, None, 'failed'),
    ({'h1': switched(['antnode1'], unreachable=True)}, False, None, 'failed'),
    ({'h1': switched(['antnode1'])}, False, {'gone-host': ['antnode2']}, 'incomplete'),
])
def test_fast_rollback_outcomes(results, stopped_early, unknown, outcome):
    plan = wave_planning.plan_fast_rollback(FLEET, 'libp2p_only')
    full = {h: results.get(h, switched([])) for h in FLEET}
    out = wave_planning.rollback_outcome(plan, full, stopped_early=stopped_early, unknown_hosts=unknown)
    assert out['outcome'] == outcome
    # A fast rollback's hosts are what its switch found: the ones with a node beyond the target, or failed.
    assert out['hosts'] == ['h1']


def test_gradual_rollback_stopped_early_and_not_attempted():
    plan = {'target': 'libp2p_only', 'strategy': 'gradual', 'hosts': ['h1', 'h2', 'h3'], 'nodes_to_switch': 6}
    out = wave_planning.rollback_outcome(plan, {'h1': switched(['a'])}, stopped_early=True)
    assert out['outcome'] == 'stopped_early' and out['remaining_hosts'] == ['h2', 'h3']
    assert wave_planning.rollback_outcome(plan, {'h1': switched(['a'])})['outcome'] == 'incomplete'
    skipped = {'h1': switched(['a']), 'h2': {'skipped': True}, 'h3': switched(['b'])}
    assert wave_planning.rollback_outcome(plan, skipped)['remaining_hosts'] == ['h2']


def test_conclude_records_releases_and_names_hosts_the_inventory_lacks(tmp_path):
    with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as book:
        book.record_transition('gone-host', 'antnode1', None, 'dual_stack_stable', mode='dual_stack')
        book.record_transition('h1', 'antnode1', None, 'dual_stack_stable', mode='dual_stack')
        book.acquire_lock('me', 'rollback.yml')
        plan = wave_planning.plan_fast_rollback(FLEET, 'libp2p_only')
        out = rollback.conclude(book, plan, {h: switched(['antnode1'] if h == 'h1' else []) for h in FLEET},
                                fleet_hosts=FLEET, started_at=100.0, reason='test', trigger='manual', holder='me',
                                now=lambda: 112.5)
        assert out['outcome'] == 'incomplete' and out['unknown_hosts'] == {'gone-host': ['antnode1']}
        assert out['seconds'] == 12.5 and 'gone-host (antnode1)' in out['msg'] and 'NOT IN THE INVENTORY' in out['msg']
        assert book.lock() is None
        event = book.events(kinds=['rollback'])[0]['data']
        assert event['outcome'] == 'incomplete' and event['unknown_hosts'] == {'gone-host': ['antnode1']}
        assert book.events(kinds=['rollback_started'])[0]['data']['hosts'] == ['h1']
