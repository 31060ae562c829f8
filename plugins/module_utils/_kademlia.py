# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kademlia close groups as the network computes them: keys, XOR distance, who holds a record.

Autonomi stores each record on the CLOSE_GROUP_SIZE (5) nodes nearest to the record's key by
XOR distance. The simulator uses this to decide whether a client read can succeed; the
rollout uses it to spread waves so that one batch never takes down too much of a close group.

Keys follow libp2p and Autonomi, not our picture of them:

- a node's key is libp2p's ``kbucket::Key::from(PeerId)``: SHA-256 of the peer id's *bytes*
  (``PeerId::to_bytes()``, the multihash that the base58btc text ``12D3KooW...`` decodes to),
  not of its text (libp2p/rust-libp2p ``protocols/kad/src/kbucket/key.rs``);
- a record's key is Autonomi's ``NetworkAddress::as_kbucket_key()``: SHA-256 of the address
  bytes (the 32-byte XorName of a chunk, pointer, scratchpad or graph entry;
  maidsafe/autonomi ``ant-protocol/src/lib.rs``).

A peer id's text is base58btc (Bitcoin alphabet) of a multihash: ``<code varint><length
varint><digest>``, code 0x00 (identity: the protobuf-encoded public key, what Ed25519 keys
use, hence ``12D3KooW...``) or 0x12 (SHA-256 of a longer key, ``Qm...``)
(libp2p/specs ``peer-ids/peer-ids.md``). Standard library only: this runs on fleet hosts too.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math

CLOSE_GROUP_SIZE = 5
KEY_BITS = 256  # SHA-256 keys

BASE58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
_BASE58_INDEX = {c: i for i, c in enumerate(BASE58_ALPHABET)}
MULTIHASH_IDENTITY = 0x00
MULTIHASH_SHA2_256 = 0x12
# libp2p's limit for an identity-hashed public key (peer-ids.md: keys of at most 42 bytes are inlined).
MAX_INLINE_KEY_LENGTH = 42
# The protobuf PublicKey of an Ed25519 key: field 1 (KeyType) = 1 (Ed25519), field 2 (Data) = 32 bytes.
_ED25519_PUBLIC_KEY_PREFIX = bytes((0x08, 0x01, 0x12, 0x20))


