#!/usr/bin/python
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: transport_info
short_description: Report the ant-node services of a host with their transport mode and peers
version_added: 0.1.0
description:
  - Lists every node of the host (or the selected ones) as C(antctl status --json) knows it, with its
    transport mode and connected peers per transport read from the node's metrics.
  - Read only. Used for fleet-wide reports and to reconcile the migration ledger with reality.
  - A node whose metrics cannot be read is still listed, with V(null) figures and the reason in C(metrics_error).
author:
  - Autonomi network operations (@autonomi)
extends_documentation_fragment:
  - autonomi.network_migration._node
  - autonomi.network_migration._attributes
  - autonomi.network_migration._attributes.IDEMPOTENT
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same way in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  gather_metrics:
    description:
      - Read each running node's metrics for its mode and per-transport peers.
      - V(false) returns only what antctl knows, without touching the nodes' metrics endpoints.
    type: bool
    default: true
seealso:
  - module: autonomi.network_migration.transport_mode
  - module: autonomi.network_migration.node_health
"""

EXAMPLES = r"""
- name: Read the nodes of every fleet host
  autonomi.network_migration.transport_info:
    antctl_path: "{{ ant_antctl_path | default(omit) }}"
  register: info

- name: Count the nodes per mode across the fleet
  ansible.builtin.debug:
    msg: "{{ ansible_play_hosts | map('extract', hostvars, ['info', 'modes']) | list }}"
  run_once: true

- name: One node, by peer id
  autonomi.network_migration.transport_info:
    nodes:
      - 12D3KooWD3bfmNbuuuVCYwkjnFt3ukm3qaB3hDED3peGVCEs1eVh
"""

RETURN = r"""
nodes:
  description: One entry per selected node, in registry order.
  returned: always
  type: list
  elements: dict
  contains:
    service_name:
      description: Service name.
      type: str
      sample: antnode1
    peer_id:
      description: Peer id.
      type: str
    number:
      description: antctl's number of the node.
      type: int
    status:
      description: V(Added), V(Running), V(Stopped) or V(Removed).
      type: str
    version:
      description: ant-node version, from the node's C(/metadata) (C(ant_node_antnode_version_info)); antctl's
        registry version when the node does not serve it or is not running.
      type: str
    mode:
      description: The active transport mode; null when the node is not running or its metrics cannot be read.
      type: str
      sample: dual_stack
    metrics_port:
      description: Port of the node's metrics endpoint.
      type: int
    rpc_socket_addr:
      description: The node's RPC address.
      type: str
    node_port:
      description: The node's own port, when antctl reports it.
      type: int
    data_dir_path:
      description: Data directory.
      type: str
    log_dir_path:
      description: Log directory.
      type: str
    connected_peers:
      description: Connected peers (metrics when read, else antctl's figure).
      type: int
    connected_peers_by_transport:
      description: Connected peers per transport (V(libp2p), V(iroh)), from the metrics.
      type: dict
      sample: {libp2p: 12, iroh: 9}
    routing_table_size:
      description: Peers in the Kademlia routing table.
      type: int
    uptime_seconds:
      description: Seconds since the node started.
      type: float
    configured_mode:
      description:
        - The C(ANT_TRANSPORT_MODE) of the service's systemd drop-in (O(unit_dir)), i.e. what the node runs at its
          next start; null when the service has no drop-in (antctl keeps no per-node environment). Differs from
          RV(nodes[].mode) only while a change is pending or when the drop-in was changed by hand.
      type: str
    metrics_error:
      description: Why the metrics could not be read; null when they were (or were not asked for).
      type: str
modes:
  description: How many selected nodes run each mode (V(unknown) for nodes whose mode could not be read).
  returned: always
  type: dict
  sample: {libp2p_only: 3, dual_stack: 2, iroh_primary: 0, iroh_only: 0, unknown: 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.autonomi.network_migration.plugins.module_utils._common import (
    fail_from_error,
    node_argument_spec,
    parallel_map,
    reader_from_params,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import MetricsError, NodeError
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODES

REGISTRY_FIELDS = ('service_name', 'peer_id', 'number', 'status', 'version', 'metrics_port', 'rpc_socket_addr',
                   'node_port', 'data_dir_path', 'log_dir_path', 'connected_peers', 'configured_mode')


def describe(reader, node, gather_metrics=True):
    entry = {field: node.get(field) for field in REGISTRY_FIELDS}
    entry.update(mode=None, connected_peers_by_transport={}, routing_table_size=None, uptime_seconds=None,
                 metrics_error=None)
    if not gather_metrics:
        return entry
    metrics, error = reader.try_scrape(node, metadata=True)
    if metrics is None:
        entry['metrics_error'] = error
        return entry
    try:
        figures = metrics.summary()
    except MetricsError as exc:
        entry['metrics_error'] = str(exc)
        return entry
    entry.update(mode=figures['mode'], routing_table_size=figures['routing_table_size'],
                 uptime_seconds=figures['uptime_seconds'],
                 connected_peers_by_transport={t: n for t, n in figures['connected_peers_by_transport'].items()
                                               if n is not None})
    if figures['connected_peers'] is not None:
        entry['connected_peers'] = figures['connected_peers']
    # The node's own version (``/metadata``) is the truth; antctl's registry field is the fallback.
    entry['version'] = figures['version'] or entry['version']
    return entry


def gather(reader, selectors, gather_metrics=True):
    nodes = parallel_map(lambda node: describe(reader, node, gather_metrics), reader.nodes(selectors))
    modes = {mode: 0 for mode in MODES}
    modes['unknown'] = 0
    for node in nodes:
        modes[node['mode'] or 'unknown'] += 1
    return {'changed': False, 'nodes': nodes, 'modes': modes}


def main():
    spec = node_argument_spec()
    spec.update(gather_metrics=dict(type='bool', default=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    reader = reader_from_params(module.params)
    try:
        result = gather(reader, module.params['nodes'], module.params['gather_metrics'])
    except NodeError as exc:
        fail_from_error(module, exc, changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
