#!/usr/bin/python
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: transport_mode
short_description: Set the transport mode of the ant-node services of a host
version_added: 0.1.0
description:
  - Sets the transport mode (V(libp2p_only), V(dual_stack), V(iroh_primary), V(iroh_only)) of the selected
    ant-node services of a host in one call, restarting each through systemd and waiting until each
    restarted node is ready again.
  - The mode is kept in a systemd drop-in per service, C(<unit_dir>/<service>.service.d/ant-transport-mode.conf)
    with C(Environment=ANT_TRANSPORT_MODE=<mode>), followed by C(systemctl daemon-reload) and
    C(systemctl restart <service>). The drop-in survives routine C(antctl upgrade) runs (antctl rewrites the unit
    file, never the drop-in directory), keeps the service's other variables (for example C(ANT_LOG)) and never
    downloads anything; C(antctl upgrade) is not used. See C(docs/node-interface.md).
  - The running mode is read from the node's C(ant_node_transport_mode) metric, the configured one from the
    drop-in; the node list comes from C(antctl status --json), which needs no node RPC.
  - Nodes already in the requested mode are not touched. Every requested change is validated for every
    selected node before any node is touched; one forbidden change refuses the whole call.
  - If a node fails to become ready, no further node is touched, the result is failed and lists the nodes
    that switched, those that did not and why; with O(restore_on_failure=true) the failed nodes are put
    back in their previous mode.
  - In a rollback (O(allow_rollback=true)) a node that is restarted in the earlier mode but not ready within
    O(ready_timeout) is not a failure; it stays configured for the earlier mode, is listed in RV(not_ready)
    with the seconds waited, and the other nodes and batches go on. A forward switch fails on it.
  - With O(interval=0) the nodes of a batch are restarted by one C(systemctl restart) call naming all their
    units; systemctl restarts the others when one unit fails and names it, and so does the result.
  - A controller-side action plugin of the same name first asks the migration ledger whether the migration
    is paused or halted, and refuses to touch the host if so (see O(ignore_pause)).
author:
  - Autonomi network operations (@autonomi)
extends_documentation_fragment:
  - autonomi.network_migration._node
  - autonomi.network_migration._attributes
  - autonomi.network_migration._attributes.IDEMPOTENT
  - autonomi.network_migration._attributes.ACTION
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: >-
      The first diff maps each selected node's service name to its mode before and after; one more diff per
      drop-in that changes (or would change) shows the file before and after.
  idempotent:
    support: full
  action:
    support: full
options:
  mode:
    description:
      - The transport mode the selected nodes must run.
      - Forward moves go one step at a time (V(libp2p_only) -> V(dual_stack) -> V(iroh_primary) -> V(iroh_only)).
      - V(iroh_only) is refused while any node of the host still runs V(libp2p_only), since the two
        cannot reach each other; the action plugin also refuses it while the migration ledger knows a node
        of another host in V(libp2p_only).
    type: str
    required: true
    choices: [libp2p_only, dual_stack, iroh_primary, iroh_only]
  allow_rollback:
    description:
      - Allow moving nodes back to an earlier mode (any earlier mode, not only one step).
    type: bool
    default: false
  interval:
    description:
      - Milliseconds to wait between two node restarts of one batch.
    type: int
    default: 2000
  batch_size:
    description:
      - How many nodes are restarted before waiting for them to be ready; the next batch starts only
        when every node of the previous one is ready.
      - V(0) restarts all the nodes that must change in one batch (paced by O(interval)).
    type: int
    default: 0
  ready_peers:
    description:
      - A restarted node is ready when it runs the requested mode and reports more than this many
        connected peers (C(ant_networking_connected_peers)). V(5) is antctl's own rule (CLOSE_GROUP_SIZE).
    type: int
    default: 5
  ready_timeout:
    description:
      - Seconds a restarted node has to become ready, counted from its own restart.
      - A node that is not ready in time has failed a forward switch; in a rollback it is reported in
        RV(not_ready) and the rollback goes on.
    type: int
    default: 300
  restore_on_failure:
    description:
      - Put the nodes that failed to move forward back in the mode they ran before this call, and wait for them to
        be ready.
      - Nodes that switched successfully are left in the requested mode. A rollback (a move back) is never undone;
        a node that fails to become ready in the earlier mode stays configured for it and is reported.
    type: bool
    default: true
  ignore_pause:
    description:
      - Handled by the action plugin on the controller, never sent to the host.
      - Touch the host even when the migration ledger says the migration is paused.
      - A halted migration is ignored only when O(allow_rollback=true) too, so that a rollback always works.
    type: bool
    default: false
  ledger:
    description:
      - Handled by the action plugin on the controller, never sent to the host.
      - Location of the migration ledger (SQLite path or PostgreSQL DSN). When not set, the ledger is
        found as the collection's ledger resolution describes (environment variable
        E(ANT_MIGRATION_LEDGER), then C(ansible.cfg), then the default path).
      - A DSN may carry a password; the value is never logged.
    type: str
