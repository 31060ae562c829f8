"""Traffic model: per-transport split by mode, errors, latency histograms, client reads."""

from __future__ import annotations

import pytest
from simclock import make_fleet, step, switch, switch_all

from ansible_collections.autonomi.network_migration.plugins.module_utils._kademlia import close_group
from ant_fleet_sim.model import HISTOGRAM_BUCKETS


def totals(node, transport):
    req = node.counters.requests[transport]
    return req['success'] + req['error']


def quantile(node, transport, q):
    hist = node.counters.hist[transport]
    total = totals(node, transport)
    for le, count in zip(HISTOGRAM_BUCKETS, hist, strict=True):
        if count >= q * total:
            return le
    return float('inf')


@pytest.mark.parametrize('mode,iroh_share', [
    ('libp2p_only', 0.0), ('dual_stack', 0.5), ('iroh_primary', 0.9), ('iroh_only', 1.0)])
def test_transport_split_by_mode(mode, iroh_share):
    fleet, clock = make_fleet(hosts=2, nodes_per_host=4)
    for m in ('dual_stack', 'iroh_primary', 'iroh_only'):
        switch_all(fleet, m)
        step(fleet, clock, 3)
        if m == mode:
            break
    if mode == 'libp2p_only':
        fleet, clock = make_fleet(hosts=2, nodes_per_host=4)
    step(fleet, clock, 3)
    node = fleet.nodes[0]
    node.counters.__init__()
    step(fleet, clock, 10)
    lib, iroh = totals(node, 'libp2p'), totals(node, 'iroh')
    assert iroh / (lib + iroh) == pytest.approx(iroh_share, abs=0.01)
    assert lib + iroh == pytest.approx(fleet.config.request_rate * 10, rel=0.01)


def test_iroh_faster_than_libp2p():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3)
    switch_all(fleet, 'dual_stack')
    step(fleet, clock, 10)
    node = fleet.nodes[0]
    assert quantile(node, 'iroh', 0.5) < quantile(node, 'libp2p', 0.5)
    mean_iroh = node.counters.hist_sum['iroh'] / totals(node, 'iroh')
    mean_lib = node.counters.hist_sum['libp2p'] / totals(node, 'libp2p')
    assert mean_iroh < mean_lib
    hist = node.counters.hist['iroh']
    assert all(a <= b for a, b in zip(hist, hist[1:], strict=False))


def test_error_fault_scoped_to_mode_applies_to_nodes_entering_it_later():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3)
    fleet.add_fault({'kind': 'transport', 'transport': 'iroh', 'error_rate': 0.5, 'mode': 'dual_stack'})
    canary = fleet.by_host[fleet.hosts[0]][0]
    switch(fleet, canary.host, [canary.service_name], 'dual_stack')
    other = fleet.by_host[fleet.hosts[1]][0]
    switch(fleet, other.host, [other.service_name], 'dual_stack')
    step(fleet, clock, 10)
    req = canary.counters.requests['iroh']
    assert req['error'] / (req['error'] + req['success']) == pytest.approx(0.5, abs=0.02)
    lib = canary.counters.requests['libp2p']
    assert lib['error'] / (lib['error'] + lib['success']) < 0.01


def test_latency_fault_on_hosts_moves_p95():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3)
    switch_all(fleet, 'dual_stack')
    fleet.add_fault({'kind': 'transport', 'transport': 'iroh', 'latency_ms': 600, 'hosts': [fleet.hosts[0]]})
    step(fleet, clock, 10)
    slow = fleet.by_host[fleet.hosts[0]][0]
    fast = fleet.by_host[fleet.hosts[1]][0]
    assert quantile(slow, 'iroh', 0.95) > 0.5
    assert quantile(fast, 'iroh', 0.95) <= 0.2


def test_libp2p_only_node_has_no_iroh_traffic():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=2)
    step(fleet, clock, 5)
    node = fleet.nodes[0]
    assert totals(node, 'iroh') == 0
    assert node.counters.holepunch == 0
    assert fleet.node_metrics(node)['iroh_direct'] == 0


def test_client_reads_healthy_fleet_all_succeed():
    fleet, clock = make_fleet(hosts=4, nodes_per_host=5, client_read_rate=300)
    step(fleet, clock, 10)
    reads = fleet.client_reads()
    assert reads['total'] == pytest.approx(3000, rel=0.01)
    assert reads['ratio'] == pytest.approx(1.0)


def test_client_reads_fail_when_whole_close_group_down():
    fleet, clock = make_fleet(hosts=4, nodes_per_host=5, records=64)
    holders = fleet.record_holders[0]
    peer_ids = [n.peer_id for n in fleet.nodes]
    # The model's holders are the record key's close group.
    assert len(holders) == 5
    for i in holders:
        fleet.stop_node(fleet.nodes[i])
    step(fleet, clock, 1)
    success = fleet.client_reads()['current_success']
    lost = sum(1 for h in fleet.record_holders if all(i in holders for i in h))
    assert lost >= 1
    assert success == pytest.approx(1 - lost / len(fleet.record_holders), abs=1e-6)
    assert close_group(1, peer_ids)  # sanity: helper usable with the fleet's ids


def test_client_reads_survive_one_holder_down():
    fleet, clock = make_fleet(hosts=4, nodes_per_host=5)
    fleet.stop_node(fleet.nodes[0])
    step(fleet, clock, 1)
    assert fleet.client_reads()['current_success'] == pytest.approx(1.0)


def test_client_reads_fail_where_a_mode_split_hides_every_holder():
    fleet, clock = make_fleet(hosts=4, nodes_per_host=5)
    switch(fleet, fleet.hosts[0], (), 'iroh_only')
    step(fleet, clock, 5)
    iroh = {n.index for n in fleet.by_host[fleet.hosts[0]]}
    # A read from an entry node fails when no holder shares a transport with it.
    expected = 0.0
    for holders in fleet.record_holders:
        on_iroh = sum(1 for i in holders if i in iroh)
        expected += (5 * (on_iroh > 0) + 15 * (on_iroh < 5)) / 20
    expected /= len(fleet.record_holders)
    success = fleet.client_reads()['current_success']
    assert success == pytest.approx(expected)
    assert success < 0.99


def test_deterministic_with_seed():
    a, ca = make_fleet(hosts=3, nodes_per_host=3, seed=7)
    b, cb = make_fleet(hosts=3, nodes_per_host=3, seed=7)
    assert [n.peer_id for n in a.nodes] == [n.peer_id for n in b.nodes]
    assert a.record_holders == b.record_holders
    c, _ = make_fleet(hosts=3, nodes_per_host=3, seed=8)
    assert [n.peer_id for n in a.nodes] != [n.peer_id for n in c.nodes]
