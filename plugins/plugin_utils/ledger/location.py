# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the ledger lives, and whether this run may create it: the one resolution every part of the
collection uses (docs/ledger.md)."""

from __future__ import annotations

import configparser
import os
import re

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import validation

ENV_LEDGER = 'ANT_MIGRATION_LEDGER'
INI_SECTION = 'autonomi_network_migration'
INI_KEY = 'ledger'
DEFAULT_LEDGER = '~/.local/state/autonomi-network-migration/ledger.sqlite3'
DSN_PREFIXES = ('postgresql://', 'postgres://')
# libpq's connection keywords (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS):
# a location that starts with one of them and "=" is a key/value DSN ("host=db dbname=migration ..."),
# never a SQLite file of that name.
LIBPQ_KEYWORDS = (
    'host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'passfile', 'require_auth', 'channel_binding',
    'connect_timeout', 'client_encoding', 'options', 'application_name', 'fallback_application_name',
    'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout',
    'replication', 'gssencmode', 'sslmode', 'requiressl', 'sslcompression', 'sslcert', 'sslkey', 'sslpassword',
    'sslcertmode', 'sslrootcert', 'sslcrl', 'sslcrldir', 'sslsni', 'requirepeer', 'ssl_min_protocol_version',
    'ssl_max_protocol_version', 'krbsrvname', 'gsslib', 'gssdelegation', 'service', 'target_session_attrs',
    'load_balance_hosts')
_KEY_VALUE_DSN = re.compile(r'^\s*(%s)\s*=' % '|'.join(LIBPQ_KEYWORDS))

# Creating a ledger is explicit (docs/ledger.md, "A new ledger"): -e migration_ledger_init=true, the
# environment variable, or the CLI's init. Anything else refuses a location where no ledger exists.
INIT_VAR = 'migration_ledger_init'
ENV_LEDGER_INIT = 'ANT_MIGRATION_LEDGER_INIT'


def is_dsn(location):
    """Whether ``location`` names PostgreSQL: a ``postgresql://`` URI or a libpq key/value DSN."""
    text = str(location)
    return text.startswith(DSN_PREFIXES) or bool(_KEY_VALUE_DSN.match(text))


def may_create(value=None, environ=None):
    """Whether this run may create a ledger where none exists: ``value`` (the variable migration_ledger_init
    as given) when set, else the environment's ANT_MIGRATION_LEDGER_INIT; false by default."""
    if value is not None and value != '':
        return validation.boolean(value, INIT_VAR)
    env = (os.environ if environ is None else environ).get(ENV_LEDGER_INIT, '')
    return validation.boolean(env, ENV_LEDGER_INIT) if env.strip() else False


def missing_message(shown_location):
    """What every front-end says about a location where no ledger exists (no secret: pass it redacted)."""
    return (f'no migration ledger at {shown_location}: nothing has been recorded there (a mistyped ledger location? '
            f'check --ledger, {ENV_LEDGER}, the [{INI_SECTION}] {INI_KEY} option of ansible.cfg or migration_ledger). '
            f'Nothing was done. To start a new ledger there: ant-network-migration --ledger <location> init, or run '
            f'the first playbook once with -e {INIT_VAR}=true (or {ENV_LEDGER_INIT}=true)')


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
    value = str(value).strip()
    if is_dsn(value):
        return value   # as given: a $ in a DSN's password is not an environment variable
    value = os.path.expandvars(value)
    if is_dsn(value):
        return value
    value = os.path.expanduser(value)
    if not os.path.isabs(value):
        value = os.path.join(base_dir or os.getcwd(), value)
    return os.path.normpath(value)


def resolve_ledger_location(explicit=None, with_source=False):
    """Where the ledger lives: a PostgreSQL DSN (URI or key/value) or an absolute SQLite path.

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
