"""The simulator's incremental bookkeeping gives exactly what a full recomputation gives.

Property-style: random sequences of restarts, mode changes, stops, starts, faults (crash on
switch, never ready, unresponsive, partitions) and clock steps are applied to two fleets built
from the same seed: one with the incremental bookkeeping, one with the reference full recompute
on every call. After every step both fleets must agree on every node's state, network view,
connected peer ids and metrics, on the event log and on the client read figures.
"""

from __future__ import annotations

import random

import pytest
from simclock import Clock

from ant_fleet_sim.faults import FaultError
from ant_fleet_sim.model import Fleet, SimConfig

MODES = ('libp2p_only', 'dual_stack', 'iroh_primary', 'iroh_only')
NET_FIELDS = ('reachable', 'reachable_t', 'unreachable', 'timeouts', 'connected', 'connected_t',
              'routing_table', 'side')


def twin_fleets(seed, hosts, nodes_per_host):
    config = dict(hosts=hosts, nodes_per_host=nodes_per_host, seed=seed, ready_delay=2.0, restart_time=0.5,
                  records=64)
    clocks = Clock(), Clock()
    new = Fleet(SimConfig(**config), clock=clocks[0])
    old = Fleet(SimConfig(**config), clock=clocks[1])
    old.incremental = False
    old.refresh()
    return (new, clocks[0]), (old, clocks[1])


def snapshot(fleet):
    nodes = []
    for node in fleet.nodes:
        net = node.net
        nodes.append({
            'ref': node.ref, 'status': node.status, 'mode': node.mode, 'stable_mode': node.stable_mode,
            'pid': node.pid, 'stuck': node.stuck, 'crash_at': node.crash_at,
            'serving': fleet.is_serving(node), 'ready': fleet.is_ready(node),
            'net': {f: getattr(net, f) for f in NET_FIELDS},
            'peers': fleet.registry_record(node, '/state')['connected_peers'],
            'counters': (node.counters.requests, node.counters.hist, node.counters.kad_ok,
                         node.counters.swarm_established, node.counters.holepunch),
        })
    return {'nodes': nodes, 'events': list(fleet.events), 'reads': fleet.client_reads(),
            'risk': fleet.partition_risk()}


