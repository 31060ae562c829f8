#!/usr/bin/python
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: node_health
short_description: Check the health of the ant-node services of a host, per node and per transport
version_added: 0.1.0
description:
  - Reads each selected node's metrics twice, O(sample_window) seconds apart, and judges the node
    V(healthy), V(degraded) or V(unhealthy), per transport it runs and overall.
  - "Checks: connectivity (connected peers per transport the node runs, and O(important_peers));
    Kademlia (routing table size, closest-peer query success over the window); per-transport error
    rate and p95 latency over the window; mode agreement with O(expected_modes)."
  - Every failed check is returned with its reason, its measured value and its threshold.
  - A rate is judged only over O(min_observations) observations; below it the check says "insufficient data"
    (RV(nodes[].insufficient_data)), which is neither a pass nor a fail.
  - The module changes nothing. It fails only when O(fail_on) asks for it, so that playbooks decide.
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
  min_peers:
    description:
      - A node must have at least this many connected peers on each transport its mode runs
        (C(ant_networking_transport_connected_peers)). Fewer is V(degraded); none at all is V(unhealthy).
    type: int
    default: 5
  important_peers:
    description:
      - Peer ids every selected node must be connected to; a missing one makes the node V(degraded).
      - Needs C(antctl status --json) to list the connected peer ids (the registry's form). When antctl reports
        only a count, the check is reported as not verifiable and does not change the state.
    type: list
    elements: str
    default: []
  min_routing_peers:
    description:
      - A node with fewer peers in its Kademlia routing table (C(ant_networking_peers_in_routing_table))
        is V(degraded) (10 of the 20 a closest-peers query asks for); an empty routing table is V(unhealthy).
    type: int
    default: 10
  min_query_success:
    description:
      - Lowest acceptable share (0 to 1) of successful closest-peer queries during the window;
        lower is V(degraded). No query in the window is not judged.
    type: float
    default: 0.9
  max_error_rate:
    description:
      - Highest acceptable share (0 to 1) of failed requests per transport during the window;
        higher is V(unhealthy) (the collection's critical alert uses the same 5 %).
    type: float
    default: 0.05
  max_p95_latency:
    description:
      - Highest acceptable p95 request latency per transport during the window, in seconds;
        higher is V(degraded) (the collection's warning alert uses the same 500 ms).
    type: float
    default: 0.5
  sample_window:
    description:
      - Seconds between the two scrapes of each node from which rates and latency are computed.
      - V(0) scrapes once and skips the error-rate, latency and query-success checks.
    type: float
    default: 5.0
  min_observations:
    description:
      - A rate is judged only over at least this many observations in the window - requests of the transport for
        the error rate and the p95 latency, closest-peer queries for the query success. Below it the check is
        reported in RV(nodes[].insufficient_data) as insufficient data, neither a pass nor a fail, and does not
        change the node's state.
      - The default, 20, is where one error out of the window's requests is the 5 % error threshold; with fewer,
        a single timeout would read as a failing node. A real node sends a few closest-peer queries a minute, so
        judging them needs an O(sample_window) of a minute or more.
    type: int
    default: 20
  expected_modes:
    description:
      - The mode the migration ledger expects of each node, keyed by service name or peer id.
      - A node that runs another mode is V(unhealthy). Nodes absent from the dict are not checked.
    type: dict
    default: {}
  fail_on:
    description:
      - V(unhealthy) fails the task when any selected node is unhealthy; V(degraded) when any is degraded
        or unhealthy; V(never) always returns the results.
    type: str
    choices: [unhealthy, degraded, never]
    default: never
seealso:
  - module: autonomi.network_migration.transport_mode
  - module: autonomi.network_migration.transport_info
"""

EXAMPLES = r"""
- name: Check the nodes of the host against what the ledger expects
  autonomi.network_migration.node_health:
    antctl_path: "{{ ant_antctl_path | default(omit) }}"
    sample_window: 10
    expected_modes: "{{ ledger_expected_modes[inventory_hostname] | default({}) }}"
  register: health

- name: Fail the batch when a switched node is unhealthy
  autonomi.network_migration.node_health:
    nodes: "{{ switched.switched }}"
    min_peers: 8
    important_peers:
      - 12D3KooWD3bfmNbuuuVCYwkjnFt3ukm3qaB3hDED3peGVCEs1eVh
    fail_on: unhealthy

- name: Show the degraded nodes
  ansible.builtin.debug:
    msg: "{{ health.nodes | selectattr('state', 'ne', 'healthy') | map(attribute='failed_checks') }}"
"""

RETURN = r"""
state:
  description: The worst state of the selected nodes (V(healthy) when no node is selected).
  returned: always
  type: str
  sample: degraded
summary:
  description: How many selected nodes are in each state.
  returned: always
  type: dict
  sample: {healthy: 4, degraded: 1, unhealthy: 0}
sample_window:
  description: The longest time actually elapsed between a node's two scrapes, in seconds (V(0) with one scrape).
  returned: always
  type: float
nodes:
  description: One entry per selected node, in registry order.
  returned: always
  type: list
  elements: dict
  contains:
    service_name:
      description: The node's service name.
      type: str
    peer_id:
      description: The node's peer id.
      type: str
    status:
      description: The node's status in antctl.
      type: str
      sample: Running
    mode:
      description: The transport mode the node runs (from C(ant_node_transport_mode)); null when unknown.
      type: str
    expected_mode:
      description: The mode O(expected_modes) gave for the node; null when not given.
      type: str
    state:
      description: V(healthy), V(degraded) or V(unhealthy) — the worst of its checks.
      type: str
    window_seconds:
      description: Seconds between this node's two scrapes; null with a single scrape or an unreachable node.
      type: float
    connected_peers:
      description: Total connected peers.
      type: int
    routing_table_size:
      description: Peers in the Kademlia routing table.
      type: int
    closest_peers:
      description: Closest-peer queries during the window (V(ok), V(errors), V(success_rate)).
      type: dict
    transports:
      description:
        - Per transport the node's mode runs (V(libp2p), V(iroh)) its V(state), V(connected_peers),
          V(requests), V(errors), V(error_rate), V(request_rate), V(p95_latency_seconds) and V(dial_failures)
          over the window.
      type: dict
      sample:
        libp2p: {state: healthy, connected_peers: 12, requests: 240, errors: 2, error_rate: 0.008,
                 request_rate: 48.0, p95_latency_seconds: 0.21, dial_failures: 0}
    failed_checks:
      description: Every check that did not pass.
      type: list
      elements: dict
      contains:
        check:
          description: >-
            V(reachable), V(connectivity), V(important_peers), V(routing_table), V(closest_peers),
            V(error_rate), V(latency_p95) or V(mode).
          type: str
        transport:
          description: The transport the check concerns, or null.
          type: str
        state:
          description: The state this check gives the node.
          type: str
        value:
          description: The measured value.
          type: raw
        threshold:
          description: The threshold it was compared with.
          type: raw
        reason:
          description: A sentence an operator can act on.
          type: str
    notes:
      description: Checks that could not be made, and why.
      type: list
      elements: str
    insufficient_data:
      description:
        - The rates not judged for lack of observations in the window (fewer than O(min_observations)); they
          neither pass nor fail.
      type: list
      elements: dict
      contains:
        check:
          description: V(error_rate) (with the latency of the same requests) or V(closest_peers).
          type: str
        transport:
          description: The transport of a request check, null for closest-peer queries.
          type: str
        observations:
          description: Requests or queries seen in the window.
          type: int
        minimum:
          description: O(min_observations).
          type: int
        reason:
          description: A sentence saying what was not judged and why.
          type: str
unhealthy_nodes:
  description: Service names of the unhealthy nodes.
  returned: always
  type: list
  elements: str
degraded_nodes:
  description: Service names of the degraded nodes.
  returned: always
  type: list
  elements: str
insufficient_data_nodes:
  description: Service names of the nodes with at least one rate not judged for lack of observations.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.autonomi.network_migration.plugins.module_utils._common import (
    fail_from_error,
    node_argument_spec,
    reader_from_params,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import NodeError
from ansible_collections.autonomi.network_migration.plugins.module_utils._health import (
    DEFAULT_MIN_OBSERVATIONS,
    DEGRADED,
    HEALTHY,
    UNHEALTHY,
    HealthChecker,
    check_params,
    should_fail,
)


def argument_spec():
    spec = node_argument_spec()
    spec.update(
        min_peers=dict(type='int', default=5),
        important_peers=dict(type='list', elements='str', default=[]),
        min_routing_peers=dict(type='int', default=10),
        min_query_success=dict(type='float', default=0.9),
        max_error_rate=dict(type='float', default=0.05),
        max_p95_latency=dict(type='float', default=0.5),
        sample_window=dict(type='float', default=5.0),
        min_observations=dict(type='int', default=DEFAULT_MIN_OBSERVATIONS),
        expected_modes=dict(type='dict', default={}),
        fail_on=dict(type='str', choices=['unhealthy', 'degraded', 'never'], default='never'),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problems = check_params(module.params)
    if problems:
        module.fail_json(msg='; '.join(problems), changed=False)
    reader = reader_from_params(module.params)
    try:
        result = HealthChecker(module.params, reader).run()
    except NodeError as exc:
        fail_from_error(module, exc, changed=False)
    if should_fail(module.params['fail_on'], result['state']):
        bad = result['unhealthy_nodes'] + (result['degraded_nodes'] if module.params['fail_on'] == DEGRADED else [])
        reasons = [c['reason'] for e in result['nodes'] if e['service_name'] in bad for c in e['failed_checks']
                   if c['state'] != HEALTHY]
        module.fail_json(msg=f"{len(bad)} node(s) {result['state']} (fail_on={module.params['fail_on']}): "
                             + '; '.join(reasons), **result)
    msg = (f"{result['summary'][HEALTHY]} healthy, {result['summary'][DEGRADED]} degraded, "
           f"{result['summary'][UNHEALTHY]} unhealthy")
    if result['insufficient_data_nodes']:
        msg += f"; insufficient data to judge a rate on {len(result['insufficient_data_nodes'])} node(s)"
    module.exit_json(msg=msg, **result)


if __name__ == '__main__':
    main()
