"""ansible-runner wiring: playbook path, env, extra inventory groups, events -> failures/progress."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import ansible_runner
import pytest
import yaml
from rich.console import Console

from ant_network_migration_cli import fleet, runs


@pytest.fixture
def fake_runner(monkeypatch, tmp_path):
    (tmp_path / 'playbooks').mkdir()
    (tmp_path / 'playbooks' / 'pause.yml').write_text('---\n')
    monkeypatch.setattr(fleet, 'collection_root', lambda: tmp_path)
    seen = {}

    def run(**kwargs):
        seen.update(kwargs)
        extravars = Path(kwargs['private_data_dir']) / 'env' / 'extravars'
        seen['extravars_file'] = extravars.read_text() if extravars.exists() else None
        seen['extra_inventory'] = [yaml.safe_load(Path(p).read_text()) for p in
                                   (kwargs['inventory'] if isinstance(kwargs.get('inventory'), list) else [])[1:]]
        for event in seen.pop('events', []):
            kwargs['event_handler'](event)
        return SimpleNamespace(status=seen.get('status', 'successful'), rc=seen.get('rc', 0))

    monkeypatch.setattr(ansible_runner, 'run', run)
    return seen


def test_run_passes_playbook_ledger_and_extra_groups(fake_runner, tmp_path):
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text('all: {hosts: {a: {}}}\n')
    outcome = runs.run_playbook('pause.yml', extravars={'reason': 'x'}, inventory=str(inventory),
                                ledger_location='/l.sqlite3', extra_groups={'migration_exclude': ['b', 'a']})
    assert outcome.ok and outcome.artifact_dir is None
    assert fake_runner['playbook'] == str(tmp_path / 'playbooks' / 'pause.yml')
    assert fake_runner['project_dir'] == str(tmp_path)
    assert fake_runner['envvars']['ANT_MIGRATION_LEDGER'] == '/l.sqlite3'
    # Written by the CLI itself, every string tagged !unsafe (never templated), not via runner's JSON.
    assert 'extravars' not in fake_runner
    assert fake_runner['extravars_file'] == "reason: !unsafe 'x'\n"
    assert fake_runner['inventory'][0] == str(inventory)
    assert fake_runner['extra_inventory'] == [
        {'all': {'children': {'migration_exclude': {'hosts': {'a': None, 'b': None}}}}}]


def test_missing_playbook_is_bad_input(fake_runner):
    from ant_network_migration_cli.errors import BadInput

    with pytest.raises(BadInput, match='playbook nope.yml not found'):
        runs.run_playbook('nope.yml')


def test_failures_are_collected_and_artifacts_kept(fake_runner):
    fake_runner.update(status='failed', rc=2, events=[
        {'event': 'runner_on_ok',
         'event_data': {'host': 'a', 'task_action': 'autonomi.network_migration.transport_mode'}},
        {'event': 'runner_on_failed', 'event_data': {'host': 'b', 'task': 'Gate', 'res': {'msg': 'rule tripped'}}},
        {'event': 'runner_on_failed', 'event_data': {'host': 'c', 'task': 'x', 'ignore_errors': True, 'res': {}}},
        {'event': 'runner_on_unreachable', 'event_data': {'host': 'd', 'task': 'Switch', 'res': {'msg': 'ssh'}}},
    ])
    console = Console(record=True, width=120)
    outcome = runs.run_playbook('pause.yml', console=console, expected_hosts=3)
    assert not outcome.ok
    assert outcome.failures == ['b: Gate: rule tripped', 'd: Switch: ssh']
    assert outcome.artifact_dir and Path(outcome.artifact_dir).is_dir()
    shutil.rmtree(outcome.artifact_dir)
    assert 'pause.yml: a done' in console.export_text()      # not a terminal: one line per host
