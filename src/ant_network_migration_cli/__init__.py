# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The operator CLI, ``ant-network-migration`` (docs/cli.md).

It imports the collection's controller code, which it finds through Ansible's collection loader in
the configured collections paths (ant_network_migration_common.collection), as ansible-playbook
does. Importing this package is starting the command (the console script imports it first): without
the collection it stops with one line saying how to install it, exit code 2, no traceback.
"""

import sys

from ant_network_migration_common import collection

try:
    collection.install()
except collection.CollectionNotFound as exc:
    sys.stderr.write(f'Error: {exc}\n')
    raise SystemExit(2) from None
