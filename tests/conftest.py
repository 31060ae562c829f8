"""Shared pytest set-up: the collection imported as autonomi.network_migration through Ansible's own
collection loader, from ./collections (the checkout linked there by `make setup`), as ansible-playbook
finds it - no sys.path entry, no .pth file.

Every process of the suite gets it the same way: this file runs in each pytest-xdist worker; the
subprocesses a test starts (ansible-playbook, the CLI, the simulator, the dashboard) inherit
ANSIBLE_CONFIG, whose collections_path is ./collections, and set Ansible's finder up themselves
(ant_network_migration_common.collection).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = ROOT / "collections"

if not (COLLECTIONS / "ansible_collections" / "autonomi" / "network_migration").exists():
    raise RuntimeError("collections/ansible_collections/autonomi/network_migration is missing: run `make setup` first")

# A production wave needs a fresh passed preflight (docs/preflight.md) or a recorded waiver. The tests that
# are not about the preflight run waves on stacks without an Alertmanager: each of their rollouts records this
# waiver in its ledger (a preflight_waived event); tests/integration/test_preflight*.py unset it.
os.environ.setdefault("ANT_MIGRATION_PREFLIGHT_WAIVER",
                      "automated test - the preflight has its own tests (tests/integration/test_preflight.py)")

# Every ansible-playbook a test starts uses the checkout's configuration (read by ansible.constants
# below, so it is set first).
os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
# A ledger is created only when a run says so (docs/ledger.md, "A new ledger"). The suite's fleets and
# ledgers are fresh, in each test's own directory: the tests and the playbooks they start may create
# them. tests/security/ removes this to check that a location without a ledger is refused.
os.environ.setdefault("ANT_MIGRATION_LEDGER_INIT", "true")

from ansible.plugins.loader import init_plugin_loader  # noqa: E402
from ansible.utils.collection_loader import AnsibleCollectionConfig  # noqa: E402

if AnsibleCollectionConfig.collection_finder is None:
    init_plugin_loader([str(COLLECTIONS)])

# The files that take longest (measured: `pytest --durations`), longest first. pytest runs them
# first, each file's tests in their own order, then every other file in collection order. Under
# `make test` (pytest-xdist, --dist loadfile --no-loadscope-reorder) a worker takes a whole file at a
# time in this order: the long ones start at once and the many short files fill in around them,
# instead of a long file starting last on one worker while the other has nothing left to do.
SLOW_FIRST = (
    'tests/scenarios/test_rollout_and_rollback.py',
    'tests/scenarios/test_safety_gates.py',
    'tests/integration/test_safety_inputs.py',
    'tests/scenarios/test_ssh_fleet.py',
    'tests/scenarios/test_production_scenarios.py',
    'tests/integration/test_awx_slicing.py',
    'tests/integration/test_modules.py',
    'tests/integration/test_alert_eda.py',
    'tests/integration/test_alert_routing.py',
    'tests/integration/test_dashboard_browser.py',
    'tests/integration/test_cli.py',
)


def pytest_collection_modifyitems(items):
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}

    def key(item):
        path = Path(str(item.fspath)).resolve().relative_to(ROOT).as_posix()
        return rank.get(path, len(SLOW_FIRST))

    items.sort(key=key)   # stable: each file's tests and the other files keep their order
