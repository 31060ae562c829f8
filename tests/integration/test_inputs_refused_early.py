"""Bad or hostile input is refused before any host is read, and never templated (issue 11, findings 1 and 6).

Operator input is data: a value typed with -e is never templated, whatever its kind.

Free text (reasons, operator names) is stored verbatim (test_safety_inputs.py). Here the other kinds:
a group name, a wave percent, a count, a mode, a boolean given as ``{{ lookup('pipe', ...) }}`` used to
be templated by the input check itself (meant for inventory values that refer to other variables),
which ran the command on the controller. Now they are refused as written, before any host is read,
and nothing runs. These runs stop at the first task on localhost, so no fleet is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize('playbook,variable,form', [
    ('canary.yml', 'canary_group', 'a group of the inventory'),
    ('canary.yml', 'canary_count', 'a whole number'),
    ('rollout.yml', 'wave', 'an integer from 1 to 100'),
    ('promote.yml', 'stage', None),
    ('rollback.yml', 'rollback_strategy', None),
    ('monitoring.yml', 'monitoring_reload', None),
])
@pytest.mark.parametrize('as_json', [False, True])
def test_a_template_typed_with_extra_vars_is_refused_and_never_run(tmp_path, playbook, variable, form, as_json):
    marker = tmp_path / 'templated'
    value = "{{ lookup('pipe', 'touch %s') }}" % marker
    extra = json.dumps({variable: value}) if as_json else '%s=%s' % (variable, value)
    args = [str(BIN / 'ansible-playbook'), str(ROOT / 'playbooks' / playbook), '-i', str(ROOT / 'inventories' / 'sim'),
            '-e', extra]
    if playbook == 'promote.yml':
        args += ['-e', 'wave=5']
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANT_MIGRATION_LEDGER=str(tmp_path / 'ledger.sqlite3'))
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert not marker.exists(), 'the value of %s was templated on the controller' % variable
    assert 'refused before any host was read' in out and '%s=' % variable in out, out[-2000:]
    if form:
        assert form in out, out[-2000:]
    assert 'PLAY [Read the fleet]' not in out and 'TASK [Take the run lock]' not in out, out[-2000:]


@pytest.mark.parametrize('playbook,setting,value,why', [
    ('rollout.yml', 'wave_batches', [0], 'batch 0 is not a whole number of hosts'),
    ('rollout.yml', 'wave_batches', ['150%'], 'batch 150% is not in'),
    ('rollout.yml', 'wave_gate_evaluations', 0, 'less than 1'),
    ('rollout.yml', 'wave_ready_timeout', 0, 'less than 1'),
    ('rollout.yml', 'wave_node_batch_size', -2, 'less than 0'),
    ('rollout.yml', 'wave_max_close_group_share', 1.5, 'above 0 and at most 1'),
    ('promote.yml', 'wave_soak_seconds', '-1', 'whole number'),
    ('canary.yml', 'canary_ready_timeout', 0, 'less than 1'),
    ('canary.yml', 'canary_health_min_peers', -1, 'less than 0'),
    ('rollback.yml', 'rollback_batches', ['0%'], 'batch 0% is not in'),
    ('rollback.yml', 'rollback_ready_timeout', 0, 'less than 1'),
    ('rollback.yml', 'rollback_pause_seconds', -5, 'less than 0'),
])
def test_a_bad_role_setting_is_refused_before_any_host_is_read(tmp_path, playbook, setting, value, why):
    """Before, these reached the fleet: wave_gate_evaluations=0 or an unknown batch size failed only at
    the first batch's gate or plan, after the lock (and, for the gate, after the batch had switched)."""
    args = [str(BIN / 'ansible-playbook'), str(ROOT / 'playbooks' / playbook), '-i', str(ROOT / 'inventories' / 'sim'),
            '-e', json.dumps({setting: value})]
    if playbook in ('rollout.yml', 'promote.yml'):
        args += ['-e', 'wave=5', '-e', 'wave_require_canary=false']
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANT_MIGRATION_LEDGER=str(tmp_path / 'ledger.sqlite3'))
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert 'refused before any host was read: %s=' % setting in out and why in out, out[-2000:]
    assert 'PLAY [Read the fleet]' not in out and 'TASK [Take the run lock]' not in out, out[-2000:]
