"""tests/security: one test (or more) for each numbered case of issue 22.

Every test here is marked ``security`` (``pytest -m security``). The cases and where they are tested:
1 secrets in output: test_redaction.py (the rules), test_secrets_in_outputs.py (a run with a PostgreSQL DSN and
  Alertmanager receivers: every output, file and ledger row); 3 variables: test_trust_rule.py; 6 files:
  test_ledger_files.py; 7 a mistyped ledger path: test_missing_ledger.py; 8 host-side errors over SSH:
  test_host_check_ssh.py. The tools' cases (4 plan files, 5 dashboard clients, CLI output) live here too, in
  their own files, with the fixtures below (a seeded ledger, a static inventory of its hosts, the CLI through
  click's runner); the EDA listener's (2) in tests/integration/test_alert_event_source.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from click.testing import CliRunner  # noqa: E402
from security_helpers import HOSTS, inventory_text  # noqa: E402

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib  # noqa: E402
from ant_network_migration_dashboard import testing  # noqa: E402


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(pytest.mark.security)


@pytest.fixture(scope='module')
def postgres():
    """A throw-away PostgreSQL server for the module (tests/unit/ledger/ledger_pg_server.py)."""
    sys.path.insert(0, str(HERE.parent / 'unit' / 'ledger'))
    from ledger_pg_server import started_or_skipped

    with started_or_skipped() as server:
        yield server


@pytest.fixture
def no_init(monkeypatch):
    """The environment as an operator's: a ledger is created only when a run says so (tests/conftest.py
    allows it for the rest of the suite)."""
    monkeypatch.delenv('ANT_MIGRATION_LEDGER_INIT', raising=False)
    return {k: v for k, v in os.environ.items() if k != 'ANT_MIGRATION_LEDGER_INIT'}


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
