# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one redaction: what may be printed, logged, stored or returned from anything we produce.

Secrets are replaced by ``********``, never dropped, so that a reader sees that something was there.
The rules (docs/security.md, "What is redacted"):

- a value under a key whose name is secret (SECRET_KEY_WORDS: password, sslpassword, token, secret,
  credentials, dsn, auth, api_key, routing_key, ..., and Slack's ``api_url``);
- in an address ``scheme://user:PASSWORD@host...``: everything between ``user:`` and the *last* ``@``
  of the address (an unencoded ``@`` in the password hides the rest of it, never leaks its tail);
- in an address's query: the value of every parameter whose name is secret (``?password=``,
  ``sslpassword=``, ``token=``, ``access_token=``, ``api_key=``, ``key=``, ``sig=``, ...);
- an address whose *path* is the secret (webhooks): everything from the first secret path segment on.
  A segment is secret when it follows a webhook marker segment (``hooks``, ``webhook``, ``webhooks``,
  ``webhookb2``, ``services`` on hooks.slack.com, ``triggers``) or looks like a credential itself (at
  least 20 characters of letters, digits, ``_`` and ``-``, with both letters and digits);
- outside addresses, ``name=value`` and ``name: value`` pairs whose name is secret: libpq key/value
  DSNs (``host=db password=s3cret``, quoted values with escapes), ``PGPASSWORD=...``, ``token: ...``;
- every value given in ``secrets`` (known values, e.g. a Prometheus password), wherever it appears.

Used by the ledger (every JSON column: extra vars, events, summaries), the action plugins (every result
and error), the migration_tracker callback (summary, warnings), the Prometheus client's errors, and
the CLI and the dashboard (every output).
"""

from __future__ import annotations

import re

REDACTED = '********'

# Words that make a key (or a query parameter, or a key=value name) secret, anywhere in the name.
SECRET_KEY_WORDS = ('password', 'passwd', 'passphrase', 'secret', 'token', 'credential', 'apikey', 'api_key',
                    'api-key', 'private_key', 'privatekey', 'private-key', 'routing_key', 'service_key',
                    'authorization', 'bearer', 'cookie', 'session_key', 'dsn', 'vault')
# Words that make a key secret only as a whole part of the name (``auth`` but not ``author``).
SECRET_KEY_PARTS = ('pass', 'pwd', 'auth', 'sig', 'signature')
# Keys secret by their exact name: Slack's webhook address in Alertmanager's slack_configs.
SECRET_KEY_NAMES = ('api_url',)
# ``key`` is secret as a query parameter (``?key=``, Google-style API keys), not as a key of our own data.
_QUERY_KEY = 'key'

_PART_SPLIT = re.compile(r'[^a-z0-9]+')
_WEBHOOK_MARKERS = ('hooks', 'webhook', 'webhooks', 'webhookb2', 'triggers')
_TOKEN_SEGMENT = re.compile(r'^[A-Za-z0-9_-]{20,}$')
# An address: a scheme, ://, then anything up to a blank or a quote or bracket that closes it.
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>`]+""")
_PORT = re.compile(r'^[0-9]*$')
_QUERY_PAIR = re.compile(r'([?&;])([^=&#;]+)=([^&#;]*)')
# name=value / name: value outside addresses; a value is quoted ('...' with \' escapes, "...") or runs to a blank.
_PAIR = re.compile(r"""(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>["']?\s*[=:]\s*)"""
                   r"""(?P<value>'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|(?:(?:Bearer|Basic|Token)\s+)?[^\s,;]+)""",
                   re.IGNORECASE)


def is_secret_key(name, in_query=False):
    """Whether a key (a dict key, a query parameter, a ``name=`` in text) names a secret."""
    text = str(name).lower()
    if text in SECRET_KEY_NAMES or any(word in text for word in SECRET_KEY_WORDS):
        return True
    parts = [part for part in _PART_SPLIT.split(text) if part]
    return any(part in SECRET_KEY_PARTS for part in parts) or (in_query and _QUERY_KEY in parts)


