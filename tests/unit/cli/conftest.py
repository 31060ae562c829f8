"""Fixtures for the CLI unit tests: a seeded SQLite ledger, a static inventory, a CLI runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_mod
from ant_fleet_sim.model import make_peer_id  # real peer ids: close groups need keys that decode

HOSTS = [f'sim-host-{i:02d}' for i in range(1, 7)]
NODES_PER_HOST = 3


@pytest.fixture
def ledger_path(tmp_path):
    """A ledger knowing 6 hosts x 3 nodes: sim-host-01 dual_stack_stable, the rest libp2p_only."""
    path = tmp_path / 'ledger.sqlite3'
    with ledger_mod.open_ledger(str(path)) as handle:
        items = []
        for host in HOSTS:
            for n in range(1, NODES_PER_HOST + 1):
                state = 'dual_stack_stable' if host == 'sim-host-01' else 'libp2p_only'
                items.append({'host': host, 'service_name': f'antnode{n}', 'peer_id': make_peer_id(1, host, n),
                              'to_state': state})
        handle.record_transitions(items)
        handle.record_event('gate_verdict', verdict='pass', rule='high_error_rate_iroh', value=0.01, threshold=0.05)
        handle.set_canary_verdict('passed', hosts=['sim-host-01'])
    return path


@pytest.fixture
def inventory_path(tmp_path):
    path = tmp_path / 'hosts.yml'
    lines = ['all:', '  children:', '    fleet:', '      hosts:']
    lines += [f'        {host}:' for host in HOSTS]
    lines += ['      vars:', '        ansible_connection: local',
              '        migration_alert_overrides:',
              '          high_error_rate_iroh: {cooldown: 1m}',
              '          network_partition_risk: {for: 10s}',
              '    holdouts:', '      hosts:',
              f'        {HOSTS[-1]}:']
    path.write_text('\n'.join(lines) + '\n')
    return path


@pytest.fixture
def cli_runner():
    return CliRunner(env={'COLUMNS': '200', 'ANT_MIGRATION_LEDGER': None, 'MIGRATION_PROMETHEUS_URL': None})


@pytest.fixture
def invoke(cli_runner, ledger_path):
    from ant_network_migration_cli.main import cli

    def run(*args, ledger=True, **kwargs):
        argv = (['--ledger', str(ledger_path)] if ledger else []) + [str(a) for a in args]
        return cli_runner.invoke(cli, argv, catch_exceptions=False, **kwargs)

    return run
