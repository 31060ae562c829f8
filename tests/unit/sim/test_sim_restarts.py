"""Restarts, readiness, uptime, crash on switch."""

from __future__ import annotations

from simclock import make_fleet, step, switch


def test_restart_closes_port_then_ramps_to_ready():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=5, ready_delay=2.0, restart_time=0.5)
    step(fleet, clock, 1)
    node = fleet.nodes[0]
    old_uptime = fleet.node_metrics(node)['uptime']
    assert old_uptime > 3600
    switch(fleet, node.host, [node.service_name], 'dual_stack')
    assert fleet.node_metrics(node) is None            # port closed while restarting
    assert not fleet.is_serving(node)
    clock.advance(0.6)
    fleet.tick()
    figures = fleet.node_metrics(node)
    assert figures['mode'] == 'dual_stack'
    assert figures['connected'] <= 5                    # not ready yet
    assert figures['uptime'] < 2
    assert not fleet.is_ready(node)
    step(fleet, clock, 2.5)
    assert fleet.is_ready(node)
    assert fleet.node_metrics(node)['connected'] == 9   # > 5: antctl's readiness rule
    assert fleet.node_metrics(node)['uptime'] < old_uptime


def test_counters_reset_on_restart():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=4)
    step(fleet, clock, 3)
    node = fleet.nodes[0]
    assert node.counters.requests['libp2p']['success'] > 0
    fleet.stop_node(node)
    assert fleet.node_metrics(node) is None
    assert node.status == 'Stopped'
    fleet.start_node(node)
    assert node.counters.requests['libp2p']['success'] == 0


def test_stopped_node_leaves_routing_tables():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=4)
    fleet.stop_node(fleet.nodes[0])
    step(fleet, clock, 1)
    assert fleet.node_metrics(fleet.nodes[1])['routing_table'] == 6


def test_no_upgrade_without_force_keeps_service_running():
    fleet, clock = make_fleet(hosts=1, nodes_per_host=2)
    node = fleet.nodes[0]
    message = fleet.upgrade_node(node, {'ANT_TRANSPORT_MODE': 'dual_stack'}, version=node.version)
    assert message.startswith('no upgrade required')
    assert node.mode == 'libp2p_only' and fleet.is_serving(node)


def test_crash_on_switch_and_restore_by_switching_back():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3, ready_delay=1.0)
    fleet.add_fault({'kind': 'crash_on_switch', 'hosts': [fleet.hosts[0]], 'mode': 'dual_stack'})
    node = fleet.by_host[fleet.hosts[0]][0]
    switch(fleet, node.host, [node.service_name], 'dual_stack')
    step(fleet, clock, 3)
    assert node.status == 'Stopped'
    assert fleet.node_metrics(node) is None
    # Other hosts are out of scope.
    other = fleet.by_host[fleet.hosts[1]][0]
    switch(fleet, other.host, [other.service_name], 'dual_stack')
    step(fleet, clock, 3)
    assert fleet.is_ready(other)
    # Switching back to the previous mode restores the node.
    switch(fleet, node.host, [node.service_name], 'libp2p_only')
    step(fleet, clock, 3)
    assert node.status == 'Running' and fleet.is_ready(node)


def test_crash_on_switch_never_ready():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=4, ready_delay=1.0)
    fleet.add_fault({'kind': 'crash_on_switch', 'behaviour': 'never_ready'})
    node = fleet.nodes[0]
    switch(fleet, node.host, [node.service_name], 'dual_stack')
    step(fleet, clock, 5)
    assert fleet.is_serving(node) and not fleet.is_ready(node)
    assert fleet.node_metrics(node)['connected'] <= 5
    fleet.clear_faults()
    step(fleet, clock, 1)
    assert fleet.is_ready(node)


def test_crash_fault_only_fires_on_a_mode_change():
    fleet, clock = make_fleet(hosts=1, nodes_per_host=3, ready_delay=1.0)
    fleet.add_fault({'kind': 'crash_on_switch'})
    node = fleet.nodes[0]
    fleet.start_node(node)                      # plain restart, same mode
    step(fleet, clock, 3)
    assert fleet.is_ready(node)
