"""module_utils._kademlia: keys, XOR distance, close groups."""

from __future__ import annotations

import hashlib

from ansible_collections.autonomi.network_migration.plugins.module_utils._kademlia import (
    close_group,
    close_groups_of_nodes,
    max_group_share,
    node_key,
    xor_distance,
)
from ant_fleet_sim.model import make_peer_id

PEERS = [make_peer_id(1, 'h%d' % h, n) for h in range(5) for n in range(1, 9)]


def test_node_key_is_sha256_int():
    assert node_key('abc') == int.from_bytes(hashlib.sha256(b'abc').digest(), 'big')
    assert node_key(42) == 42


def test_xor_distance_properties():
    a, b = PEERS[:2]
    assert xor_distance(a, a) == 0
    assert xor_distance(a, b) == xor_distance(b, a) > 0


def test_close_group_is_the_nearest_five():
    key = 'record-1'
    group = close_group(key, PEERS)
    assert len(group) == 5
    ranked = sorted(PEERS, key=lambda p: xor_distance(p, key))
    assert group == ranked[:5]


def test_close_groups_of_nodes_start_with_the_node():
    groups = close_groups_of_nodes(PEERS)
    assert set(groups) == set(PEERS)
    for peer, members in groups.items():
        assert members[0] == peer and len(members) == 5 and len(set(members)) == 5
        others = sorted((p for p in PEERS if p != peer), key=lambda p: xor_distance(p, peer))
        assert members[1:] == others[:4]


def test_max_group_share():
    groups = close_groups_of_nodes(PEERS)
    peer = PEERS[0]
    assert max_group_share([], groups) == 0
    assert max_group_share(groups[peer], groups) == 5


def test_peer_ids_look_like_libp2p():
    assert all(p.startswith('12D3KooW') and len(p) == 52 for p in PEERS)
    assert len(set(PEERS)) == len(PEERS)
