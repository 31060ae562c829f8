"""Load the collection's plugins through ansible-core's own collection loader, as ansible-playbook does.

tests/conftest.py puts ./collections on sys.path, so by the time these tests run
``ansible_collections`` is usually imported as a plain namespace package, which the plugin loader
refuses ("collection metadata was not loaded"). For the tests that load the callback by its FQCN
this fixture sets ansible-core's collection finder up on clean ``ansible_collections`` modules and
puts everything back afterwards, so other tests keep the module objects they imported.
"""

from __future__ import annotations

import sys

import pytest
from ansible import constants as C
from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig


def _collection_modules():
    return {name: mod for name, mod in sys.modules.items()
            if name == 'ansible_collections' or name.startswith('ansible_collections.')}


@pytest.fixture(scope='module')
def plugin_loader():
    saved = _collection_modules()
    finder_before = AnsibleCollectionConfig.collection_finder
    if finder_before is None:
        for name in saved:
            del sys.modules[name]
        init_plugin_loader(C.COLLECTIONS_PATHS)
    yield
    if finder_before is None:
        finder = AnsibleCollectionConfig.collection_finder
        if finder is not None:
            finder._remove()  # pylint: disable=protected-access
            AnsibleCollectionConfig._collection_finder = None  # pylint: disable=protected-access
        for name in _collection_modules():
            del sys.modules[name]
        sys.modules.update(saved)
