# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the ledger lives: the one resolution every part of the collection uses (docs/ledger.md)."""

from __future__ import annotations

import configparser
import os

ENV_LEDGER = 'ANT_MIGRATION_LEDGER'
INI_SECTION = 'autonomi_network_migration'
INI_KEY = 'ledger'
DEFAULT_LEDGER = '~/.local/state/autonomi-network-migration/ledger.sqlite3'
DSN_PREFIXES = ('postgresql://', 'postgres://')


def is_dsn(location):
    return str(location).startswith(DSN_PREFIXES)


def _active_ansible_cfg():
    """The ansible.cfg ansible-core would use (ANSIBLE_CONFIG, ./ansible.cfg, ~/.ansible.cfg, /etc)."""
    candidates = []
    env = os.environ.get('ANSIBLE_CONFIG')
    if env:
        env = os.path.expanduser(env)
        candidates.append(os.path.join(env, 'ansible.cfg') if os.path.isdir(env) else env)
    candidates += [os.path.join(os.getcwd(), 'ansible.cfg'), os.path.expanduser('~/.ansible.cfg'),
                   '/etc/ansible/ansible.cfg']
    for path in candidates:
        if os.path.isfile(path):
            return os.path.abspath(path)
    return None


def _ledger_from_cfg(cfg_path):
    parser = configparser.ConfigParser(inline_comment_prefixes=(';',), interpolation=None)
    try:
        parser.read(cfg_path, encoding='utf-8')
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    value = parser.get(INI_SECTION, INI_KEY, fallback='').strip()
    return value or None


def _normalise(value, base_dir=None):
    value = os.path.expandvars(str(value).strip())
    if is_dsn(value):
        return value
    value = os.path.expanduser(value)
    if not os.path.isabs(value):
        value = os.path.join(base_dir or os.getcwd(), value)
    return os.path.normpath(value)


def resolve_ledger_location(explicit=None, with_source=False):
    """Where the ledger lives: a PostgreSQL DSN or an absolute SQLite path.

    Precedence: ``explicit`` (task argument, CLI --ledger) > environment ANT_MIGRATION_LEDGER >
    ``ledger`` in the ``[autonomi_network_migration]`` section of the active ansible.cfg
    (relative paths are relative to that file) > DEFAULT_LEDGER. With ``with_source=True``
    returns ``(location, source)`` where source names where it came from.
    """
    if explicit:
        location, source = _normalise(explicit), 'explicit'
    elif os.environ.get(ENV_LEDGER):
        location, source = _normalise(os.environ[ENV_LEDGER]), f'env {ENV_LEDGER}'
    else:
        cfg = _active_ansible_cfg()
        value = _ledger_from_cfg(cfg) if cfg else None
        if value:
            location, source = _normalise(value, os.path.dirname(cfg)), f'{cfg} [{INI_SECTION}] {INI_KEY}'
        else:
            location, source = _normalise(DEFAULT_LEDGER), 'default'
    return (location, source) if with_source else location
