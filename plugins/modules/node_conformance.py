#!/usr/bin/python
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: node_conformance
short_description: Check one host against the node interface the collection relies on
version_added: 0.2.0
description:
  - For a person building a dual-stack ant-node or preparing a host. Checks every item of the collection's
    C(docs/node-interface.md) on the host and reports each as V(present), V(missing), V(wrong), V(absent_ok) or
    V(unverified), with how it was verified (RV(items[].verified_by)); an item that nothing on the host could show
    is V(unverified), never V(present).
  - "Items: C(antctl status --json) and the node fields it must carry; every node's metrics server (C(metrics_port),
    the C(antctl add --enable-metrics-server) prerequisite); the systemd units of the services under O(unit_dir);
    the transport-mode drop-ins, each belonging to its node (none orphaned by C(antctl remove) / C(reset), none
    inherited by a node added later under the same name); that a node runs the mode C(ANT_TRANSPORT_MODE) sets;
    the exposition format (OpenMetrics or the classic text format, both parsed); each contract metric of every
    running node, with its name, type and labels, on C(/metrics) or C(/metadata) (a family declared with no sample,
    as prometheus-client 0.23.1 serves an untouched labelled family, is present with zero; iroh's C(socket_) or
    older C(magicsock_) prefix); and that readiness counts the peers of every transport the node runs."
  - Nodes antctl keeps as C(Removed) (no unit file, no process) are skipped and listed in RV(skipped_nodes).
  - Fails when a required item is missing or wrong, naming it. Changes nothing; RV(report) is the per-item list to
    print.
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
  fail_on_optional:
    description:
      - Fail also when an optional item (one the collection can do without) is missing or wrong.
    type: bool
    default: false
notes:
  - "Privileges: reading C(antctl status --json) may need root (the node registry is root's on a system install);
    reading drop-ins and metrics does not. Run it with C(become) like the other node tasks."
seealso:
  - module: autonomi.network_migration.transport_info
"""

EXAMPLES = r"""
- name: Check one host against the node interface
  autonomi.network_migration.node_conformance:
  become: true
  register: conformance
"""

RETURN = r"""
items:
  description: One entry per checked item.
  returned: always
  type: list
  elements: dict
  contains:
    item:
      description: The item, e.g. C(metric libp2p_kad_query_result_get_closest_peers_ok) or C(antctl status --json).
      type: str
    kind:
      description: V(antctl), V(systemd) or V(metric).
      type: str
    required:
      description: Whether the collection needs it.
      type: bool
    status:
      description:
        - V(present), V(missing), V(wrong), V(absent_ok) (a counter that appears with its first event) or
          V(unverified) (nothing on the host could show it yet, for example no node has C(ANT_TRANSPORT_MODE) set, or
          no node runs iroh; RV(items[].detail) says why). V(unverified) does not fail the check.
      type: str
    detail:
      description: What was found, and for V(missing) / V(wrong) what is expected.
      type: str
    verified_by:
      description: How the item was verified (what was run or read).
      type: str
summary:
  description: How many items have each status.
  returned: always
  type: dict
  sample: {present: 24, missing: 0, wrong: 0, absent_ok: 2, unverified: 2}
failed_items:
  description: The items that make the check fail.
  returned: always
  type: list
  elements: str
skipped_nodes:
  description: The registry entries that were not checked (C(Removed) nodes), each with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{service_name: antnode3, status: Removed, reason: "Removed in antctl status: no unit, no process"}]
stale_dropins:
  description:
    - Transport-mode drop-ins that do not belong to their node, V(orphaned) (no node, a C(Removed) node or no unit
      file) or V(inherited) (written for another node under the same name), with path, mode and reason.
      C(playbooks/reconcile.yml -e remove_stale_dropins=true) removes them.
  returned: always
  type: list
  elements: dict
report:
  description: One line per item (status, item, detail, how it was verified) and per skipped node, to print.
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
from ansible_collections.autonomi.network_migration.plugins.module_utils._conformance import Conformance
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import NodeError


def main():
    spec = node_argument_spec()
    spec.update(fail_on_optional=dict(type='bool', default=False))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    try:
        result = Conformance(reader_from_params(module.params)).run(module.params['fail_on_optional'])
    except NodeError as exc:
        fail_from_error(module, exc, changed=False)
    if result['failed_items']:
        details = [f"{i['item']}: {i['status']} ({i['detail']})" for i in result['items']
                   if i['item'] in result['failed_items']]
        module.fail_json(msg=f"{len(details)} item(s) of the node interface missing or wrong: " + '; '.join(details),
                         **result)
    summary = ('the host meets the node interface ({present} present, {absent_ok} not yet served, '
               '{unverified} not verifiable yet, {missing} missing, {wrong} wrong)').format(**result['summary'])
    module.exit_json(msg=summary, **result)


if __name__ == '__main__':
    main()
