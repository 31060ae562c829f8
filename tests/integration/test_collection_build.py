"""The collection builds into a tarball that installs, and a playbook outside the checkout uses it by FQCN;
the tools, installed from source into a fresh virtualenv, find that installed collection through
Ansible's collection loader (no .pth file, no sys.path entry)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ant_fleet_sim.layout import free_port
from ant_network_migration_dashboard import testing

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Wheels of the tools' dependencies, downloaded once (from the package index) and reused offline by
# the fresh-virtualenv test; it lives in the virtualenv, so a new one starts a new wheelhouse.
WHEELHOUSE = Path(sys.prefix) / 'test-wheelhouse'
# What `pip install .` needs of the checkout (copied, so the build leaves nothing in the tree).
TOOLS_SOURCE = ('pyproject.toml', 'README.md', 'LICENSE', 'src')


@pytest.fixture(scope='module')
def tarball(tmp_path_factory):
    """The collection as `make build` makes it (ansible-galaxy collection build)."""
    out = tmp_path_factory.mktemp('build')
    build = subprocess.run([str(BIN / 'ansible-galaxy'), 'collection', 'build', '--output-path', str(out), str(ROOT)],
                           capture_output=True, text=True, cwd=out, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    tarballs = list(out.glob('autonomi-network_migration-*.tar.gz'))
    assert len(tarballs) == 1
    return tarballs[0]


def install_collection(galaxy, tarball, collections_dir):
    install = subprocess.run([str(galaxy), 'collection', 'install', '--force', '-p', str(collections_dir),
                              str(tarball)], capture_output=True, text=True, cwd=collections_dir.parent, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (collections_dir / 'ansible_collections' / 'autonomi' / 'network_migration' / 'MANIFEST.json').is_file()


def test_build_install_and_use_outside_the_checkout(tmp_path, tarball):
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    # What ships: the collection's content, not the simulator, the benchmarks or local state.
    assert 'plugins/modules/transport_mode.py' in names and 'roles/wave/tasks/batch.yml' in names
    assert 'rules/alert_rules.yml' in names and 'playbooks/rollout.yml' in names
    assert not any(n.startswith(('src/', 'bench/', '.state', '.venv', 'collections/')) for n in names)

    install_dir = tmp_path / 'installed'
    install_dir.mkdir()
    install_collection(BIN / 'ansible-galaxy', tarball, install_dir)

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


def _pip_install_tools(venv, source):
    """`pip install <source>` into ``venv`` from the wheelhouse, offline; the wheelhouse is filled from the
    package index the first time (and again when the dependencies changed)."""
    # This virtualenv's pip installs into the fresh one (--python): no pip bootstrapped there.
    pip = [str(BIN / 'pip'), '--python', str(venv / 'bin' / 'python'), '--disable-pip-version-check']
    offline = pip + ['install', '--quiet', '--no-compile', '--no-index', '--find-links', str(WHEELHOUSE), str(source)]
    proc = subprocess.run(offline, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        WHEELHOUSE.mkdir(exist_ok=True)
        download = subprocess.run([str(BIN / 'pip'), 'download', '--quiet', '--dest', str(WHEELHOUSE), str(source),
                                   'setuptools>=77', 'wheel'], capture_output=True, text=True, check=False)
        assert download.returncode == 0, download.stdout + download.stderr
        proc = subprocess.run(offline, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _get(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_tools_installed_with_pip_find_the_installed_collection(tmp_path, tarball):
    source = tmp_path / 'tools-source'
    source.mkdir()
    for name in TOOLS_SOURCE:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name)
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    _pip_install_tools(venv, source)
    purelib = 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
    site = Path(subprocess.run([str(venv / 'bin' / 'python'), '-c', purelib], capture_output=True, text=True,
                               check=True).stdout.strip())
    # Nothing puts a collection on the Python path: no .pth naming one, no ansible_collections in site-packages.
    for pth in site.glob('*.pth'):
        assert 'collections' not in pth.read_text(), pth
    assert not (site / 'ansible_collections').exists()

    collections_dir = tmp_path / 'collections'
    collections_dir.mkdir()
    install_collection(venv / 'bin' / 'ansible-galaxy', tarball, collections_dir)
    ledger = tmp_path / 'ledger.sqlite3'
    testing.fill_ledger(ledger, hosts=2, nodes_per_host=3, migrated_hosts=1)

    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    (tmp_path / 'home').mkdir()
    (elsewhere / 'none.cfg').write_text('[defaults]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'ANT_', 'MIGRATION_', 'PYTHON'))}
    env.update(HOME=str(tmp_path / 'home'), ANSIBLE_CONFIG=str(elsewhere / 'none.cfg'),
               ANT_MIGRATION_LEDGER=str(ledger), PATH=str(venv / 'bin') + os.pathsep + env.get('PATH', ''))
    cli = str(venv / 'bin' / 'ant-network-migration')

    # Not in any collections path: one line saying how to install it, exit 2, no traceback.
    missing = subprocess.run([cli, 'status'], capture_output=True, text=True, cwd=elsewhere, env=env, check=False)
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert 'install the collection into a collections path' in missing.stderr
    assert 'Traceback' not in missing.stderr

    env['ANSIBLE_COLLECTIONS_PATH'] = str(collections_dir)
    status = subprocess.run([cli, 'status', '--json'], capture_output=True, text=True, cwd=elsewhere, env=env,
                            check=False)
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)['progress']['total'] == 6
    # The collection code came from the installed tarball, and the Python path stayed as it was.
    probe = ('import sys; path = list(sys.path); import ant_network_migration_cli; '
             'import ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger as ledger; '
             'print(ledger.__file__); print(sys.path == path)')
    where = subprocess.run([str(venv / 'bin' / 'python'), '-c', probe], capture_output=True, text=True,
                           cwd=elsewhere, env=env, check=False)
    assert where.returncode == 0, where.stderr
    loaded_from, path_unchanged = where.stdout.split()
    assert loaded_from.startswith(str(collections_dir)), loaded_from
    assert path_unchanged == 'True'

    with testing.StubPrometheus() as prometheus:
        for _ in range(3):   # another process may take the port picked before the dashboard binds it
            port = free_port()
            dashboard = subprocess.Popen([cli, '--prometheus-url', prometheus.url, 'dashboard', '--listen',
                                          f'127.0.0.1:{port}'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True, cwd=elsewhere, env=env)
            first = dashboard.stdout.readline()
            if 'address already in use' not in first:
                break
            dashboard.wait(timeout=30)
        assert first.startswith('dashboard: '), first
        try:
            deadline = time.monotonic() + 60
            answer = None
            while time.monotonic() < deadline and dashboard.poll() is None:
                try:
                    answer = _get(f'http://127.0.0.1:{port}/health')
                except OSError:
                    answer = None
                if answer and answer[0] == 200:
                    break
                time.sleep(0.3)
            assert answer is not None and answer[0] == 200, (answer, dashboard.poll())
            assert answer[1]['checks']['ledger']['ok'] and answer[1]['checks']['prometheus']['ok']
        finally:
            dashboard.terminate()
            output = first + dashboard.communicate(timeout=30)[0]
    assert 'Traceback' not in output, output
