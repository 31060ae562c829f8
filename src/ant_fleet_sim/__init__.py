"""The fleet simulator (docs/simulator.md).

Its controller-side modules (the daemon's model, metrics, faults) import the collection's
module_utils; Ansible's collection finder is set up the first time they do
(ant_network_migration_common.collection), as for the tools. The host commands (antctl, systemctl),
run once per module call and over SSH by the system Python from a copy of this package alone,
import no collection code and pay nothing for it.
"""

try:
    from ant_network_migration_common import collection
except ImportError:   # a host command under the system Python (the SSH fleet): no collection code there
    pass
else:
    collection.install_on_first_import()