def base58_decode(text):
    """Bytes of a base58btc string (leading ``1`` characters are leading zero bytes); ValueError if invalid."""
    number = 0
    for position, char in enumerate(text):
        try:
            number = number * 58 + _BASE58_INDEX[char]
        except KeyError:
            raise ValueError(f'{char!r} at position {position + 1} is not a base58btc character') from None
    body = number.to_bytes((number.bit_length() + 7) // 8, 'big') if number else b''
    return b'\x00' * (len(text) - len(text.lstrip('1'))) + body


def base58_encode(data):
    """The base58btc text of ``data``."""
    number = int.from_bytes(data, 'big')
    chars = []
    while number:
        number, rest = divmod(number, 58)
        chars.append(BASE58_ALPHABET[rest])
    return '1' * (len(data) - len(data.lstrip(b'\x00'))) + ''.join(reversed(chars))


def _varint(data, pos):
    """(value, next position) of the unsigned varint at ``data[pos]``."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError('truncated varint')
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def peer_id_bytes(peer_id):
    """The multihash bytes of a base58btc peer id (what ``PeerId::to_bytes()`` returns).

    ValueError, naming the peer id, when it is not one: bad base58, an unknown multihash code,
    or a length that does not match (libp2p accepts identity and SHA-256 multihashes only).
    """
    try:
        data = base58_decode(peer_id)
        code, pos = _varint(data, 0)
        length, pos = _varint(data, pos)
    except (ValueError, TypeError) as exc:
        raise ValueError(f'{peer_id!r} is not a libp2p peer id: {exc}') from None
    if code == MULTIHASH_IDENTITY:
        if length > MAX_INLINE_KEY_LENGTH:
            raise ValueError(f'{peer_id!r} is not a libp2p peer id: an identity multihash of {length} bytes '
                             f'(at most {MAX_INLINE_KEY_LENGTH})')
    elif code == MULTIHASH_SHA2_256:
        if length != 32:
            raise ValueError(f'{peer_id!r} is not a libp2p peer id: a SHA-256 multihash of {length} bytes')
    else:
        raise ValueError(f'{peer_id!r} is not a libp2p peer id: multihash code 0x{code:x} '
                         '(expected 0x00 identity or 0x12 sha2-256)')
    if len(data) - pos != length:
        raise ValueError(f'{peer_id!r} is not a libp2p peer id: the multihash says {length} bytes, '
                         f'{len(data) - pos} follow')
    return data


def peer_id_from_ed25519(public_key):
    """The peer id of a 32-byte Ed25519 public key: base58btc of the identity multihash of its
    protobuf encoding (``PublicKey::to_peer_id``) - the ``12D3KooW...`` form."""
    if len(public_key) != 32:
        raise ValueError(f'an Ed25519 public key has 32 bytes, got {len(public_key)}')
    encoded = _ED25519_PUBLIC_KEY_PREFIX + bytes(public_key)
    return base58_encode(bytes((MULTIHASH_IDENTITY, len(encoded))) + encoded)


def _sha256_int(data):
    return int.from_bytes(hashlib.sha256(data).digest(), 'big')


def node_key(peer_id):
    """The 256-bit Kademlia key of a node, as libp2p computes it: SHA-256 of the peer id's bytes.

    ``peer_id``: the base58btc text (decoded first; ValueError when it is not a peer id), the
    multihash bytes, or an int that already is a key (returned as it is).
    """
    if isinstance(peer_id, int):
        return peer_id
    if isinstance(peer_id, str):
        peer_id = peer_id_bytes(peer_id)
    return _sha256_int(bytes(peer_id))


def record_key(address):
    """The Kademlia key of a record, as Autonomi computes it: SHA-256 of the address bytes
    (for a chunk its 32-byte XorName; ``NetworkAddress::as_kbucket_key``)."""
    return _sha256_int(bytes(address))


def xor_distance(a, b):
    """XOR distance between two keys or peer ids."""
    return node_key(a) ^ node_key(b)


def close_group(key, peer_ids, size=CLOSE_GROUP_SIZE):
    """The ``size`` peer ids nearest to ``key`` by XOR distance, nearest first.

    ``key`` is an int key (a record's: :func:`record_key`) or a peer id. Ties cannot happen
    between distinct keys (XOR is a bijection), so the result is deterministic.
    """
    target = node_key(key)
    keyed = [(node_key(p) ^ target, p) for p in peer_ids]
    return [p for _distance, p in heapq.nsmallest(size, keyed)]


def xor_nearest(sorted_keys, key, count, accept=None):
    """The positions in ``sorted_keys`` (ascending ints) of the ``count`` keys nearest to ``key`` by XOR,
    nearest first, among the positions ``accept`` accepts (all when None).

    O(log n + block): keys sharing a longer prefix with ``key`` are nearer to it than all others, and
    the keys sharing a prefix are a contiguous block of the sorted list, so the nearest are found in
    the smallest prefix block that holds enough accepted keys - exactly the answer of comparing every
    key. Used by close_groups_of_nodes and the fleet simulator.
    """
    if count <= 0:
        return []
    bits = int(math.log2(max(1.0, len(sorted_keys) / (4.0 * count))))
    while True:
        shift = KEY_BITS - bits
        low = (key >> shift) << shift
        lo = bisect.bisect_left(sorted_keys, low)
        hi = bisect.bisect_left(sorted_keys, low + (1 << shift))
        block = [(sorted_keys[j] ^ key, j) for j in range(lo, hi) if accept is None or accept(j)]
        if len(block) >= count or bits == 0:
            break
        bits -= 1
    return [j for _distance, j in heapq.nsmallest(count, block)]


def close_groups_of_nodes(peer_ids, size=CLOSE_GROUP_SIZE):
    """Each node's close group: the node itself and its ``size - 1`` nearest peers by XOR.

    Returns ``{peer_id: [peer_id, nearest, ...]}`` (the node first). A peer id that does not
    decode is a ValueError naming it: closeness over anything else is not the network's.
    O(n log n) (xor_nearest); comparing every pair took 32 s of CPU for 10,000 nodes.
    """
    peer_ids = list(peer_ids)
    keys = {p: node_key(p) for p in peer_ids}
    ordered = sorted((keys[q], q) for q in peer_ids)
    sorted_keys = [k for k, _q in ordered]
    groups = {}
    for p in peer_ids:
        nearest = xor_nearest(sorted_keys, keys[p], size - 1, lambda j, p=p: ordered[j][1] != p)
        groups[p] = [p] + [ordered[j][1] for j in nearest]
    return groups


def max_group_share(peer_ids_down, groups):
    """The largest number of members of any one close group that are in ``peer_ids_down``.

    ``groups`` is the mapping returned by :func:`close_groups_of_nodes`. A rollout batch is safe
    for reads while this stays below the group size (at least one holder stays up).
    """
    down = set(peer_ids_down)
    return max((sum(1 for q in members if q in down) for members in groups.values()), default=0)
