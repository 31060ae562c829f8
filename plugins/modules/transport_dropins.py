#!/usr/bin/python
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: transport_dropins
short_description: Find, and on request remove, transport-mode drop-ins that outlived their node
version_added: 0.3.0
description:
  - antctl's service manager writes and deletes only C(<service>.service); the collection's drop-in
    C(<service>.service.d/ant-transport-mode.conf) survives C(antctl remove) and C(antctl reset), and the next
    C(antctl add) names its nodes C(antnode1), C(antnode2)... again, so a new node starts in the old node's mode,
    possibly V(iroh_only).
  - Lists every drop-in of the host that does not belong to its node, V(orphaned) (no node of C(antctl status) has
    the service, its node is C(Removed), or its unit file is gone) or V(inherited) (written for another node; the
    drop-in names another peer id, or the node was added and never ran).
  - With O(remove=true) removes them (and their C(.service.d) directory when empty) and runs
    C(systemctl daemon-reload) once. A running node keeps the mode it started with until its next restart;
    RV(still_running) lists those nodes.
author:
  - Autonomi network operations (@autonomi)
extends_documentation_fragment:
  - autonomi.network_migration._node
  - autonomi.network_migration._attributes
  - autonomi.network_migration._attributes.IDEMPOTENT
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: One diff per drop-in that is (or would be) removed, showing the file before and after.
  idempotent:
    support: full
options:
  remove:
    description:
      - Remove the drop-ins found. V(false) only reports them.
    type: bool
    default: false
notes:
  - O(nodes) does not apply; every drop-in under O(unit_dir) is checked against every node antctl knows.
  - "Privileges: removing a drop-in and C(systemctl daemon-reload) need root (C(become)); reading them does not."
seealso:
  - module: autonomi.network_migration.transport_info
  - module: autonomi.network_migration.node_conformance
"""

EXAMPLES = r"""
- name: Report drop-ins left by antctl remove / reset
  autonomi.network_migration.transport_dropins:
    antctl_path: "{{ ant_antctl_path | default(omit) }}"
  register: stale

- name: Remove them (reconcile.yml does this with -e remove_stale_dropins=true)
  autonomi.network_migration.transport_dropins:
    remove: true
  become: true
"""

RETURN = r"""
stale_dropins:
  description: The drop-ins that do not belong to their node (as the module transport_info returns them).
  returned: always
  type: list
  elements: dict
removed:
  description: Service names whose drop-in was removed (in check mode, would be).
  returned: always
  type: list
  elements: str
still_running:
  description: >-
    Service names of running nodes whose inherited drop-in was removed: they keep the mode they started with until
    their next restart.
  returned: always
  type: list
  elements: str
failed:
  description: Set when a drop-in could not be removed; RV(errors) says why.
  returned: on failure
  type: bool
errors:
  description: Service name to the reason its drop-in could not be removed.
  returned: on failure
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.autonomi.network_migration.plugins.module_utils._antctl import STATUS_RUNNING
from ansible_collections.autonomi.network_migration.plugins.module_utils._common import (
    fail_from_error,
    node_argument_spec,
    reader_from_params,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._dropins import audit, describe, remove
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import NodeError


def main():
    spec = node_argument_spec()
    spec.update(remove=dict(type='bool', default=False))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    reader = reader_from_params(module.params)
    try:
        stale = audit(reader.registry(), reader.systemd)
        texts = {f['service_name']: reader.systemd.read_dropin(f['service_name']) for f in stale}
        removed, errors = [], {}
        if module.params['remove'] and stale:
            removed, errors = remove(stale, reader.systemd, check_mode=module.check_mode)
    except NodeError as exc:
        fail_from_error(module, exc, changed=False)
    still_running = [f['service_name'] for f in stale if f['service_name'] in removed
                     and f['node_status'] == STATUS_RUNNING]
    result = {'changed': bool(removed), 'stale_dropins': stale, 'removed': removed, 'still_running': still_running}
    if module._diff:
        result['diff'] = [{'before_header': f['path'], 'after_header': f['path'],
                           'before': texts[f['service_name']] or '', 'after': ''}
                          for f in stale if f['service_name'] in removed]
    verb = 'would remove' if module.check_mode else 'removed'
    if errors:
        reasons = '; '.join(f'{service}: {error}' for service, error in errors.items())
        module.fail_json(msg=f'could not remove every stale drop-in: {reasons}', errors=errors, **result)
    if removed:
        msg = f"{verb} {len(removed)} stale drop-in(s): {', '.join(removed)}"
        if still_running:
            msg += (f"; {', '.join(still_running)} keep the mode they started with until their next restart "
                    '(roll them back with transport_mode, or restart them)')
    elif stale:
        msg = f'{len(stale)} stale drop-in(s), left alone (remove=false): ' + '; '.join(describe(stale))
    else:
        msg = 'every transport-mode drop-in belongs to its node'
    module.exit_json(msg=msg, **result)


if __name__ == '__main__':
    main()
