"""The collection builds into a tarball that installs, and a playbook outside the checkout uses it by FQCN."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_build_install_and_use_outside_the_checkout(tmp_path):
    galaxy = str(BIN / 'ansible-galaxy')
    build = subprocess.run([galaxy, 'collection', 'build', '--output-path', str(tmp_path), str(ROOT)],
                           capture_output=True, text=True, cwd=tmp_path, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    tarballs = list(tmp_path.glob('autonomi-network_migration-*.tar.gz'))
    assert len(tarballs) == 1
    with tarfile.open(tarballs[0]) as tar:
        names = tar.getnames()
    # What ships: the collection's content, not the simulator, the benchmarks or local state.
    assert 'plugins/modules/transport_mode.py' in names and 'roles/wave/tasks/batch.yml' in names
    assert 'rules/alert_rules.yml' in names and 'playbooks/rollout.yml' in names
    assert not any(n.startswith(('src/', 'bench/', '.state', '.venv', 'collections/')) for n in names)

    install_dir = tmp_path / 'installed'
    install = subprocess.run([galaxy, 'collection', 'install', '--force', '-p', str(install_dir), str(tarballs[0])],
                             capture_output=True, text=True, cwd=tmp_path, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (install_dir / 'ansible_collections' / 'autonomi' / 'network_migration' / 'MANIFEST.json').is_file()

    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    (outside / 'use.yml').write_text('''---
- name: Use the installed collection by FQCN
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Plan a wave for a made-up fleet
      autonomi.network_migration.migration_wave_plan:
        wave: 50
        fleet_hosts: [a, b]
        batches: [1]
      register: plan
      ignore_errors: true
    - name: Read an empty ledger
      autonomi.network_migration.migration_ledger_info:
        op: status
      register: status
    - name: Check
      ansible.builtin.assert:
        that:
          - plan is failed
          - "'no transport_info for 2 host(s)' in plan.msg"
          - status.progress.total == 0
''')
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(install_dir), ANT_MIGRATION_LEDGER=str(tmp_path / 'ledger.sqlite3'),
               ANSIBLE_CONFIG=str(outside / 'none.cfg'), PATH=str(BIN) + os.pathsep + env.get('PATH', ''))
    run = subprocess.run([str(BIN / 'ansible-playbook'), '-i', 'localhost,', 'use.yml'], capture_output=True,
                         text=True, cwd=outside, env=env, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    # Ansible resolves the FQCN to the installed tarball (the configured path), not to the checkout.
    doc = subprocess.run([str(BIN / 'ansible-doc'), 'autonomi.network_migration.migration_ledger'],
                         capture_output=True, text=True, cwd=outside, env=env, check=False)
    assert doc.returncode == 0, doc.stderr
    assert str(install_dir / 'ansible_collections' / 'autonomi' / 'network_migration') in doc.stdout.splitlines()[0]
