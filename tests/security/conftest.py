"""Fixtures of the trust-boundary tests (issue 22, the tools' share): a seeded ledger, a static
inventory of its hosts, the CLI through click's runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from security_helpers import HOSTS, inventory_text

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ant_network_migration_dashboard import testing


@pytest.fixture
def ledger_path(tmp_path):
    """A ledger knowing 4 hosts x 3 nodes (one migrated) and a passed canary."""
    path = tmp_path / 'ledger.sqlite3'
    testing.fill_ledger(path, hosts=len(HOSTS), nodes_per_host=3, migrated_hosts=1)
    with ledger_lib.open_ledger(str(path)) as handle:
        handle.set_canary_verdict('passed', hosts=[HOSTS[0]])
    return path


@pytest.fixture
def inventory_path(tmp_path):
    path = tmp_path / 'hosts.yml'
    path.write_text(inventory_text())
    return path


@pytest.fixture
def invoke():
    """The CLI in this process (click's runner); exceptions propagate, so a traceback fails the test."""
    from ant_network_migration_cli.main import cli

    runner = CliRunner(env={'COLUMNS': '200', 'ANT_MIGRATION_LEDGER': None, 'MIGRATION_PROMETHEUS_URL': None,
                            'ANT_MIGRATION_INVENTORY': None})

    def run(*args, **kwargs):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return run
