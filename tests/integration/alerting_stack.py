# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared by the alerting tests (test_alert_*.py): tools, environment, an inventory for a SimStack."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / '.venv' / 'bin'
# ansible-rulebook has its own virtualenv (scripts/setup.sh: it pins websockets below the dashboard's).
RULEBOOK_BIN = ROOT / '.venv-eda' / 'bin' / 'ansible-rulebook'


def require(tool, path=None):
    """The tool's path; a missing tool skips the test, or fails it under CI (setup must install it)."""
    found = str(path) if path and Path(path).exists() else shutil.which(tool)
    if found is None:
        if os.environ.get('CI') == 'true':
            pytest.fail('%s is not installed (scripts/setup.sh installs it)' % tool)
        pytest.skip('%s is not installed (run make setup)' % tool)
    return found


def ansible_env(ledger):
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANT_MIGRATION_LEDGER=str(ledger), ANSIBLE_FORCE_COLOR='0',
               PATH='%s:%s' % (Path(sys.executable).parent, env.get('PATH', '')))
    for name in [n for n in env if n.startswith('MIGRATION_PROMETHEUS_')]:
        del env[name]
    return env


def inventory_dir(stack, directory, extra):
    """The stack's hosts with the committed simulated group_vars, plus this test's settings."""
    inv = Path(directory) / 'inventory'
    (inv / 'group_vars' / 'all').mkdir(parents=True)
    shutil.copy(stack.inventory, inv / 'hosts.yml')
    for path in (ROOT / 'inventories' / 'sim' / 'group_vars' / 'all').glob('*.yml'):
        shutil.copy(path, inv / 'group_vars' / 'all' / path.name)
    base = {'migration_prometheus_url': stack.prometheus_url, 'migration_sim_api_url': stack.api_url,
            'monitoring_rules_dir': str(stack.state.prometheus_dir / 'rules')}
    if stack.alertmanager_url:
        base.update(monitoring_alertmanager_config_path=str(stack.alertmanager_config_path),
                    monitoring_alertmanager_url=stack.alertmanager_url)
    base.update(extra)
    (inv / 'group_vars' / 'all' / 'zz_test.yml').write_text(yaml.safe_dump(base, sort_keys=False))
    return inv


def playbook(inv, name, ledger, *args, timeout=300):
    return subprocess.run([str(BIN / 'ansible-playbook'), '-i', str(inv), str(ROOT / 'playbooks' / name), *args],
                          cwd=str(ROOT), env=ansible_env(ledger), capture_output=True, text=True, timeout=timeout)


def record_rehearsal(ledger, **data):
    """A passed rollback rehearsal in ``ledger`` (the event ``ant-network-migration rehearse`` records, as
    tests/integration/test_rehearsal.py checks it does, with ``--under-load``), so the preflight's rollback_tested
    and load_tested items have one."""
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import rehearsal

    result = dict({'passed': True, 'measured_seconds': 9.0, 'projected_seconds': 8.6, 'sla_seconds': 300.0,
                   'shape': {'hosts': 4, 'nodes_per_host': 2, 'mode': 'dual_stack', 'source': 'ledger'},
                   'simulated_hosts': 4, 'operator': 'test', 'method': rehearsal.METHOD_MEASURED,
                   'message': 'the rehearsed fast rollback took 9 s, within the 300 s SLA',
                   'load': {'passed': True, 'scrape_interval': 2.0, 'client_read_rate': 300.0, 'targets': 8,
                            'targets_up_after': 8, 'reads_total': 2700.0, 'reads_failed': 0.0, 'max_read_loss': 0.01,
                            'message': 'under load (scrapes every 2s, 300 client reads/s): 0.00 % of the reads '
                                       'failed during the rollback (allowed 1.00 %), every node scraped again'}},
                  **data)
    handle = ledger_lib.open_ledger(str(ledger), create=True)
    try:
        return rehearsal.record(handle, result)
    finally:
        handle.close()
