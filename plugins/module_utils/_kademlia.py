# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kademlia close groups: who holds a record, and which nodes share a close group.

Autonomi stores each record on the CLOSE_GROUP_SIZE (5) nodes nearest to the record's key by
XOR distance. The simulator uses this to decide whether a client read can succeed; the
rollout uses it to spread waves so that one batch never takes down too much of a close group.

Keys are derived from a peer id (or any string) with SHA-256, which keeps the maths here
independent of libp2p's own key encoding; the closeness relation it produces has the same
shape (uniformly spread 256-bit keys).
"""

from __future__ import annotations

import hashlib
import heapq

CLOSE_GROUP_SIZE = 5


def node_key(peer_id):
    """The 256-bit Kademlia key of a peer id (or record name): SHA-256 as an integer."""
    if isinstance(peer_id, int):
        return peer_id
    if isinstance(peer_id, str):
        peer_id = peer_id.encode('utf-8')
    return int.from_bytes(hashlib.sha256(peer_id).digest(), 'big')


def xor_distance(a, b):
    """XOR distance between two keys or peer ids."""
    return node_key(a) ^ node_key(b)


def close_group(key, peer_ids, size=CLOSE_GROUP_SIZE):
    """The ``size`` peer ids nearest to ``key`` by XOR distance, nearest first.

    ``key`` is an int key or a string (hashed with :func:`node_key`). Ties cannot happen
    between distinct keys (XOR is a bijection), so the result is deterministic.
    """
    target = node_key(key)
    keyed = [(node_key(p) ^ target, p) for p in peer_ids]
    return [p for _distance, p in heapq.nsmallest(size, keyed)]


def close_groups_of_nodes(peer_ids, size=CLOSE_GROUP_SIZE):
    """Each node's close group: the node itself and its ``size - 1`` nearest peers by XOR.

    Returns ``{peer_id: [peer_id, nearest, ...]}`` (the node first).
    """
    peer_ids = list(peer_ids)
    keys = {p: node_key(p) for p in peer_ids}
    groups = {}
    for p in peer_ids:
        kp = keys[p]
        nearest = heapq.nsmallest(size - 1, ((keys[q] ^ kp, q) for q in peer_ids if q != p))
        groups[p] = [p] + [q for _distance, q in nearest]
    return groups


def max_group_share(peer_ids_down, groups):
    """The largest number of members of any one close group that are in ``peer_ids_down``.

    ``groups`` is the mapping returned by :func:`close_groups_of_nodes`. A rollout batch is safe
    for reads while this stays below the group size (at least one holder stays up).
    """
    down = set(peer_ids_down)
    return max((sum(1 for q in members if q in down) for members in groups.values()), default=0)
