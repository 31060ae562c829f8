# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a fleet host needs before the collection's modules run on it, and what to say when it lacks it.

Two things fail on a host with messages that do not say what is wrong: a become method that asks for a
password nobody gave ("Missing sudo password"), and a Python too old (or not a Python) for the modules
("Module result deserialization failed: No start of json char found"). The host_check action asks the
host once before the first module (health.yml, and the discover step of waves, the canary and gradual
rollbacks) and these functions word the answer: the host, the fix, the interpreter, its version and the
minimum. No I/O here.
"""

from __future__ import annotations

import re

# The oldest target Python the modules support: ansible-core 2.19's own minimum for modules
# (ansible.module_utils.basic._PY_MIN), which ansible-test sanity's compile tests hold the modules to.
MIN_PYTHON = (3, 8)
# One command, any Python since 2.6: prints "3.11.7"; the fallback reads `--version` ("Python 3.6.15").
VERSION_CODE = 'import sys; print(".".join(str(n) for n in sys.version_info[:3]))'
_VERSION = re.compile(r'(?:Python\s+)?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?')
_PASSWORD_WORDS = ('password', 'passphrase')


def _text(version):
    return '.'.join(str(part) for part in version)


def parse_version(output):
    """(major, minor, micro) from what an interpreter printed, or None."""
    found = _VERSION.search(output or '')
    if not found:
        return None
    return tuple(int(part) for part in found.groups(default='0'))


def python_problem(host, interpreter, version, detail=''):
    """The message for a host whose interpreter is missing or older than MIN_PYTHON, or None when it is fine.

    ``version``: what parse_version() found (None: it did not run, or printed no version).
    """
    minimum = _text(MIN_PYTHON)
    fix = ('install Python %s or newer on the host and point ansible_python_interpreter (inventory) at it'
           % minimum)
    if version is None:
        detail = ' '.join((detail or '').split())[:300]
        return ('%s: the Python interpreter %s did not run or printed no version (%s): the collection\'s modules '
                'need Python %s or newer; %s. Nothing was changed on the host.'
                % (host, interpreter, detail or 'no output', minimum, fix))
    if tuple(version[:2]) < MIN_PYTHON:
        return ('%s: the Python interpreter %s is Python %s, older than the Python %s the collection\'s modules '
                'need; %s. Nothing was changed on the host.' % (host, interpreter, _text(version), minimum, fix))
    return None


def become_problem(host, error, method='sudo', user=None, become_user=None):
    """The message for a host where becoming ``become_user`` failed with ``error`` (Ansible's text)."""
    method = method or 'sudo'
    who = ('%s as %s' % (method, user)) if user else method
    target = become_user or 'root'
    error = ' '.join(str(error or '').split())
    if any(word in error.lower() for word in _PASSWORD_WORDS):
        nopasswd = ('; or let the account become %s without a password (sudoers: "%s ALL=(%s) NOPASSWD: ALL", or '
                    'the commands the collection runs)' % (target, user or '<account>', target)
                    if method == 'sudo' else '')
        return ('%s: %s asks for a password to become %s and none was given (%s). Run the playbook with '
                '--ask-become-pass (-K), or set ansible_become_password for the host (from Ansible Vault; in AWX, '
                'a machine credential with a privilege escalation password)%s. Nothing was changed on the host.'
                % (host, who, target, error, nopasswd))
    return ('%s: %s could not become %s: %s. Check the become settings of the host (ansible_become_method, '
            'ansible_become_user, its sudoers). Nothing was changed on the host.' % (host, who, target, error))
