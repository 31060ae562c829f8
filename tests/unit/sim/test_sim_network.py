"""Network model: transports, partitions, routing tables, partition risk, dial failures."""

from __future__ import annotations

import pytest
from simclock import make_fleet, step, switch, switch_all


def partition_risk(fleet):
    """The alert team's formula, computed from what the nodes' metrics show."""
    values = []
    for node in fleet.nodes:
        figures = fleet.node_metrics(node)
        if figures is None:
            continue
        size = figures['network_size']
        values.append(min(1.0, max(0.0, 2 * (1 - figures['routing_table'] / (size - 1)))))
    return sum(values) / len(values)


def test_healthy_fleet_sees_every_peer():
    fleet, clock = make_fleet(hosts=4, nodes_per_host=5)
    step(fleet, clock, 1)
    for node in fleet.nodes:
        figures = fleet.node_metrics(node)
        assert figures['routing_table'] == 19
        assert figures['network_size'] == 20
        assert figures['connected'] == 19
    assert partition_risk(fleet) == pytest.approx(0.0)


def test_connected_peers_capped_at_50_routing_table_not():
    fleet, clock = make_fleet(hosts=10, nodes_per_host=10)
    step(fleet, clock, 1)
    figures = fleet.node_metrics(fleet.nodes[0])
    assert figures['connected'] == 50
    assert figures['routing_table'] == 99
    assert figures['open_connections'] >= 50


def test_half_partition_gives_risk_near_one():
    fleet, clock = make_fleet(hosts=4, nodes_per_host=5)
    fleet.add_fault({'kind': 'partition', 'groups': [fleet.hosts[:2], fleet.hosts[2:]]})
    step(fleet, clock, 1)
    for node in fleet.nodes:
        assert fleet.node_metrics(node)['routing_table'] == 9
        assert fleet.node_metrics(node)['network_size'] == 20  # nodes remember the network size
    assert partition_risk(fleet) == pytest.approx(1.0, abs=0.1)
    assert fleet.partition_risk() == pytest.approx(partition_risk(fleet))


def test_partition_by_hosts_against_the_rest():
    fleet, clock = make_fleet(hosts=4, nodes_per_host=2)
    fleet.add_fault({'kind': 'partition', 'hosts': [fleet.hosts[0]]})
    step(fleet, clock, 1)
    assert fleet.node_metrics(fleet.by_host[fleet.hosts[0]][0])['routing_table'] == 1
    assert fleet.node_metrics(fleet.by_host[fleet.hosts[1]][0])['routing_table'] == 5


def test_partition_grows_unreachable_dial_failures_and_clear_heals():
    fleet, clock = make_fleet(hosts=4, nodes_per_host=5)
    step(fleet, clock, 2)
    node = fleet.nodes[0]
    before = node.counters.dial['libp2p']['unreachable']
    assert before == 0
    fleet.add_fault({'kind': 'partition', 'groups': [fleet.hosts[:2], fleet.hosts[2:]]})
    step(fleet, clock, 2)
    grown = node.counters.dial['libp2p']['unreachable']
    assert grown > 0
    fleet.clear_faults()
    step(fleet, clock, 2)
    assert node.counters.dial['libp2p']['unreachable'] == pytest.approx(grown)
    assert partition_risk(fleet) == pytest.approx(0.0)


def test_libp2p_only_and_iroh_only_cannot_reach_each_other():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=5)
    switch(fleet, fleet.hosts[1], (), 'iroh_only')
    step(fleet, clock, 5)
    lib = fleet.node_metrics(fleet.by_host[fleet.hosts[0]][0])
    iroh = fleet.node_metrics(fleet.by_host[fleet.hosts[1]][0])
    assert lib['routing_table'] == 4 and iroh['routing_table'] == 4
    assert lib['connected_t'] == {'libp2p': 4, 'iroh': 0}
    assert iroh['connected_t'] == {'libp2p': 0, 'iroh': 4}
    assert fleet.by_host[fleet.hosts[0]][0].counters.dial['libp2p']['unreachable'] > 0
    assert partition_risk(fleet) == pytest.approx(1.0, abs=0.15)


def test_dual_stack_bridges_both_sides():
    fleet, clock = make_fleet(hosts=3, nodes_per_host=2)
    switch(fleet, fleet.hosts[1], (), 'dual_stack')
    switch(fleet, fleet.hosts[2], (), 'dual_stack')
    step(fleet, clock, 5)
    switch(fleet, fleet.hosts[2], (), 'iroh_primary')
    step(fleet, clock, 5)
    dual = fleet.node_metrics(fleet.by_host[fleet.hosts[1]][0])
    assert dual['routing_table'] == 5
    assert dual['connected_t'] == {'libp2p': 5, 'iroh': 3}


def test_whole_fleet_iroh_only_is_healthy():
    fleet, clock = make_fleet(hosts=3, nodes_per_host=3)
    for mode in ('dual_stack', 'iroh_primary', 'iroh_only'):
        switch_all(fleet, mode)
        step(fleet, clock, 5)
    assert partition_risk(fleet) == pytest.approx(0.0)
    assert fleet.client_reads()['current_success'] == pytest.approx(1.0)


def test_unresponsive_node_is_unreachable_and_times_out_dials():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=4)
    victim = fleet.nodes[0]
    fleet.add_fault({'kind': 'unresponsive', 'nodes': [victim.ref]})
    step(fleet, clock, 2)
    other = fleet.nodes[5]
    assert fleet.node_metrics(other)['routing_table'] == 6
    assert other.counters.dial['libp2p']['timeout'] > 0
