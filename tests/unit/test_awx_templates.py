"""The AWX job templates point at playbooks that exist, parse, and read the extra vars given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = yaml.safe_load((ROOT / 'extensions' / 'awx' / 'job_templates.yml').read_text())['job_templates']


@pytest.mark.parametrize('template', TEMPLATES, ids=[t['name'] for t in TEMPLATES])
def test_template_playbook_exists_and_reads_its_extra_vars(template):
    playbook = ROOT / template['playbook']
    assert playbook.is_file(), template['playbook']
    texts = [playbook.read_text()]
    texts += [(ROOT / 'playbooks' / line.split(':', 1)[1].strip()).read_text()
              for line in texts[0].splitlines() if 'import_playbook:' in line]
    code = '\n'.join(line for text in texts for line in text.splitlines() if not line.lstrip().startswith('#'))
    roles = {line.split('autonomi.network_migration.')[1].strip() for line in code.splitlines()
             if 'name: autonomi.network_migration.' in line}
    specs = ''.join((ROOT / 'roles' / role / 'meta' / 'argument_specs.yml').read_text() for role in roles)
    for var in template['extra_vars']:
        assert var in code or ('\n      %s:' % var) in specs, (
            '%s does not read the extra var %r' % (template['playbook'], var))


def test_every_playbook_passes_syntax_check():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'))
    playbooks = sorted({t['playbook'] for t in TEMPLATES})
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run([str(bin_dir / 'ansible-playbook'), '--syntax-check', '-i', 'localhost,', *playbooks],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
