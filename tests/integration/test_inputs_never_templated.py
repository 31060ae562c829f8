"""Operator input is data: a value typed with -e is never templated, whatever its kind (issue 11, finding 1).

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
