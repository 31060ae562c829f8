"""Issue 22, case 8: over SSH, a host whose sudo asks for a password and a host whose Python is too old fail with a
message that names the host and the fix - in health.yml and before any switch - not with Ansible's "Missing sudo
password" or "Module result deserialization failed: No start of json char found".

The simulated fleet is reached over a real OpenSSH server (ant_fleet_sim.ssh). sim-host-02 becomes a user of this
test whose sudoers rule asks for a password (the fleet's own NOPASSWD rule stays, for other users; a later rule
wins in sudoers); sim-host-01's interpreter is a Python that says it is 3.6.15 and cannot run a module.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import host_requirements
from ant_fleet_sim import ssh
from ant_fleet_sim.testing import SimStack

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / 'ansible-playbook')
OLD_PYTHON = '''#!/bin/sh
# A Python 3.6 as far as the modules are concerned: it says its version, and cannot run them.
case "$1" in --version|-V) echo "Python 3.6.15"; exit 0;; esac
echo '  File "<stdin>", line 1' >&2
echo 'SyntaxError: invalid syntax' >&2
exit 1
'''


def _requirements():
    try:
        ssh.check_requirements()
    except ssh.SshError as exc:
        if os.environ.get('CI') == 'true':
            pytest.fail('the SSH fleet cannot run under CI: %s' % exc)
        pytest.skip(str(exc))


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    """Three hosts over SSH: 01 with an old Python, 02 whose sudo asks for a password, 03 as it should be."""
    _requirements()
    directory = tmp_path_factory.mktemp('host-check')
    stack = SimStack(directory, hosts=3, nodes_per_host=2, prometheus=False, ssh=True).start()
    target = 'antsec-%s' % hashlib.sha256(str(stack.state_dir).encode()).hexdigest()[:10]
    sudoers = Path('/etc/sudoers.d') / ('zz-%s' % target)
    try:
        subprocess.run(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', target],
                       check=True, capture_output=True)
        rule = directory / 'sudoers.check'
        rule.write_text('%s ALL=(%s) PASSWD: ALL\n' % (stack.ssh_info['accounts']['sim-host-02'], target))
        subprocess.run(['visudo', '-c', '-q', '-f', str(rule)], check=True)
        os.chmod(rule, 0o440)
        os.replace(rule, sudoers)
        old_python = stack.state_dir / 'python3.6'   # the host accounts reach the state directory
        old_python.write_text(OLD_PYTHON)
        os.chmod(old_python, 0o755)
        overrides = directory / 'overrides.yml'
        overrides.write_text(yaml.safe_dump({'all': {'children': {'fleet': {'hosts': {
            'sim-host-01': {'ansible_python_interpreter': str(old_python)},
            'sim-host-02': {'ansible_become_user': target}}}}}}))
        yield stack, overrides, old_python, target
    finally:
        sudoers.unlink(missing_ok=True)
        try:
            pwd.getpwnam(target)
            subprocess.run(['userdel', target], check=False, capture_output=True)
        except KeyError:
            pass
        stack.stop()


def play(fleet, playbook, *args):
    stack, overrides, _old, _target = fleet
    env = dict(os.environ, ANT_MIGRATION_LEDGER=str(stack.state_dir / 'ledger.sqlite3'), ANSIBLE_NOCOLOR='1')
    proc = subprocess.run([PLAYBOOK, '-i', str(stack.inventory), '-i', str(overrides),
                           str(ROOT / 'playbooks' / playbook), *args],
                          capture_output=True, text=True, timeout=900, cwd=str(ROOT), env=env)
    return proc.returncode, proc.stdout + proc.stderr


def assert_named_with_the_fix(output, old_python, target):
    assert '"msg": "Module result deserialization failed' not in output, output[-4000:]
    become = [line for line in output.splitlines() if line.startswith('fatal: [sim-host-02]')]
    assert become and 'asks for a password to become %s' % target in become[0], output[-4000:]
    assert '--ask-become-pass' in become[0] and 'NOPASSWD' in become[0]
    python = [line for line in output.splitlines() if line.startswith('fatal: [sim-host-01]')]
    assert python and str(old_python) in python[0] and 'Python 3.6.15' in python[0], output[-4000:]
    assert 'Python %d.%d' % host_requirements.MIN_PYTHON in python[0]
    assert 'fatal: [sim-host-03]' not in output


def test_health_names_the_host_and_the_fix(fleet):
    rc, output = play(fleet, 'health.yml')
    assert rc != 0
    assert_named_with_the_fix(output, fleet[2], fleet[3])
    assert "TASK [autonomi.network_migration.control : Report the host's nodes" in output
    assert 'ok: [sim-host-03]' in output.split("Report the host's nodes")[1]


def test_nothing_is_switched_on_a_host_that_fails_the_check(fleet):
    """Before any switch: the discover step of a rollback (and of waves and the canary, the same step)."""
    stack = fleet[0]
    before = {host: stack.antctl(host, 'status', '--json').stdout for host in ('sim-host-01', 'sim-host-02')}
    rc, output = play(fleet, 'rollback.yml', '-e', 'rollback_strategy=gradual', '-e', 'target=libp2p_only')
    assert_named_with_the_fix(output, fleet[2], fleet[3])
    assert output.index('fatal: [sim-host-02]') < output.index('PLAY [Plan the rollback]')   # in the fleet's read
    assert 'Switch every node back' not in output or 'sim-host-01' not in output.split('Switch every node back')[1]
    after = {host: stack.antctl(host, 'status', '--json').stdout for host in ('sim-host-01', 'sim-host-02')}
    assert after == before
