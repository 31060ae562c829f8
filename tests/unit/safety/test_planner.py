"""The one planner: every refusal is in plan_wave, and the CLI's dry run gets the same ones."""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import wave_planning as wp
from ant_fleet_sim.model import make_peer_id  # real peer ids: close groups need keys that decode


def fleet(hosts=6, per_host=4, modes=None):
    modes = modes or {}
    return [{'host': 'h%02d' % h, 'service_name': 'antnode%d' % i, 'peer_id': make_peer_id(1, 'h%02d' % h, i),
             'mode': modes.get('h%02d' % h, 'libp2p_only')}
            for h in range(1, hosts + 1) for i in range(1, per_host + 1)]


def test_an_ordinary_wave_has_no_refusal_and_a_projection():
    plan = wp.plan_wave(fleet(), 50)
    assert plan['hosts'] and plan['refusals'] == []
    assert plan['rollback_projection']['sla_seconds'] == 300.0


def test_nothing_to_do_is_not_a_refusal():
    plan = wp.plan_wave(fleet(modes={'h01': 'dual_stack', 'h02': 'dual_stack'}), 10)
    assert plan['hosts'] == [] and plan['refusals'] == [] and 'nothing to do' in plan['message']


def test_nothing_eligible_is_refused_saying_why():
    plan = wp.plan_wave(fleet(), 50, stage='iroh_primary')
    assert plan['hosts'] == []
    assert len(plan['refusals']) == 1
    assert 'nothing eligible' in plan['refusals'][0] and 'at dual_stack' in plan['refusals'][0]
    assert '24 libp2p_only' in plan['refusals'][0]


def test_iroh_only_is_refused_while_libp2p_only_nodes_exist():
    plan = wp.plan_wave(fleet(modes={'h01': 'iroh_primary'}), 10, stage='iroh_only')
    assert plan['hosts'] == ['h01']
    assert any('still run libp2p_only' in r for r in plan['refusals'])
    plan = wp.plan_wave(fleet(), 50, stage='iroh_only')
    assert any('still run libp2p_only' in r for r in plan['refusals'])
    assert any('nothing eligible' in r for r in plan['refusals'])


def test_partition_risk_refusal():
    everyone = {'h%02d' % h: 'iroh_primary' for h in range(1, 7)}
    plan = wp.plan_wave(fleet(modes=everyone), 100, stage='iroh_only', batches=[1], max_partition_risk=0.3)
    # One host (4 of 24 nodes) restarting at a time: twice its share, as the partition-risk rule scales.
    assert plan['projected_partition_risk'] == 0.333
    assert any('projected partition risk 0.33 of this wave exceeds 0.30' in r for r in plan['refusals'])
    plan = wp.plan_wave(fleet(modes=everyone), 100, stage='iroh_only', batches=[1], max_partition_risk=0.4)
    assert not plan['refusals'], plan['refusals']


def test_rollback_sla_refusal_uses_measured_switch_times():
    plan = wp.plan_wave(fleet(), 50, rollback_sla_seconds=10, switch_seconds=[30.0, 31.0])
    assert any('over the 10 s SLA' in r for r in plan['refusals'])
    assert plan['rollback_projection']['measured'] is True
    plan = wp.plan_wave(fleet(), 50, rollback_sla_seconds=10, switch_seconds=[1.0])
    assert plan['refusals'] == []


def test_unknown_modes_are_refused():
    nodes = fleet()
    nodes[0]['mode'] = None
    plan = wp.plan_wave(nodes, 50)
    assert any('mode of 1 node(s) is unknown' in r for r in plan['refusals'])


def test_the_cli_dry_run_gets_the_same_refusals():
    from ant_network_migration_cli import plan as cli_plan

    nodes = fleet()
    stages = cli_plan.select_plan(nodes, [{'percent': 50}], planning={'rollback_sla_seconds': 1})
    direct = wp.plan_wave(nodes, 50, rollback_sla_seconds=1)
    assert stages[0].refusals == tuple(direct['refusals']) and stages[0].refusals
    stages = cli_plan.select_plan(nodes, [{'percent': 50}])
    assert stages[0].refusals == ()
