# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the collection is, which Ansible configuration the runs use, and what the inventory holds."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ant_network_migration_common.collection import root as collection_root

from .errors import BadInput

FLEET_GROUP = 'fleet'


def playbook_path(name):
    path = collection_root() / 'playbooks' / name
    if not path.is_file():
        raise BadInput(f'playbook {name} not found in {path.parent}; is the collection complete?')
    return path


def ansible_config():
    """The ansible.cfg the CLI and its runs share: the one ansible-core would pick (ANSIBLE_CONFIG,
    ./ansible.cfg, ~/.ansible.cfg, /etc/ansible/ansible.cfg), else the collection checkout's own
    (None when there is none: Ansible's defaults apply)."""
    env = os.environ.get('ANSIBLE_CONFIG')
    if env:
        return env
    for candidate in (Path.cwd() / 'ansible.cfg', Path('~/.ansible.cfg').expanduser(),
                      Path('/etc/ansible/ansible.cfg'), collection_root() / 'ansible.cfg'):
        if candidate.is_file():
            return str(candidate.resolve())
    return None


def ansible_forks():
    """``[defaults] forks`` of the shared ansible.cfg (Ansible's default 5 when unset): a fast
    rollback's parallelism, which the rollout's rollback-time projection uses too."""
    if os.environ.get('ANSIBLE_FORKS', '').isdigit():
        return int(os.environ['ANSIBLE_FORKS'])
    config = ansible_config()
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(';', '#'))
    try:
        parser.read(config or [], encoding='utf-8')
    except (configparser.Error, OSError):
        return 5
    value = parser.get('defaults', 'forks', fallback='5').strip()
    return int(value) if value.isdigit() else 5


def default_inventory():
    """The inventory Ansible would use without -i: ANSIBLE_INVENTORY, else ansible.cfg's
    ``[defaults] inventory`` (relative to that file). None when neither is set."""
    if os.environ.get('ANSIBLE_INVENTORY'):
        return os.environ['ANSIBLE_INVENTORY'].split(',')[0]
    config = ansible_config()
    if not config:
        return None
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(';', '#'))
    try:
        parser.read(config, encoding='utf-8')
    except (configparser.Error, OSError):
        return None
    value = parser.get('defaults', 'inventory', fallback='').split(',')[0].strip()
    if not value:
        return None
    path = Path(os.path.expanduser(value))
    return str(path if path.is_absolute() else (Path(config).parent / path).resolve())


def ensure_ansible_on_path():
    """Put the directory of this Python's scripts (ansible-playbook, ansible) first on PATH, so
    ansible-runner starts the Ansible installed beside the CLI even from outside the venv."""
    bindir = str(Path(sys.executable).parent)
    parts = os.environ.get('PATH', '').split(os.pathsep)
    if not parts or parts[0] != bindir:
        os.environ['PATH'] = os.pathsep.join([bindir] + [p for p in parts if p != bindir])


def ansible_env():
    """Environment for Ansible subprocesses: the shared ansible.cfg, and the venv's bin first so
    that ansible-playbook and ansible-inventory are the ones installed beside this CLI."""
    env = dict(os.environ)
    config = ansible_config()
    if config:
        env['ANSIBLE_CONFIG'] = config
    bindir = str(Path(sys.executable).parent)
    env['PATH'] = bindir + os.pathsep + env.get('PATH', '')
    return env


@dataclass
class Inventory:
    source: str | None
    hosts: list = field(default_factory=list)       # sorted names of every host
    groups: dict = field(default_factory=dict)      # group -> sorted host names (children expanded)
    hostvars: dict = field(default_factory=dict)

    @property
    def fleet(self):
        """The hosts a migration covers: group ``fleet`` when it exists, else every host."""
        return self.groups.get(FLEET_GROUP) or list(self.hosts)

    def expand(self, names):
        """Host names for a list of host or group names; unknown names are returned apart."""
        hosts, unknown = set(), []
        for name in names:
            if name in self.groups:
                hosts.update(self.groups[name])
            elif name in self.hosts:
                hosts.add(name)
            else:
                unknown.append(name)
        return sorted(hosts), unknown


