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