def _secret_path(host, segments):
    """The index of the first secret segment of an address's path, or None."""
    for index, segment in enumerate(segments):
        lowered = segment.lower()
        if index and segments[index - 1].lower() in _WEBHOOK_MARKERS:
            return index
        if index and lowered != 'services' and segments[index - 1].lower() == 'services' \
                and host.lower().endswith('hooks.slack.com'):
            return index
        if _TOKEN_SEGMENT.match(segment) and any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment):
            return index
    return None


def _password_end(rest):
    """Where the password of ``user:password@host...`` (the address after ``://``) ends, or None.

    As URL parsers read it, the authority ends at the first / ? or #, and the password at its last @.
    A password with an unencoded / ? # in it ends the authority early; then, when what follows the
    colon is no port, the password runs to the last @ of the whole address: its tail never leaks.
    """
    authority = re.split(r'[/?#]', rest, maxsplit=1)[0]
    if rest.startswith('[') or ':' not in authority.split('@', 1)[0] and '@' in authority:
        return None   # an IPv6 literal, or a user without password
    if '@' in authority:
        return authority.rindex('@') if ':' in authority[:authority.index('@')] else None
    after_colon = authority.partition(':')[2]
    if ':' in authority and not _PORT.match(after_colon) and '@' in rest:
        return rest.rindex('@')
    return None


def _redact_url(match):
    url = match.group(0)
    scheme, rest = url.split('://', 1)
    end = _password_end(rest)
    if end is not None:
        rest = rest[:rest.index(':') + 1] + REDACTED + rest[end:]
    authority_end = min((i for i in (rest.find('/'), rest.find('?'), rest.find('#')) if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    path, sep, query = tail.partition('?')
    if path.startswith('/'):
        fragment = ''
        if '#' in path:
            path, fragment = path.split('#', 1)
            fragment = '#' + fragment
        segments = path[1:].split('/')
        host = authority.rsplit('@', 1)[-1]
        index = _secret_path(host, segments)
        if index is not None:
            path = '/' + '/'.join(segments[:index] + [REDACTED])
            query, sep, fragment = ('', '', '') if not sep else (query, sep, '')
        path += fragment
    if sep:
        query = _QUERY_PAIR.sub(lambda m: m.group(1) + m.group(2) + '=' + (
            REDACTED if is_secret_key(m.group(2), in_query=True) and m.group(3) else m.group(3)), '?' + query)[1:]
    return '%s://%s%s%s%s' % (scheme, authority, path, sep, query)


def _redact_pair(match):
    value = match.group('value')
    if not is_secret_key(match.group('name')) or not value or value in ('""', "''"):
        return match.group(0)
    quote = value[0] if value[0] in '\'"' else ''
    return match.group('name') + match.group('sep') + quote + REDACTED + quote


def _redact_pairs(text):
    return _PAIR.sub(_redact_pair, text)


def redact_text(text, secrets=()):
    """``text`` with the secrets it holds replaced (the rules above), and every one of ``secrets``."""
    if text is None:
        return text
    text = str(text)
    for secret in secrets or ():
        if secret:
            text = text.replace(str(secret), REDACTED)
    if '://' not in text and '=' not in text and ':' not in text:
        return text
    # Addresses first (their own rules), then name=value pairs in what lies between them.
    out, last = [], 0
    for match in _URL.finditer(text):
        out.append(_redact_pairs(text[last:match.start()]))
        out.append(_redact_url(match))
        last = match.end()
    out.append(_redact_pairs(text[last:]))
    return ''.join(out)


def redact(value):
    """A copy of ``value`` with secrets replaced: values under secret keys, secrets inside text."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(k) and v not in (None, '')
                    and not isinstance(v, (dict, list, tuple, bool)) else redact(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def location_secrets(location):
    """The password a ledger location holds, as far as it can be told without parsing it as libpq would:
    in a URI everything between ``user:`` and the *last* ``@`` of the whole location (blanks included)."""
    text = str(location or '').strip()
    scheme, sep, rest = text.partition('://')
    if not sep or '@' not in rest:
        return []
    userinfo = rest[:rest.rindex('@')]
    return [userinfo.split(':', 1)[1]] if ':' in userinfo and userinfo.split(':', 1)[1] else []


def redact_location(location):
    """A ledger location (SQLite path or PostgreSQL DSN, either form) safe to show. Unlike in free text, where an
    address ends at the first blank, the whole location is one address: a blank in its password hides it too."""
    return redact_text(location, secrets=location_secrets(location))
