"""The simulated fleet's inventory directory for integration tests that run playbooks or the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml


def sim_inventory_dir(sim, path, extra_vars=None):
    """The stack's generated inventory with the committed sim group_vars (short windows) beside it,
    pointed at this stack's Prometheus and control API (plus ``extra_vars``)."""
    root = Path(__file__).resolve().parents[2]
    (path / 'group_vars' / 'all').mkdir(parents=True)
    shutil.copy(sim.inventory, path / 'hosts.yml')
    for name in ('alerts.yml', 'rollout.yml'):
        shutil.copy(root / 'inventories' / 'sim' / 'group_vars' / 'all' / name, path / 'group_vars' / 'all' / name)
    (path / 'group_vars' / 'all' / 'sim.yml').write_text(yaml.safe_dump(dict({
        'migration_prometheus_url': sim.prometheus_url,
        'migration_sim_api_url': sim.api_url,
        'monitoring_rules_dir': str(sim.state_dir / 'prometheus' / 'rules'),
    }, **(extra_vars or {}))))
    return path