def random_fault(rng, fleet):
    kind = rng.choice(('crash_on_switch', 'unresponsive', 'partition', 'transport'))
    hosts = rng.sample(fleet.hosts, rng.randint(1, max(1, len(fleet.hosts) // 2)))
    if kind == 'crash_on_switch':
        return {'kind': kind, 'hosts': hosts, 'behaviour': rng.choice(('crash', 'never_ready')),
                'mode': rng.choice((None,) + MODES)}
    if kind == 'unresponsive':
        return {'kind': kind, 'hosts': hosts}
    if kind == 'partition':
        return {'kind': kind, 'hosts': hosts}
    return {'kind': kind, 'transport': rng.choice(('libp2p', 'iroh')), 'error_rate': 0.2, 'hosts': hosts}


def apply_step(rng, fleets, step):
    """Draw one random operation and apply it to every fleet of ``fleets`` (same op, same time)."""
    new = fleets[0][0]
    roll = rng.random()
    host = rng.choice(new.hosts)
    names = [n.service_name for n in new.by_host[host]]
    chosen = rng.sample(names, rng.randint(1, len(names)))
    if roll < 0.45:
        mode = rng.choice(MODES)
        op = ('upgrade', host, chosen, mode, rng.random() < 0.1)
    elif roll < 0.55:
        op = ('stop', host, chosen)
    elif roll < 0.65:
        op = ('start', host, chosen)
    elif roll < 0.72:
        op = ('fault', random_fault(rng, new))
    elif roll < 0.77:
        op = ('clear', rng.random() < 0.5)
    else:
        op = ('time', rng.choice((0.1, 0.3, 0.5, 1.0, 2.0, 2.5)))
    for fleet, clock in fleets:
        kind = op[0]
        if kind == 'upgrade':
            for node in fleet.select(host, op[2]):
                fleet.upgrade_node(node, {'ANT_TRANSPORT_MODE': op[3]}, force=True, start=not op[4])
        elif kind == 'stop':
            for node in fleet.select(host, op[2]):
                fleet.stop_node(node)
        elif kind == 'start':
            for node in fleet.select(host, op[2]):
                if node.status != 'Running':
                    fleet.start_node(node)
        elif kind == 'fault':
            try:
                fleet.add_fault(op[1])
            except FaultError:
                pass
        elif kind == 'clear':
            if fleet.faults:
                if op[1]:
                    fleet.clear_faults()
                else:
                    fleet.remove_fault(sorted(fleet.faults)[0])
        else:
            clock.advance(op[1])
            fleet.tick()
    return op


@pytest.mark.parametrize('seed', range(12))
def test_incremental_bookkeeping_equals_full_recompute(seed):
    rng = random.Random(seed)
    hosts, nodes = rng.choice(((3, 4), (4, 5), (6, 3), (8, 6)))
    fleets = twin_fleets(seed, hosts, nodes)
    assert snapshot(fleets[0][0]) == snapshot(fleets[1][0])
    for step in range(120):
        op = apply_step(rng, fleets, step)
        new, old = snapshot(fleets[0][0]), snapshot(fleets[1][0])
        for a, b in zip(new['nodes'], old['nodes'], strict=True):
            assert a == b, 'seed %d step %d after %r: node %s differs' % (seed, step, op, a['ref'])
        assert new == old, 'seed %d step %d after %r' % (seed, step, op)


def test_restarts_ramp_up_and_crash_through_timers_alone():
    """Between operations only time moves: ports open, nodes ramp to ready and crash-on-switch
    fires from the timer heap, at the same moments as the full recompute sees them."""
    fleets = twin_fleets(7, 4, 5)
    for fleet, _ in fleets:
        fleet.add_fault({'kind': 'crash_on_switch', 'hosts': [fleet.hosts[0]], 'behaviour': 'crash'})
        for host in fleet.hosts:
            for node in fleet.by_host[host]:
                fleet.upgrade_node(node, {'ANT_TRANSPORT_MODE': 'dual_stack'}, force=True)
    seen_kinds = set()
    for _ in range(40):
        for fleet, clock in fleets:
            clock.advance(0.1)
            fleet.tick()
        new, old = snapshot(fleets[0][0]), snapshot(fleets[1][0])
        assert new == old
        seen_kinds.update((n['serving'], n['ready'], n['status']) for n in new['nodes'])
    # The run went through closed ports, ramping, ready and crashed nodes.
    assert {(False, False, 'Running'), (True, False, 'Running'), (True, True, 'Running'),
            (False, False, 'Stopped')} <= seen_kinds
    assert any('crashed after switching' in text for _, text in fleets[0][0].events)


def test_connected_peer_ids_match_the_full_scan_on_a_larger_fleet():
    """The key-prefix block search returns exactly the XOR-nearest eligible peers."""
    fleets = twin_fleets(3, 30, 10)
    (new, clock), _ = fleets
    new.add_fault({'kind': 'partition', 'hosts': new.hosts[:7]})
    for node in new.nodes[::3]:
        new.upgrade_node(node, {'ANT_TRANSPORT_MODE': 'iroh_only'}, force=True)
    clock.advance(5.0)
    new.tick()
    checked = 0
    for node in new.nodes:
        if node.net.connected:
            assert new._connected_peer_ids(node) == new._connected_peer_ids_full(node)
            checked += 1
    assert checked > 200


def test_a_restart_touches_only_the_node_it_changes():
    """After a restart the refresh reports the restarted node alone; the rest keep their shared view."""
    fleets = twin_fleets(5, 10, 10)
    (new, clock), _ = fleets
    node = new.nodes[17]
    before = {n.index: id(n.net) for n in new.nodes if n is not node}
    new.drain_changed()
    new.upgrade_node(node, {'ANT_TRANSPORT_MODE': 'dual_stack'}, force=True)
    assert [n.index for n in new.drain_changed()] == [node.index]
    assert {n.index: id(n.net) for n in new.nodes if n is not node} == before
    clock.advance(0.6)
    new.refresh(changed=())
    assert [n.index for n in new.drain_changed()] == [node.index]
    assert new.is_serving(node) and not new.is_ready(node)
