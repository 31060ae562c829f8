"""Shared pytest set-up: make the collection importable as autonomi.network_migration."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = ROOT / "collections"

if not (COLLECTIONS / "ansible_collections" / "autonomi" / "network_migration").exists():
    raise RuntimeError("collections/ansible_collections/autonomi/network_migration is missing: run `make setup` first")
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

# Every ansible-playbook a test starts uses the checkout's configuration.
os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))

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
