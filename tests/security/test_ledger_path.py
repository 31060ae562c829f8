"""A ledger location that does not exist is refused by every command but `init` (issue 22, finding 7:
a typo made `pause` create a new, empty ledger and say "paused" while the real one was not)."""

from __future__ import annotations

import pytest

from ant_network_migration_cli import errors, runs

pytestmark = pytest.mark.security

COMMANDS = {
    'status': ['status'],
    'status --json': ['status', '--json'],
    'start --dry-run': ['start', '--plan', '{plan}', '--dry-run'],
    'start': ['start', '--plan', '{plan}'],
    'pause': ['pause', '--reason', 'maintenance'],
    'resume': ['resume'],
    'resume --ack': ['resume', '--ack'],
    'rollback': ['rollback', '--yes'],
    'unlock': ['unlock', '--reason', 'gone', '--yes'],
    'health': ['--prometheus-url', 'http://127.0.0.1:9', 'health'],
    'health --check-nodes': ['--prometheus-url', 'http://127.0.0.1:9', 'health', '--check-nodes'],
    'metrics': ['--prometheus-url', 'http://127.0.0.1:9', 'metrics'],
}


@pytest.mark.parametrize('command', COMMANDS)
def test_a_mistyped_ledger_is_refused_and_not_created(tmp_path, inventory_path, invoke, monkeypatch, command):
    monkeypatch.setattr(runs, 'run_playbook', lambda *a, **k: pytest.fail('no playbook may run'))
    monkeypatch.setenv('MIGRATION_PROMETHEUS_RETRIES', '0')
    plan = tmp_path / 'plan.yml'
    plan.write_text('canary: {count: 1}\nwaves: [{percent: 50}]\n')
    typo = tmp_path / 'ledgre.sqlite3'
    args = [a.format(plan=plan) for a in COMMANDS[command]]
    result = invoke('--ledger', typo, '-i', inventory_path, *args)
    assert result.exit_code == errors.EXIT_BAD_INPUT, result.output
    assert f'no ledger at {typo}' in result.output
    assert f'ant-network-migration --ledger {typo} init' in result.output
    assert not typo.exists() and not list(tmp_path.glob('ledgre.sqlite3*'))


def test_init_creates_the_ledger_once(tmp_path, invoke):
    location = tmp_path / 'state' / 'ledger.sqlite3'
    first = invoke('--ledger', location, 'init')
    assert first.exit_code == 0, first.output
    assert f'created the ledger {location}' in first.output
    assert location.is_file()
    again = invoke('--ledger', location, 'init')
    assert again.exit_code == 0 and 'is ready (0 nodes recorded)' in again.output
    status = invoke('--ledger', location, 'status', '--json')
    assert status.exit_code == 0, status.output

