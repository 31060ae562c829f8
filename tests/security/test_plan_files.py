"""Plan files are not trusted input (issue 22, finding 4): huge, aliased (billion laughs),
duplicated, binary and non-UTF-8 plans are refused with one line and no traceback, and an inventory
a plan names may not run code on the controller - not in a dry run either - unless the operator says
so (--trust-plan-inventory)."""

from __future__ import annotations

import os
import stat

import pytest
from security_helpers import HOSTS, inventory_text, run_cli

from ant_network_migration_cli import errors, plan, runs

pytestmark = pytest.mark.security

VALID = 'waves: [{percent: 50}]\n'


def write(tmp_path, content, name='plan.yml'):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def refused_in_one_line(proc, *expected):
    """Exit 2, one `Error:` line on stderr saying what is wrong, no traceback, nothing on stdout."""
    assert proc.returncode == errors.EXIT_BAD_INPUT, proc.stdout + proc.stderr
    assert 'Traceback' not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('Error: '), proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def dry_run(ledger_path, inventory_path, plan_path, *extra, timeout=60):
    return run_cli('--ledger', ledger_path, '-i', inventory_path, 'start', '--plan', plan_path, '--dry-run', *extra,
                   timeout=timeout)


def test_a_plan_over_the_size_limit_is_refused(tmp_path, ledger_path, inventory_path):
    # A valid plan padded past the limit with comments: its size alone refuses it, before parsing.
    padding = ('# ' + 'x' * 78 + '\n') * (plan.MAX_PLAN_BYTES // 80 + 1)
    proc = dry_run(ledger_path, inventory_path, write(tmp_path, VALID + padding))
    refused_in_one_line(proc, 'larger than 256 KiB')


def billion_laughs(levels, width):
    lines = ['waves: [{percent: 50}]', 'exclude:', '  - &l0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f'  - &l{level} [' + ', '.join([f'*l{level - 1}'] * width) + ']')
    return '\n'.join(lines) + '\n'


@pytest.mark.parametrize('levels, width', [(2, 3), (9, 10)], ids=['small', 'bomb'])
def test_yaml_aliases_are_refused_before_anything_expands(tmp_path, ledger_path, inventory_path, levels, width):
    # 10**9 strings once expanded; the old loader ran past 60 s and 4 GB on it. The subprocess's
    # timeout bounds what a regression can cost this suite.
    proc = dry_run(ledger_path, inventory_path, write(tmp_path, billion_laughs(levels, width)), timeout=60)
    refused_in_one_line(proc, 'anchor (&l0) is not allowed', 'line 3')


@pytest.mark.parametrize('text, key, first', [
    ('waves: [{percent: 10}]\nwaves: [{percent: 50}]\n', "'waves'", 1),
    ('canary: {count: 1, count: 2}\n' + VALID, "'count'", 1),
    ('{"waves": [{"percent": 10}], "soak": 60, "soak": 600}', "'soak'", 1),
], ids=['yaml', 'nested', 'json'])
def test_duplicate_keys_are_refused(tmp_path, ledger_path, inventory_path, text, key, first):
    proc = dry_run(ledger_path, inventory_path, write(tmp_path, text))
    refused_in_one_line(proc, f'duplicate key {key} (first on line {first})')


@pytest.mark.parametrize('content, expected', [
    (b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe', 'not UTF-8 text (byte 0x89 at offset 0)'),
    ('waves: [{percent: 50}]\nsoak: "caf\xe9"\n'.encode('latin-1'), 'not UTF-8 text (byte 0xe9 at offset 33)'),
    (b'waves: [{percent: 50}]\x00\x01\x02', 'not valid YAML or JSON'),
    (b'waves: [{percent: 50}\n  - oops: [', 'not valid YAML or JSON (line'),
    (b'[' * 2000 + b']' * 2000, 'nested deeper than 16 levels'),
    (b'waves: !!python/object/apply:os.system ["touch /tmp/x"]\n', 'not valid YAML or JSON'),
], ids=['binary', 'latin-1', 'nul-bytes', 'bad-yaml', 'deep', 'python-tag'])
def test_undecodable_plans_give_one_line(tmp_path, ledger_path, inventory_path, content, expected):
    proc = dry_run(ledger_path, inventory_path, write(tmp_path, content))
    refused_in_one_line(proc, expected)


def test_a_plan_that_is_not_a_file_is_refused(tmp_path, ledger_path, inventory_path):
    fifo = tmp_path / 'plan.fifo'
    os.mkfifo(fifo)
    refused_in_one_line(dry_run(ledger_path, inventory_path, fifo), 'not a regular file')


SCRIPT = '''#!/bin/sh
touch "{marker}"
cat <<'JSON'
{{"fleet": {{"hosts": {hosts}}}, "_meta": {{"hostvars": {{}}}}}}
JSON
'''


def executable_inventory(tmp_path, marker, where='file'):
    text = SCRIPT.format(marker=marker, hosts='["' + '", "'.join(HOSTS) + '"]')
    if where == 'file':
        path = tmp_path / 'inventory.sh'
    else:
        (tmp_path / 'inventory.d').mkdir()
        (tmp_path / 'inventory.d' / 'static.yml').write_text(inventory_text())
        path = tmp_path / 'inventory.d' / 'more' / 'dynamic'
        path.parent.mkdir()
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path if where == 'file' else tmp_path / 'inventory.d'


@pytest.mark.parametrize('where', ['file', 'directory'])
@pytest.mark.parametrize('mode', ['dry-run', 'real run'])
def test_an_executable_inventory_named_by_a_plan_is_not_run(tmp_path, ledger_path, invoke, monkeypatch, where, mode):
    monkeypatch.setattr(runs, 'run_playbook', lambda *a, **k: pytest.fail('no playbook may run'))
    marker = tmp_path / 'the-inventory-ran'
    inventory = executable_inventory(tmp_path, marker, where)
    plan_path = write(tmp_path, f'inventory: {inventory.name}\n' + VALID)
    args = ['--ledger', ledger_path, 'start', '--plan', plan_path] + (['--dry-run'] if mode == 'dry-run' else [])
    result = invoke(*args)
    assert result.exit_code == errors.EXIT_BAD_INPUT, result.output
    assert 'is executable' in result.output and '--trust-plan-inventory' in result.output
    assert not marker.exists(), 'the plan made the controller run its inventory script'


def test_an_inventory_plugin_named_by_a_plan_is_not_loaded(tmp_path, ledger_path, invoke):
    # Ansible templates `compose` for every host of the inventory: the lookup runs a command.
    marker = tmp_path / 'the-plugin-ran'
    inventory = tmp_path / 'inventory'
    inventory.mkdir()
    (inventory / 'hosts.yml').write_text(inventory_text())
    (inventory / 'zz-constructed.yml').write_text("plugin: ansible.builtin.constructed\ncompose:\n"
                                                  f"  x: lookup('ansible.builtin.pipe', 'touch {marker}')\n")
    plan_path = write(tmp_path, 'inventory: inventory\n' + VALID)
    result = invoke('--ledger', ledger_path, 'start', '--plan', plan_path, '--dry-run')
    assert result.exit_code == errors.EXIT_BAD_INPUT, result.output
    assert 'configures an inventory plugin' in result.output
    assert not marker.exists()


def test_the_operator_may_trust_a_plan_inventory_explicitly(tmp_path, ledger_path, invoke):
    marker = tmp_path / 'the-inventory-ran'
    inventory = executable_inventory(tmp_path, marker)
    plan_path = write(tmp_path, f'inventory: {inventory.name}\n' + VALID)
    result = invoke('--ledger', ledger_path, 'start', '--plan', plan_path, '--dry-run', '--trust-plan-inventory')
    assert result.exit_code == 0, result.output
    assert marker.exists() and 'Wave 1' in result.output


def test_the_operators_own_inventory_is_used_as_given(tmp_path, ledger_path, invoke):
    # -i is the operator's: an executable inventory there runs, as with ansible-playbook -i.
    marker = tmp_path / 'the-inventory-ran'
    inventory = executable_inventory(tmp_path, marker)
    plan_path = write(tmp_path, VALID)
    result = invoke('--ledger', ledger_path, '-i', inventory, 'start', '--plan', plan_path, '--dry-run')
    assert result.exit_code == 0, result.output
    assert marker.exists()


def test_a_static_inventory_named_by_a_plan_is_used(tmp_path, ledger_path, invoke):
    (tmp_path / 'inventory').mkdir()
    (tmp_path / 'inventory' / 'hosts.yml').write_text(inventory_text())
    (tmp_path / 'inventory' / 'group_vars').mkdir()
    (tmp_path / 'inventory' / 'group_vars' / 'all.yml').write_text('wave_max_close_group_share: 1.0\n')
    plan_path = write(tmp_path, 'inventory: inventory\n' + VALID)
    result = invoke('--ledger', ledger_path, 'start', '--plan', plan_path, '--dry-run')
    assert result.exit_code == 0, result.output
    assert 'Wave 1' in result.output
