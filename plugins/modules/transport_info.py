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
  - Reports, with a warning, the transport-mode drop-ins that no longer belong to their node (RV(stale_dropins)),
    orphaned by C(antctl remove) / C(antctl reset), or inherited by a node that C(antctl add) gave the name of an
    earlier one. The wave's discovery runs this module on every host, so such a node is reported before any wave.
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
stale_dropins:
  description:
    - The host's transport-mode drop-ins that do not belong to their node, whatever O(nodes) selects.
      V(orphaned) - no node of antctl has the service, its node is C(Removed), or its unit file is gone;
      V(inherited) - the service's node is not the one the drop-in was written for (another peer id, or a node that
      never ran). A node added after C(antctl reset) starts in the inherited mode.
    - C(playbooks/reconcile.yml -e remove_stale_dropins=true) (module M(autonomi.network_migration.transport_dropins))
      removes them.
  returned: always
  type: list
  elements: dict
  contains:
    service_name:
      description: The service the drop-in is for.
      type: str
    kind:
      description: V(orphaned) or V(inherited).
      type: str
    reason:
      description: Why it does not belong.
      type: str
    path:
      description: The drop-in file.
      type: str
    mode:
      description: The C(ANT_TRANSPORT_MODE) it sets.
      type: str
    written_for:
      description: The peer id the drop-in names (null when it names none).
      type: str
    node_status:
      description: The status of the service's node in antctl, null when there is none.
      type: str
    peer_id:
      description: The peer id of the service's node now, null when unknown.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.autonomi.network_migration.plugins.module_utils._antctl import select_nodes
from ansible_collections.autonomi.network_migration.plugins.module_utils._common import (
    fail_from_error,
    node_argument_spec,
    parallel_map,
    reader_from_params,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._dropins import REMOVE_HINT, audit, describe
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import MetricsError, NodeError
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODES

REGISTRY_FIELDS = ('service_name', 'peer_id', 'number', 'status', 'version', 'metrics_port', 'rpc_socket_addr',
                   'node_port', 'data_dir_path', 'log_dir_path', 'connected_peers', 'configured_mode')


def describe_node(reader, node, gather_metrics=True):
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
    registry = reader.registry()
    nodes = parallel_map(lambda node: describe_node(reader, node, gather_metrics), select_nodes(registry, selectors))
    modes = {mode: 0 for mode in MODES}
    modes['unknown'] = 0
    for node in nodes:
        modes[node['mode'] or 'unknown'] += 1
    stale = audit(registry, reader.systemd)
    result = {'changed': False, 'nodes': nodes, 'modes': modes, 'stale_dropins': stale}
    if stale:
        result['warnings'] = [f'{len(stale)} transport-mode drop-in(s) do not belong to their node: '
                              + '; '.join(describe(stale)) + f'; {REMOVE_HINT}']
    return result


def main():
    spec = node_argument_spec()
    spec.update(gather_metrics=dict(type='bool', default=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    reader = reader_from_params(module.params)
    try:
        result = gather(reader, module.params['nodes'], module.params['gather_metrics'])
    except NodeError as exc:
        fail_from_error(module, exc, changed=False)
    for warning in result.pop('warnings', []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