def _groups_from_list(data):
    """Expand `ansible-inventory --list` JSON into group -> hosts, children included."""
    def members(group, seen):
        if group in seen:
            return set()
        seen.add(group)
        entry = data.get(group) or {}
        found = set(entry.get('hosts') or [])
        for child in entry.get('children') or []:
            found |= members(child, seen)
        return found

    names = [g for g in data if g != '_meta']
    return {g: sorted(members(g, set())) for g in names}


def load_inventory(source=None):
    """Read an inventory through `ansible-inventory --list` (every inventory plugin works).

    ``source`` None: the default inventory (ANSIBLE_INVENTORY / ansible.cfg)."""
    source = source or default_inventory()
    exe = shutil.which('ansible-inventory', path=ansible_env()['PATH'])
    if not exe:
        raise BadInput('ansible-inventory not found; install ansible-core beside this CLI')
    cmd = [exe, '--list']
    if source:
        if not Path(source).exists():
            raise BadInput(f'inventory {source} does not exist')
        cmd += ['-i', str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(), check=False)
    if proc.returncode != 0:
        raise BadInput(f'cannot read inventory {source or "(ansible.cfg default)"}: '
                       f'{proc.stderr.strip() or proc.stdout.strip()}')
    try:
        data = json.loads(proc.stdout)
    except ValueError as exc:
        raise BadInput(f'ansible-inventory printed no JSON for {source}: {exc}') from None
    groups = _groups_from_list(data)
    hostvars = (data.get('_meta') or {}).get('hostvars') or {}
    hosts = sorted(set(groups.get('all', [])) | set(hostvars))
    if not hosts:
        raise BadInput(f'inventory {source or "(ansible.cfg default)"} has no hosts')
    return Inventory(source=str(source) if source else None, hosts=hosts, groups=groups, hostvars=hostvars)


TRANSPORT_INFO = 'autonomi.network_migration.transport_info'


def discover_nodes(inventory_source, hosts):
    """The nodes of ``hosts`` as the hosts report them (transport_info, read-only).

    Used when the ledger does not know a host yet. The run has the migration_tracker callback
    switched off so that looking changes nothing, not even the ledger. Returns
    ``(nodes, unreachable)``: node dicts (host, service_name, peer_id, mode, status) and the
    hosts that did not answer, with the reason.
    """
    import ansible_runner  # 0.1 s to import: only the commands that run something load it

    env = ansible_env()
    # Replace callbacks_enabled (the migration_tracker) with a stdout-type callback, which Ansible
    # skips beside the runner's own stdout callback: nothing but the runner listens to this look.
    # (An empty value is not accepted: ansible-core fails on an empty plugin name.)
    envvars = {'ANSIBLE_CALLBACKS_ENABLED': 'ansible.builtin.minimal'}
    if env.get('ANSIBLE_CONFIG'):
        envvars['ANSIBLE_CONFIG'] = env['ANSIBLE_CONFIG']
    nodes, unreachable = [], {}

    def on_event(event):
        data = event.get('event_data') or {}
        host = data.get('host')
        res = data.get('res') or {}
        if event.get('event') == 'runner_on_ok':
            for node in res.get('nodes') or []:
                if node.get('status') == 'Removed':
                    continue
                nodes.append({'host': host, 'service_name': node.get('service_name'),
                              'peer_id': node.get('peer_id'), 'mode': node.get('mode'),
                              'status': node.get('status')})
        elif event.get('event') in ('runner_on_failed', 'runner_on_unreachable'):
            unreachable[host] = str(res.get('msg') or event.get('event'))
        return True

    private_dir = tempfile.mkdtemp(prefix='ant-network-migration-info-')
    try:
        kwargs = dict(private_data_dir=private_dir, project_dir=str(collection_root()), module=TRANSPORT_INFO,
                      module_args=json.dumps({'antctl_path': '{{ ant_antctl_path | default(omit) }}'}),
                      host_pattern=','.join(hosts), envvars=envvars, event_handler=on_event, quiet=True)
        if inventory_source:
            kwargs['inventory'] = str(Path(inventory_source).resolve())
        ensure_ansible_on_path()
        ansible_runner.run(**kwargs)
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)
    answered = {n['host'] for n in nodes}
    for host in hosts:
        if host not in answered and host not in unreachable:
            unreachable[host] = 'no transport_info result'
    return nodes, unreachable
