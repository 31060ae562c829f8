# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options of every node-side module; the argument spec is
    # module_utils._common.node_argument_spec().
    DOCUMENTATION = r"""
options:
  nodes:
    description:
      - The node services of the host to act on, each given by its service name (V(antnode3)) or its
        peer id (V(12D3KooW...)), as C(antctl status --json) reports them.
      - An empty list selects every node of the host that is not C(Removed).
      - A name or peer id that matches no node of the host is an error, so that a typo never selects nothing.
    type: list
    elements: str
    default: []
  antctl_path:
    description:
      - Path of the C(antctl) executable on the host.
      - The simulated fleet's inventory sets the host variable C(ant_antctl_path); pass it with
        O(antctl_path) or with C(module_defaults) for the action group C(group/autonomi.network_migration.node).
    type: path
    default: /usr/local/bin/antctl
  antctl_env:
    description:
      - Environment variables added to the environment of every C(antctl) call.
    type: dict
    default: {}
  antctl_timeout:
    description:
      - Seconds after which one C(antctl) call is killed and reported as failed.
    type: int
    default: 600
  metrics_host:
    description:
      - Address on which the nodes serve their Prometheus metrics, each on its own C(metrics_port).
    type: str
    default: 127.0.0.1
  metrics_timeout:
    description:
      - Seconds to wait for one node's metrics page.
    type: float
    default: 5.0
  unit_dir:
    description:
      - Directory of the systemd units of the node services (antctl installs them there). The transport mode of
        a service is kept in its drop-in C(<unit_dir>/<service>.service.d/ant-transport-mode.conf).
      - Use C(~/.config/systemd/user) of the service user for services antctl installed in user mode.
      - The simulated fleet's inventory sets the host variable C(ant_systemd_unit_dir).
    type: path
    default: /etc/systemd/system
  systemctl_path:
    description:
      - The C(systemctl) command of the host (a name looked up in E(PATH), or a path).
      - The simulated fleet's inventory sets the host variable C(ant_systemctl_path) (its stand-in).
    type: str
    default: systemctl
notes:
  - The module talks to the host only through C(antctl), C(systemctl), the drop-ins under O(unit_dir) and the
    node metrics endpoints
    described in the collection's C(docs/node-interface.md).
requirements:
  - C(antctl) on the host, and nodes that serve the dual-stack metrics of C(docs/node-interface.md).
"""
