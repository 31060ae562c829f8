# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Drop-ins that no longer belong to their node: find them, and remove them when asked.

antctl's service manager writes and deletes only ``<service>.service`` (maidsafe/autonomi
``ant-service-management/src/control.rs`` install / uninstall through the ``service-manager``
crate): ``antctl remove`` uninstalls the unit and keeps the node in the registry as ``Removed``;
``antctl reset`` removes every service and the registry, and the next ``antctl add`` names its
nodes ``antnode{registry length + 1}`` again (``ant-node-manager/src/add_services/mod.rs``), so a new
``antnode1`` meets the old ``antnode1``'s ``ant-transport-mode.conf`` and starts in the old mode.

A drop-in names the node it was written for (``_systemd.dropin_text``). Findings:

- ``orphaned``: no node of the registry has the service, or its node is ``Removed``, or its unit file is
  gone: nothing runs it any more, and a node added later under that name would inherit it;
- ``inherited``: the service exists but the drop-in was written for another node: the recorded peer id
  differs from the node's, or the node never ran (status ``Added``) - a node that never ran cannot be
  the one a drop-in was written for, whether the drop-in names a node or predates naming them.

Standard library only: runs on fleet hosts.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.module_utils._antctl import STATUS_ADDED, STATUS_REMOVED
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import CommandError
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import TRANSPORT_MODE_ENV
from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import dropin_owner, parse_environment

ORPHANED = 'orphaned'
INHERITED = 'inherited'
# What an operator runs to remove them (reconcile.yml's explicit option).
REMOVE_HINT = 'remove them with: ansible-playbook playbooks/reconcile.yml -e remove_stale_dropins=true'


def _finding(systemd, service, kind, reason, node, text):
    owner = dropin_owner(text)
    return {
        'service_name': service, 'kind': kind, 'reason': reason, 'path': systemd.dropin_path(service),
        'mode': parse_environment(text or '').get(TRANSPORT_MODE_ENV),
        'written_for': owner[1] if owner else None,
        'node_status': node['status'] if node else None, 'peer_id': node['peer_id'] if node else None,
    }


def audit(nodes, systemd):
    """The drop-ins under ``systemd.unit_dir`` that do not belong to a node of ``nodes`` (every node of
    ``antctl status --json``, ``Removed`` ones included), in service-name order."""
    by_name = {n['service_name']: n for n in nodes}
    findings = []
    for service in systemd.dropin_services():
        text = systemd.read_dropin(service)
        node = by_name.get(service)
        owner = dropin_owner(text)
        written_for = owner[1] if owner else None
        if node is None:
            reason = 'no node of antctl status has this service (antctl reset, or the node was deleted)'
            findings.append(_finding(systemd, service, ORPHANED, reason, None, text))
        elif node['status'] == STATUS_REMOVED:
            reason = 'its node is Removed in antctl status (antctl remove uninstalls the unit, not the drop-in)'
            findings.append(_finding(systemd, service, ORPHANED, reason, node, text))
        elif not systemd.has_unit(service):
            reason = f'there is no unit file {service}.service in {systemd.unit_dir}'
            findings.append(_finding(systemd, service, ORPHANED, reason, node, text))
        elif node['status'] == STATUS_ADDED:
            what = f'written for {written_for}' if written_for else (
                'written for a node before it' if owner else 'written before drop-ins named their node')
            reason = f'{service} was added and never ran, yet has a transport-mode drop-in ({what})'
            findings.append(_finding(systemd, service, INHERITED, reason, node, text))
        elif written_for and node['peer_id'] and written_for != node['peer_id']:
            reason = f"written for the node {written_for}; {service} is now the node {node['peer_id']}"
            findings.append(_finding(systemd, service, INHERITED, reason, node, text))
    return findings


def describe(findings):
    """One line per finding, for warnings and reports."""
    return [f"{f['service_name']}: {f['kind']} drop-in {f['path']} (ANT_TRANSPORT_MODE={f['mode']}): {f['reason']}"
            for f in findings]


def remove(findings, systemd, check_mode=False):
    """Remove the drop-ins of ``findings`` and reload systemd once. Returns (removed services, {service: error}).

    A running node keeps the mode it started with until its next restart; the caller says so.
    """
    removed, errors = [], {}
    for finding in findings:
        service = finding['service_name']
        if check_mode:
            removed.append(service)
            continue
        try:
            systemd.remove_dropin(service)
            removed.append(service)
        except CommandError as exc:
            errors[service] = str(exc)
    if removed and not check_mode:
        try:
            systemd.daemon_reload()
        except CommandError as exc:
            for service in removed:
                errors[service] = f'removed, but systemd did not reload: {exc}'
    return removed, errors
