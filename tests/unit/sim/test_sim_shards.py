"""A sharded fleet's replicas hold the same fleet as its primary (the model's side of sharding).

The daemon of a sharded fleet runs one ``Fleet`` per process: the primary (the control API's
process) records every operation in its journal, each replica replays it with the operation's own
moment. Property-style: random restarts, mode changes, stops, starts, faults (crash on switch,
never ready, unresponsive, partitions, transport errors) and clock steps on the primary, replayed
on two replicas whose own clocks run ahead of the primary by a random fraction of a second (their
ticks come between the operations, as in the daemon). At every step every node's state, network
view, connected peer ids and gauges are the same in the three processes' fleets.
"""

from __future__ import annotations

import random

import pytest
from simclock import Clock
from test_sim_scale import NET_FIELDS, apply_step

from ant_fleet_sim.faults import FaultError
from ant_fleet_sim.model import AntctlError, Fleet, SimConfig


def view(fleet):
    nodes = []
    for node in fleet.nodes:
        net = node.net
        figures = fleet.node_metrics(node)
        nodes.append({
            'ref': node.ref, 'status': node.status, 'mode': node.mode, 'stable_mode': node.stable_mode,
            'pid': node.pid, 'stuck': node.stuck, 'crash_at': node.crash_at, 'started_at': node.started_at,
            'serving': fleet.is_serving(node), 'ready': fleet.is_ready(node),
            'unresponsive': fleet.unresponsive_fault(node) is not None,
            'net': {f: getattr(net, f) for f in NET_FIELDS},
            'peers': fleet._connected_peer_ids(node) if net.connected else [],
            'gauges': None if figures is None else {k: figures[k] for k in (
                'mode', 'uptime', 'connected', 'connected_t', 'routing_table', 'network_size', 'records_stored')},
        })
    return {'nodes': nodes, 'faults': fleet.faults, 'risk': fleet.partition_risk(),
            'holders': fleet.record_holders}


def sharded(seed, hosts, nodes_per_host, shards):
    config = dict(hosts=hosts, nodes_per_host=nodes_per_host, seed=seed, ready_delay=2.0, restart_time=0.5,
                  records=64, shards=shards)
    clock = Clock()
    owned = SimConfig(**config).shard_nodes
    primary = Fleet(SimConfig(**config), clock=clock, epoch=clock.now, owned=owned(0))
    primary.journal = []
    replicas = []
    for shard in range(1, shards):
        rclock = Clock(clock.now)
        replica = Fleet(SimConfig(**config), clock=rclock, epoch=clock.now, owned=owned(shard), primary=False)
        replicas.append((replica, rclock))
    return (primary, clock), replicas


@pytest.mark.parametrize('seed', range(10))
def test_replicas_replaying_the_journal_hold_the_primarys_fleet(seed):
    rng = random.Random(seed)
    hosts, nodes = rng.choice(((3, 4), (4, 5), (6, 3), (8, 6)))
    (primary, clock), replicas = sharded(seed, hosts, nodes, shards=3)
    assert all(view(r) == view(primary) for r, _ in replicas)
    for step in range(100):
        op = apply_step(rng, [(primary, clock)], step)
        entries, primary.journal = primary.journal, []
        for replica, rclock in replicas:
            # The replica's own clock is ahead (the operation reaches it later) and it may have ticked.
            rclock.now = max(rclock.now, clock.now + rng.uniform(0.0, 0.3))
            if rng.random() < 0.5:
                replica.tick()
            for entry in entries:
                replica.replay(entry)
        # Compare at one moment after all of that.
        clock.advance(0.31)
        primary.refresh(changed=())
        expected = view(primary)
        for replica, rclock in replicas:
            rclock.now = clock.now
            replica.refresh(changed=())
            got = view(replica)
            for a, b in zip(got['nodes'], expected['nodes'], strict=True):
                assert a == b, 'seed %d step %d after %r: node %s differs' % (seed, step, op, a['ref'])
            assert got == expected, 'seed %d step %d after %r' % (seed, step, op)


def test_journal_entries_survive_json():
    """The daemon sends the journal as JSON lines: an entry read back replays the same."""
    import json

    (primary, clock), [(replica, rclock)] = sharded(4, 4, 3, shards=2)
    node = primary.nodes[5]
    primary.add_fault({'kind': 'partition', 'hosts': [primary.hosts[0]]})
    primary.upgrade_node(node, {'ANT_TRANSPORT_MODE': 'iroh_only'}, force=True)
    primary.boot({7: {'ANT_TRANSPORT_MODE': 'dual_stack'}})
    primary.stop_node(primary.nodes[2])
    for entry in json.loads(json.dumps(primary.journal)):
        replica.replay(entry)
    clock.advance(3.0)
    rclock.now = clock.now
    primary.refresh(changed=())
    replica.refresh(changed=())
    assert view(replica) == view(primary)
    assert [e[0] for e in primary.journal] == ['fault', 'upgrade', 'boot', 'stop']


def test_a_refused_operation_is_not_journaled():
    (primary, _clock), _ = sharded(2, 3, 2, shards=2)
    with pytest.raises(AntctlError):
        primary.start_node(primary.nodes[0], env={'ANT_TRANSPORT_MODE': 'sideways'})
    with pytest.raises(FaultError):
        primary.add_fault({'kind': 'partition', 'hosts': ['no-such-host']})
    assert primary.journal == []


def test_records_close_groups_equal_the_full_scan():
    """The close groups come from the key-prefix block search; a full scan of the fleet agrees."""
    import heapq

    fleet = Fleet(SimConfig(hosts=40, nodes_per_host=25, records=200, seed=9))
    assert all(len(holders) == 5 for holders in fleet.record_holders)
    rng = random.Random(9)
    for _ in range(200):
        key = rng.getrandbits(256)
        full = [i for _, i in heapq.nsmallest(5, ((n.key ^ key, n.index) for n in fleet.nodes))]
        assert fleet._xor_nearest(key, 5) == full


@pytest.mark.parametrize('hosts, nodes, shards, expected', [
    (10, 5, 0, 1), (50, 20, 0, 1), (250, 20, 0, 2), (500, 20, 0, 4), (6, 2, 3, 3)])
def test_shards_cover_every_host_once(hosts, nodes, shards, expected):
    config = SimConfig(hosts=hosts, nodes_per_host=nodes, shards=shards).validate()
    assert config.shard_count() == expected
    owned = [config.shard_nodes(k) for k in range(expected)]
    assert sorted(i for block in owned for i in block) == list(range(hosts * nodes))
    for block in owned:  # whole hosts
        assert {i // nodes for i in block} and all(i // nodes * nodes + n in block for i in block for n in range(nodes))


@pytest.mark.parametrize('hosts, nodes, shards, message', [
    (3, 2, 4, 'at most 3 shards'), (400, 20, 1, 'use at least 2 shards'), (4, 2, -1, 'must not be negative')])
def test_bad_shard_counts_are_refused(hosts, nodes, shards, message):
    with pytest.raises(ValueError, match=message):
        SimConfig(hosts=hosts, nodes_per_host=nodes, shards=shards, base_port=2000).validate()