notes:
  - "Privileges: writing the drop-ins under O(unit_dir) and C(systemctl daemon-reload) / C(restart) / C(start)
    need root on a real host (run the task with C(become); the roles use C(become: \"{{ migration_become }}\")).
    Reading a drop-in, C(antctl status --json) and the metrics need no privilege. In check mode nothing is written
    and no systemctl verb is run."
  - In check mode the pause/halt guard warns instead of failing, since nothing is touched.
  - Nodes that are not running are skipped, except in a rollback, which writes the drop-in of a stopped node whose
    configured mode is later than the requested one (or unknown, in a rollback to V(libp2p_only)) and reloads
    systemd without starting it, so that it cannot come back in the mode the fleet is leaving.
  - A node whose mode cannot be read stops the call before anything changes, except in a rollback to
    V(libp2p_only) with O(allow_rollback=true), which is valid from every mode and must always work.
seealso:
  - module: autonomi.network_migration.transport_info
  - module: autonomi.network_migration.node_health
"""

EXAMPLES = r"""
- name: Move every node of the host to dual-stack
  autonomi.network_migration.transport_mode:
    mode: dual_stack
    antctl_path: "{{ ant_antctl_path | default(omit) }}"

- name: Two nodes, five at a time, with a short readiness timeout
  autonomi.network_migration.transport_mode:
    mode: iroh_primary
    nodes:
      - antnode1
      - 12D3KooWD3bfmNbuuuVCYwkjnFt3ukm3qaB3hDED3peGVCEs1eVh
    batch_size: 5
    interval: 1000
    ready_timeout: 120

- name: Roll the host back to libp2p, even while the migration is paused or halted
  autonomi.network_migration.transport_mode:
    mode: libp2p_only
    allow_rollback: true
    ignore_pause: true

- name: Set the antctl path of the whole node group once
  module_defaults:
    group/autonomi.network_migration.node:
      antctl_path: "{{ ant_antctl_path }}"
  block:
    - name: Preview the change
      autonomi.network_migration.transport_mode:
        mode: dual_stack
      check_mode: true
      diff: true
      register: preview
"""

RETURN = r"""
mode:
  description: The requested mode.
  returned: always
  type: str
  sample: dual_stack
nodes:
  description: One entry per selected node, in registry order.
  returned: success or node failure
  type: list
  elements: dict
  contains:
    service_name:
      description: The node's service name.
      type: str
      sample: antnode3
    peer_id:
      description: The node's peer id.
      type: str
      sample: 12D3KooWD3bfmNbuuuVCYwkjnFt3ukm3qaB3hDED3peGVCEs1eVh
    version:
      description: The ant-node version antctl reports for the node (unchanged by this module).
      type: str
      sample: 0.4.6
    previous_mode:
      description: The mode the node ran before this call; null for a node that is not running.
      type: str
      sample: libp2p_only
    mode:
      description: The mode the node runs after this call (in check mode, the mode it would run).
      type: str
      sample: dual_stack
    result:
      description:
        - V(switched) (restarted in the requested mode and ready), V(unchanged) (already in it),
          V(would_switch) (check mode), V(failed), V(not_attempted) (left alone after another node failed),
          V(skipped) (not running, so its mode cannot be read or changed), V(not_ready) (a rollback restarted it
          in the earlier mode but it was not ready within O(ready_timeout); not a failure),
          V(reconfigured) / V(would_reconfigure) (a stopped node whose recorded mode a rollback rewrote without
          starting it).
      type: str
      sample: switched
    changed:
      description: Whether this node was restarted.
      type: bool
    seconds_to_ready:
      description: Seconds from the node's restart until it was ready.
      type: float
      sample: 3.2
    seconds_waited:
      description: For a node of a rollback that was not ready in time (V(not_ready)), the seconds waited for it.
      type: float
      sample: 60.2
    dropin:
      description: Path of the node's transport-mode drop-in.
      type: str
      sample: /etc/systemd/system/antnode3.service.d/ant-transport-mode.conf
    error:
      description: Why the node failed or was skipped; null otherwise.
      type: str
      sample: "not ready within 300 s: mode dual_stack, 2 connected peers (need more than 5)"
    note:
      description: >-
        Set when a rollback to V(libp2p_only) (O(allow_rollback=true)) switched a node whose mode could not be
        read; says why. Its RV(nodes[].previous_mode) is then the mode of its drop-in, or null.
      type: str
    restored:
      description: For a failed node, whether it was put back in its previous mode and is ready; null otherwise.
      type: bool
    restore_error:
      description: Why restoring a failed node did not work; null otherwise.
      type: str
switched:
  description: Service names of the nodes restarted in the requested mode (or that would be, in check mode).
  returned: success or node failure
  type: list
  elements: str
  sample: [antnode1, antnode2]
reconfigured:
  description:
    - Service names of the stopped nodes whose drop-in a rollback (O(allow_rollback=true)) set to the requested
      mode (systemd reloaded, the service not started); they stay stopped and start in that mode.
  returned: success or node failure
  type: list
  elements: str
beyond_target:
  description:
    - Service names of the selected nodes whose previous mode (RV(nodes[].previous_mode), for a stopped node the mode
      of its drop-in) is later than O(mode) - the nodes a rollback has to bring back, whatever happened to them
      in this call. A rollback needs no separate read of the fleet to know which hosts it affected.
  returned: success or node failure
  type: list
  elements: str
  sample: [antnode1, antnode2]
unchanged:
  description: Service names of the nodes that already ran the requested mode.
  returned: success or node failure
  type: list
  elements: str
not_switched:
  description: Service names of the nodes that should have changed and did not (failed, not attempted, skipped).
  returned: success or node failure
  type: list
  elements: str
not_ready:
  description:
    - The nodes a rollback restarted in the requested mode that were not ready within O(ready_timeout), with the
      seconds waited, the mode they run (null when unreadable) and what was last seen. Not a failure.
  returned: success or node failure
  type: list
  elements: dict
  sample: [{service_name: antnode7, seconds_waited: 60.1, mode: libp2p_only, error: "not ready within 60 s ..."}]
failed_nodes:
  description: The nodes that failed, each with its reason.
  returned: node failure
  type: list
  elements: dict
  sample: [{service_name: antnode2, error: "node stopped after the restart (antctl status: Stopped)"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.autonomi.network_migration.plugins.module_utils._common import (
    fail_from_error,
    node_argument_spec,
    reader_from_params,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import NodeError
from ansible_collections.autonomi.network_migration.plugins.module_utils._mode_switch import (
    ModeSwitcher,
    check_params,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODES, TransitionError


def argument_spec():
    spec = node_argument_spec()
    spec.update(
        mode=dict(type='str', required=True, choices=list(MODES)),
        allow_rollback=dict(type='bool', default=False),
        interval=dict(type='int', default=2000),
        batch_size=dict(type='int', default=0),
        ready_peers=dict(type='int', default=5),
        ready_timeout=dict(type='int', default=300),
        restore_on_failure=dict(type='bool', default=True),
        ignore_pause=dict(type='bool', default=False),
        ledger=dict(type='str', no_log=True),  # a PostgreSQL DSN may carry a password
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problems = check_params(module.params)
    if problems:
        module.fail_json(msg='; '.join(problems), changed=False)
    reader = reader_from_params(module.params)
    switcher = ModeSwitcher(module.params, reader, check_mode=module.check_mode)
    try:
        result = switcher.run()
    except (NodeError, TransitionError) as exc:
        fail_from_error(module, exc, changed=False, mode=module.params['mode'])
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    if result.get('failed'):
        result.pop('failed')
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
