# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one reader of what the fleet's hosts reported: the ``transport_info`` results registered on them.

The wave role's discover step registers each host's ``transport_info`` result (``wave_transport_info``);
the planner, the ledger's reconcile and the gate's judge step read it back from ``hostvars`` through
this function, so that "a host did not answer" means the same for all of them.
"""

from __future__ import annotations

DEFAULT_INFO_VAR = 'wave_transport_info'
REMOVED = 'Removed'


def reported_nodes(hostvars, hosts, info_var=DEFAULT_INFO_VAR):
    """({host: [node dicts as transport_info returned them]}, [hosts without a usable answer]).

    A host answered when its registered result exists, did not fail and carries ``nodes``.
    """
    observed, missing = {}, []
    for host in hosts or ():
        info = hostvars[host].get(info_var) if host in hostvars else None
        if not info or info.get('failed') or 'nodes' not in info:
            missing.append(host)
            continue
        observed[host] = list(info['nodes'])
    return observed, missing


def fleet_nodes(hostvars, hosts, info_var=DEFAULT_INFO_VAR):
    """(every node of the answering hosts as the planner takes them, [hosts without an answer]).

    ``Removed`` registry entries (antctl keeps a removed node in its registry) are not nodes of the fleet.
    """
    observed, missing = reported_nodes(hostvars, hosts, info_var)
    nodes = [{'host': host, 'service_name': node['service_name'], 'peer_id': node.get('peer_id'),
              'mode': node.get('mode'), 'status': node.get('status')}
             for host, host_nodes in observed.items() for node in host_nodes if node.get('status') != REMOVED]
    return nodes, missing
