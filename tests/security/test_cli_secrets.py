"""No secret leaves the CLI as text (issue 22, finding 1, the CLI's share): a failed run's
ansible-runner directory holds neither the ledger DSN's password nor anything else of the child's
environment, and every human and JSON output shows the ledger location redacted (the collection's
one redaction, plugins/plugin_utils/redaction.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from security_helpers import HOSTS, run_cli

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ant_network_migration_cli import fleet, runs
from ant_network_migration_dashboard.testing import synthetic_peer_id

pytestmark = pytest.mark.security

ROOT = Path(__file__).resolve().parents[2]
SECRET = 'hunter2-s3cret'
ENV_SECRET = 'prometheus-pa55word'


def files_containing(directory, needle):
    found = []
    for path in Path(directory).rglob('*'):
        if path.is_file() and needle.encode() in path.read_bytes():
            found.append(str(path.relative_to(directory)))
    return found


def test_a_failed_run_leaves_no_secret_in_the_runner_directory(tmp_path, monkeypatch):
    collection = tmp_path / 'collection'
    (collection / 'playbooks').mkdir(parents=True)
    (collection / 'playbooks' / 'fails.yml').write_text('''---
- name: A run that fails
  hosts: all
  gather_facts: false
  tasks:
    - name: Fail
      ansible.builtin.fail:
        msg: boom
''')
    inventory = tmp_path / 'hosts'
    inventory.write_text(f'localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n')
    (tmp_path / 'plain.cfg').write_text('[defaults]\n')
    monkeypatch.setattr(fleet, 'collection_root', lambda: collection)
    monkeypatch.setenv('ANSIBLE_CONFIG', str(tmp_path / 'plain.cfg'))
    monkeypatch.setenv('MIGRATION_PROMETHEUS_PASSWORD', ENV_SECRET)   # any secret of the operator's environment
    dsn = f'postgresql://migrator:{SECRET}@db.example:5432/migration'
    outcome = runs.run_playbook('fails.yml', inventory=str(inventory), ledger_location=dsn)
    try:
        assert not outcome.ok and outcome.artifact_dir
        kept = Path(outcome.artifact_dir)
        # The failed run's output stays for the operator ...
        assert list(kept.glob('artifacts/*/stdout')) and 'boom' in outcome.failures[0]
        # ... and nothing in it holds the ledger's password or the environment's secrets.
        assert files_containing(kept, SECRET) == []
        assert files_containing(kept, ENV_SECRET) == []
        assert not (kept / 'env' / 'envvars').exists()
    finally:
        if outcome.artifact_dir:
            subprocess.run(['rm', '-rf', outcome.artifact_dir], check=False)


@pytest.fixture(scope='module')
def postgres():
    spec = importlib.util.spec_from_file_location('ledger_pg_server',
                                                  ROOT / 'tests' / 'unit' / 'ledger' / 'ledger_pg_server.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.server_for_tests(pytest)
    yield server
    server.stop()


def test_every_output_shows_the_ledger_location_redacted(tmp_path, postgres, inventory_path):
    # The test server trusts local connections: the password is accepted and ignored.
    dsn = postgres.new_schema().replace(f'postgresql://{postgres.user}@', f'postgresql://{postgres.user}:{SECRET}@')
    shown = f'postgresql://{postgres.user}:********@'
    plan = tmp_path / 'plan.yml'
    plan.write_text('waves: [{percent: 50}]\n')
    created = run_cli('--ledger', dsn, 'init')
    assert created.returncode == 0, created.stdout + created.stderr
    with ledger_lib.open_ledger(dsn) as handle:
        handle.record_transitions([{'host': host, 'service_name': 'antnode1', 'peer_id': synthetic_peer_id(i, 1),
                                    'to_state': 'libp2p_only'} for i, host in enumerate(HOSTS)])
        handle.set_canary_verdict('passed', hosts=[])
    outputs = {'init': created}
    for name, args in {'init again': ['init'], 'status --json': ['status', '--json'],
                       'status': ['status', '--detailed'], 'resume': ['resume'],
                       'start --dry-run': ['-i', inventory_path, 'start', '--plan', plan, '--dry-run'],
                       'health --json': ['--prometheus-url', f'http://scraper:{SECRET}@127.0.0.1:9', 'health',
                                         '--json']}.items():
        proc = run_cli('--ledger', dsn, *args, env={'MIGRATION_PROMETHEUS_RETRIES': '0'})
        outputs[name] = proc
    for name, proc in outputs.items():
        assert SECRET not in proc.stdout + proc.stderr, (name, proc.stdout + proc.stderr)
        assert 'Traceback' not in proc.stderr, (name, proc.stderr)
    assert shown in outputs['init'].stdout and shown in outputs['init again'].stdout
    assert json.loads(outputs['status --json'].stdout)['ledger'].startswith(shown)
    assert shown in outputs['status'].stdout
    assert 'nothing to resume' in outputs['resume'].stdout
    assert outputs['start --dry-run'].returncode == 0, outputs['start --dry-run'].stdout
    assert shown in outputs['start --dry-run'].stdout
    assert outputs['health --json'].returncode == 1
    assert 'scraper:********@' in json.loads(outputs['health --json'].stdout)['problems'][0]
