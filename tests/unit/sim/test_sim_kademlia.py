"""module_utils._kademlia: keys as libp2p computes them, XOR distance, close groups.

Test vectors (peer ids and their bytes) and where they come from:

- ``12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN``: libp2p/rust-libp2p
  ``examples/rendezvous/src/main.rs`` ("Results in PeerID 12D3KooWDpJ7... ", from
  ``Keypair::ed25519_from_bytes([0; 32])``), also used in ``libp2p/src/tutorials/hole_punching.rs``;
- the Ed25519 public key ``1ed1e8fa...fce27e`` of rust-libp2p ``identity/src/keypair.rs``
  (test ``keypair_protobuf_roundtrip_ed25519``, protobuf ``080112201ed1e8fa...``), whose secret is
  ``7e0830...0fee7d``; its peer id is computed here from the spec (libp2p/specs
  ``peer-ids/peer-ids.md``: identity multihash of the protobuf key, base58btc);
- ``12D3KooWRNw2pJC9748Fmq4WNV27HoSTcX3r37132FLkQMrbKAiC``: rust-libp2p ``identity/tests/serde.rs``;
- ``QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N``: the SHA-256 (``Qm...``) peer id of libp2p's
  documentation examples, used in go-libp2p users' tests.

rust-libp2p's kbucket tests use random peer ids only, so the *keys* below were computed from the
definition in rust-libp2p ``protocols/kad/src/kbucket/key.rs`` (``impl From<PeerId> for Key<PeerId>``:
``Sha256::digest(p.to_bytes())``), outside this code: ``echo -n <bytes hex> | xxd -r -p | sha256sum``.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ansible_collections.autonomi.network_migration.plugins.module_utils._kademlia import (
    base58_decode,
    base58_encode,
    close_group,
    close_groups_of_nodes,
    max_group_share,
    node_key,
    peer_id_bytes,
    peer_id_from_ed25519,
    record_key,
    xor_distance,
)
from ant_fleet_sim.model import make_peer_id

PEERS = [make_peer_id(1, 'h%d' % h, n) for h in range(5) for n in range(1, 9)]

# peer id -> (multihash bytes, hex; SHA-256 of those bytes, hex)
VECTORS = {
    '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN': (
        '0024080112203b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29',
        '566b086a16b7d002b1b1f465d5f837985b1fbde5d760234fc435819fea030b39'),
    '12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq': (
        '0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e',
        'dfd53212a4bd2beda3ea8e82d08285370c70a70cfe9c588e28754b23c8033121'),
    '12D3KooWRNw2pJC9748Fmq4WNV27HoSTcX3r37132FLkQMrbKAiC': (
        '002408011220e7370c66efec8000d587fc4165928ee0755f9486cb5cf0f780d8e06c98ce7da9',
        '49a578463d363b2671be7f95875cdbe7c5fae05bfb9d15da8ac43590a85f3803'),
    'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N': (
        '12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9',
        'e41c99e231bc8c569bdbb2bb67fd760a2bd41b44cf8910ec7a93aefc14031896'),
}


@pytest.mark.parametrize('peer_id', sorted(VECTORS))
def test_node_key_is_sha256_of_the_peer_id_bytes_as_libp2p_computes_it(peer_id):
    raw, key = VECTORS[peer_id]
    assert peer_id_bytes(peer_id).hex() == raw
    assert node_key(peer_id) == int(key, 16)
    assert node_key(bytes.fromhex(raw)) == int(key, 16)
    # The old mistake: hashing the base58 text gives another key, hence other close groups.
    assert node_key(peer_id) != int.from_bytes(hashlib.sha256(peer_id.encode()).digest(), 'big')
    assert base58_encode(bytes.fromhex(raw)) == peer_id


def test_ed25519_peer_ids_are_built_as_rust_libp2p_builds_them():
    # rust-libp2p examples/rendezvous: Keypair::ed25519_from_bytes([0; 32]) -> 12D3KooWDpJ7...
    public = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert peer_id_from_ed25519(public) == '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
    # rust-libp2p identity/src/keypair.rs: the secret 7e08...0fee7d has the public key 1ed1e8...fce27e
    secret = bytes.fromhex('7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d')
    public = Ed25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert public.hex() == '1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e'
    assert peer_id_from_ed25519(public) == '12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq'


def test_simulated_peer_ids_are_real_ed25519_identity_multihashes():
    assert all(p.startswith('12D3KooW') and len(p) == 52 for p in PEERS)
    assert len(set(PEERS)) == len(PEERS)
    for peer in PEERS:
        raw = peer_id_bytes(peer)
        # identity multihash (0x00), 36 bytes: protobuf PublicKey {Type: Ed25519 (1), Data: 32 bytes}
        assert raw[:6] == bytes.fromhex('002408011220') and len(raw) == 38
    assert make_peer_id(1, 'h0', 1) == PEERS[0]  # deterministic for a seed


@pytest.mark.parametrize('text, reason', [
    ('12D3KooWpeer0101', "'0' at position 13 is not a base58btc character"),
    (base58_encode(bytes.fromhex(VECTORS['12D3KooWRNw2pJC9748Fmq4WNV27HoSTcX3r37132FLkQMrbKAiC'][0])[:-1]),
     'the multihash says 36 bytes, 35 follow'),
    (base58_encode(bytes.fromhex('1b20') + bytes(32)), 'multihash code 0x1b'),
    (base58_encode(bytes.fromhex('1210') + bytes(16)), 'a SHA-256 multihash of 16 bytes'),
    ('', 'truncated varint'),
])
def test_what_is_not_a_peer_id_is_refused_naming_it(text, reason):
    with pytest.raises(ValueError) as info:
        node_key(text)
    assert reason in str(info.value) and repr(text) in str(info.value)


def test_base58_keeps_leading_zero_bytes():
    assert base58_decode('11') == b'\x00\x00'
    assert base58_encode(b'\x00\x00\x01') == '112'
    assert base58_decode(base58_encode(b'\x00' + bytes(range(40)))) == b'\x00' + bytes(range(40))


def test_record_key_is_sha256_of_the_address_bytes():
    # Autonomi ant-protocol NetworkAddress::as_kbucket_key: Key::new(as_bytes()) = SHA-256 of the XorName.
    xorname = bytes(32)
    assert record_key(xorname) == int('66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925', 16)
    assert node_key(42) == 42


def test_xor_distance_properties():
    a, b = PEERS[:2]
    assert xor_distance(a, a) == 0
    assert xor_distance(a, b) == xor_distance(b, a) > 0


def test_close_group_is_the_nearest_five_by_the_network_keys():
    key = record_key(b'record-1')
    group = close_group(key, PEERS)
    assert len(group) == 5
    ranked = sorted(PEERS, key=lambda p: int.from_bytes(hashlib.sha256(peer_id_bytes(p)).digest(), 'big') ^ key)
    assert group == ranked[:5]


def test_close_groups_of_nodes_start_with_the_node():
    groups = close_groups_of_nodes(PEERS)
    assert set(groups) == set(PEERS)
    for peer, members in groups.items():
        assert members[0] == peer and len(members) == 5 and len(set(members)) == 5
        others = sorted((p for p in PEERS if p != peer), key=lambda p: xor_distance(p, peer))
        assert members[1:] == others[:4]


@pytest.mark.parametrize('count', [1, 2, 5, 6, 33, 700, 2000])
@pytest.mark.parametrize('size', [1, 2, 5, 8])
def test_close_groups_of_nodes_equal_comparing_every_pair(count, size):
    """The prefix-block search returns exactly each node's nearest peers over the whole set (the planner
    asked every pair before: O(n^2), 32 s of CPU for a 10,000-node wave plan)."""
    peers = [make_peer_id(3, 'h%d' % (i // 20), i % 20) for i in range(count)]
    groups = close_groups_of_nodes(peers, size=size)
    keys = {p: node_key(p) for p in peers}
    for peer in peers[:: max(1, count // 150)]:
        others = sorted((q for q in peers if q != peer), key=lambda q: keys[q] ^ keys[peer])
        assert groups[peer] == [peer] + others[:size - 1], peer


def test_close_groups_differ_from_those_of_the_text_hash():
    """The planner's groups are the network's: over the text hash they would be other groups."""
    groups = close_groups_of_nodes(PEERS)

    def text_key(p):
        return int.from_bytes(hashlib.sha256(p.encode()).digest(), 'big')

    by_text = {p: [p] + sorted((q for q in PEERS if q != p), key=lambda q: text_key(q) ^ text_key(p))[:4]
               for p in PEERS}
    assert groups != by_text


def test_max_group_share():
    groups = close_groups_of_nodes(PEERS)
    peer = PEERS[0]
    assert max_group_share([], groups) == 0
    assert max_group_share(groups[peer], groups) == 5
