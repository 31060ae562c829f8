# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Finding the installed collection through Ansible's own collection loader.

The tools import the collection's controller code as
``ansible_collections.autonomi.network_migration.plugins.<...>``, and they find it as
``ansible-playbook`` does: Ansible's collection finder (``init_plugin_loader``) over the configured
collections paths - ``ANSIBLE_COLLECTIONS_PATH``, else ``collections_path`` in the active ansible.cfg,
else ``~/.ansible/collections:/usr/share/ansible/collections``, plus the ``ansible_collections``
directories on ``sys.path`` (Ansible's ``COLLECTIONS_SCAN_SYS_PATH``). No ``.pth`` file, no ``sys.path``
entry: a collection installed with ``ansible-galaxy collection install`` is the one the tools use,
and the one the playbooks they start use.

Only the standard library is imported here at module level: Ansible's plugin loader costs about
0.3 s to import, and a process that never imports the collection (the simulator's antctl stand-in,
run once per module call) must not pay for it.
"""

from __future__ import annotations

import sys
from pathlib import Path

NAMESPACE = 'autonomi'
NAME = 'network_migration'
PACKAGE = f'ansible_collections.{NAMESPACE}.{NAME}'


class CollectionNotFound(ImportError):
    """The collection is in none of the collections paths; the message says how to install it."""


def _finder_config():
    """Ansible's collection finder on ``sys.meta_path`` (set up once per process: a process that already
    has one, ansible-playbook's or a test's, keeps it); returns its configuration."""
    _remove_hook()
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is None:
        from ansible.plugins.loader import init_plugin_loader

        init_plugin_loader()
    return AnsibleCollectionConfig


def _configured_paths():
    from ansible import constants as C

    return list(C.COLLECTIONS_PATHS)


def root():
    """The collection's directory as Ansible's collection finder resolves it (the first collections path
    holding it, as for ansible-playbook). Sets the finder up when needed. Raises CollectionNotFound."""
    config = _finder_config()
    for base in config.collection_paths:
        candidate = Path(base) / 'ansible_collections' / NAMESPACE / NAME
        if (candidate / 'plugins').is_dir():
            return candidate.resolve()
    searched = ', '.join(_configured_paths()) or '(none configured)'
    raise CollectionNotFound(
        f'cannot find the Ansible collection {NAMESPACE}.{NAME} in the collections paths ({searched}, and '
        f'ansible_collections directories on the Python path): install the collection into a collections path: '
        f'`ansible-galaxy collection install {NAMESPACE}-{NAME}-<version>.tar.gz` (default ~/.ansible/collections), '
        f'or `-p DIR` and set ANSIBLE_COLLECTIONS_PATH=DIR or collections_path in ansible.cfg')


def install():
    """Make ``import ansible_collections.autonomi.network_migration...`` work in this process; returns
    the collection's directory. Raises CollectionNotFound."""
    return root()


class _InstallOnFirstImport:
    """Sets Ansible's collection finder up the first time anything imports ``ansible_collections``.

    A meta path finder needs only ``find_spec`` (importlib.abc.MetaPathFinder would cost every process that
    imports this module 25 ms of importlib.resources: the simulator's antctl and systemctl, once per call)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != 'ansible_collections':
            return None
        root()
        from ansible.utils.collection_loader import AnsibleCollectionConfig

        return AnsibleCollectionConfig.collection_finder.find_spec(fullname, path, target)


_HOOK = _InstallOnFirstImport()


def _remove_hook():
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def install_on_first_import():
    """Like install(), but deferred to the first import of ``ansible_collections`` (cheap until then)."""
    if 'ansible_collections' in sys.modules or _HOOK in sys.meta_path:
        return
    sys.meta_path.insert(0, _HOOK)
