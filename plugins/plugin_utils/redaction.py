# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one redaction: what may be printed, logged, stored or returned from anything we produce.

Secrets are replaced, never dropped, so that a reader sees that something was there:
values under keys that look secret (password, token, dsn ...), passwords inside URLs and
DSNs (``postgresql://user:SECRET@host/db``), and ``password=...`` in libpq key/value DSNs.
Used by the ledger (stored extra vars, messages), the action plugins' results and messages,
the Prometheus client's errors and the CLI.
"""

from __future__ import annotations

import re

REDACTED = '********'

SECRET_KEY = re.compile(r'pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|dsn|auth|vault'
                        r'|routing[_-]?key|service[_-]?key|^api_url$',  # Alertmanager receivers (PagerDuty, Slack)
                        re.IGNORECASE)
# user:password@ in a URL or DSN; the user part may be empty (postgresql://:pw@host).
_URL_PASSWORD = re.compile(r'(://[^:/@\s]*:)[^@\s]*@')
# libpq key/value form: password=secret or password='se cret'
_KV_PASSWORD = re.compile(r"""(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)""", re.IGNORECASE)


def redact_text(text, secrets=()):
    """``text`` with passwords in URLs/DSNs, and every one of ``secrets`` (known values), replaced."""
    if text is None:
        return text
    text = str(text)
    for secret in secrets or ():
        if secret:
            text = text.replace(str(secret), REDACTED)
    text = _URL_PASSWORD.sub(r'\1' + REDACTED + '@', text)
    return _KV_PASSWORD.sub(r'\1' + REDACTED, text)


def redact(value):
    """A copy of ``value`` with secrets replaced: keys that look secret, passwords inside text."""
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEY.search(str(k)) and v not in (None, '') and not isinstance(v, (dict, list))
                    else redact(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_location(location):
    """A ledger location (SQLite path or PostgreSQL DSN) safe to show."""
    return redact_text(location)
