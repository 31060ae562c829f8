# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the operator CLI and the dashboard share, below both of them (neither imports the other's
internals through it; the CLI imports the dashboard service, the dashboard never imports the CLI):

- ``collection``: finding the installed collection through Ansible's collection loader;
- ``figures``: the Prometheus figures of the migration (the monitoring role's recording rules), the
  numbers shown (the verdicts are the collection's: plugins/plugin_utils/services/health.py);
- ``ledger_status``: what the ledger says about the migration (``status`` shows it, the dashboard
  serves it), from the collection's status use case (plugins/plugin_utils/services/control.py).

Importing this package sets Ansible's collection finder up for the first import of
``ansible_collections`` (``collection.install_on_first_import``), so its modules, and the packages
that import it, import the collection's code at module level.
"""

from . import collection

collection.install_on_first_import()
