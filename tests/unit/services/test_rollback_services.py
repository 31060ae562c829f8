# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a rollback covers and how it ended: the one decision (wave_planning) and its use case (services/rollback)."""

from __future__ import annotations

import pytest

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
