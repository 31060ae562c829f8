# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Small helpers shared by the ledger's parts: timestamps, JSON columns, run ids, SQL bits,
and the controller identity bits the lock needs.

``redact``, ``default_holder`` and ``controller_pid`` are moving to their own homes (identity and
redaction in plugin_utils); they stay importable from the ledger package.
"""

from __future__ import annotations

import datetime
import getpass
import json
import multiprocessing
import os
import re
import socket

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.errors import LedgerError

# Set by the callback in the controller process before any worker forks, so action plugins know
# which run they belong to and which lock holder is "us".
ENV_RUN_ID = 'ANT_MIGRATION_RUN_ID'
ENV_LOCK_HOLDER = 'ANT_MIGRATION_LOCK_HOLDER'
ENV_CONTROLLER_PID = 'ANT_MIGRATION_CONTROLLER_PID'

_SECRET_KEY = re.compile(r'pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|dsn|auth|vault',
                         re.IGNORECASE)
_URL_PASSWORD = re.compile(r'(://[^:/@\s]+:)[^@\s]*@')
REDACTED = '********'


def redact(value):
    """A copy of ``value`` with secrets replaced: keys that look secret, passwords inside URLs."""
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, '') else redact(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r'\1' + REDACTED + '@', value)
    return value


def default_holder(operator=None):
    """``operator@hostname pid N`` — the lock holder string of this process."""
    return f'{operator or _current_user()}@{socket.gethostname()} pid {controller_pid()}'


def _current_user():
    try:
        return getpass.getuser()
    except Exception:  # pylint: disable=broad-except
        return 'unknown'


def _iso(epoch):
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).isoformat(timespec='seconds')


def _json(data):
    return json.dumps(data or {}, sort_keys=True, default=str)


def _unjson(text):
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {'raw': text}


def _run_id(value):
    """Run ids arrive as ints or as strings (ANT_MIGRATION_RUN_ID); store ints."""
    if value in (None, ''):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LedgerError(f'run id must be an integer, got {value!r}') from None



def controller_pid():
    """The pid of the ansible-playbook (or CLI) process this code runs for.

    Action plugins run in worker processes forked per task; the lock must name the controller,
    not the short-lived worker, or it would look dead as soon as the task ends.
    """
    env = os.environ.get(ENV_CONTROLLER_PID)
    if env and env.isdigit():
        return int(env)
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid else os.getpid()



def _marks(values):
    return ', '.join('?' * len(values))


def _where(conditions):
    return ' WHERE ' + ' AND '.join(conditions) if conditions else ''


def _pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, TypeError, ValueError):
        return True
    return True
