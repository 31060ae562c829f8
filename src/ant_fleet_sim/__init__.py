"""The fleet simulator (docs/simulator.md).

Its controller-side modules (the daemon's model, metrics, faults) import the collection's
module_utils; Ansible's collection finder is set up the first time they do
(ant_network_migration_common.collection), as for the tools. The host commands (antctl, systemctl),
run once per module call and over SSH by the system Python from a copy of this package alone,
import no collection code and pay nothing for it.
"""

import importlib.util

# Ansible's collection finder only where Ansible is (the controller's virtualenv). A process of a host runs
# its system Python without Ansible: a host command over SSH (a copy of this package alone, no collection
# code there), or a node process of tests/realsystemd's container, which imports the collection's
# module_utils as plain packages from its Python path (the repository's collections/), as a module's
# AnsiballZ payload does. The finder would make that import fail there ("No module named 'ansible'").
if importlib.util.find_spec('ansible') is not None:
    try:
        from ant_network_migration_common import collection
    except ImportError:
        pass
    else:
        collection.install_on_first_import()
