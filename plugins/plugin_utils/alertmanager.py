# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's Alertmanager client (the preflight, the announcements): its status and routing, an alert, its
notification counters. Plain HTTP (one opener), errors as AlertmanagerUnavailable with a redacted message.
An address with ``user:password@`` (an Alertmanager behind a proxy with basic auth) sends them as an
Authorization header, never in the request line."""

from __future__ import annotations

import base64
import datetime
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import yaml

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError

_OPENER = urllib.request.build_opener()
RESOLVE_SKEW = 10.0   # seconds: an Alertmanager whose clock is behind the controller's by less still resolves
# Alertmanager 0.25 counts notification requests per integration type (no receiver label before 0.27).
_REQUESTS = re.compile(r'^alertmanager_notification_requests(_failed)?_total\{integration="([^"]+)"\} (\S+)$', re.M)


class AlertmanagerUnavailable(MigrationError):
    """No usable answer from Alertmanager."""


class Alertmanager:
    def __init__(self, url, timeout=10.0):
        self.url = str(url).rstrip('/')
        self.timeout = timeout
        self._base, self._auth = _split_credentials(self.url)

    def _call(self, path, body=None):
        headers = {'Content-Type': 'application/json'} if body is not None else {}
        if self._auth:
            headers['Authorization'] = self._auth
        request = urllib.request.Request(self._base + path, data=None if body is None else json.dumps(body).encode(),
                                         headers=headers, method='POST' if body is not None else 'GET')
        try:
            with _OPENER.open(request, timeout=self.timeout) as resp:
                return resp.read().decode('utf-8', 'replace')
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise AlertmanagerUnavailable('Alertmanager at %s is unreachable (%s)'
                                          % (redaction.redact_text(self.url), redaction.redact_text(exc))) from None

    def status(self):
        """``/api/v2/status``: version, cluster, and the configuration it runs (secrets masked by Alertmanager)."""
        data = json.loads(self._call('/api/v2/status'))
        config = yaml.safe_load((data.get('config') or {}).get('original') or '') or {}
        return {'version': (data.get('versionInfo') or {}).get('version'), 'config': config}

    def post_alert(self, labels, annotations, ends_in=300.0):
        """Send one alert (``ends_in`` seconds from now; 0 resolves it).

        A resolve carries an end already past (RESOLVE_SKEW seconds ago, and a start as early): Alertmanager
        merges an alert with the one it holds and, unless the newer one is resolved *when it arrives*, keeps
        the later end (types.Alert.Merge) - an end "now" arrives in the future and the alert stays active
        until its first ``ends_in``."""
        now = datetime.datetime.now(datetime.UTC)
        if ends_in <= 0:
            now -= datetime.timedelta(seconds=RESOLVE_SKEW)
        alert = {'labels': labels, 'annotations': annotations, 'startsAt': now.isoformat(),
                 'endsAt': (now + datetime.timedelta(seconds=max(ends_in, 0))).isoformat()}
        self._call('/api/v2/alerts', [alert])

    def silence(self, labels, duration, comment, created_by='ant-network-migration'):
        """Silence the alerts whose labels equal ``labels`` for ``duration`` seconds from now (its id)."""
        now = datetime.datetime.now(datetime.UTC)
        body = {'matchers': [{'name': k, 'value': str(v), 'isRegex': False, 'isEqual': True}
                             for k, v in sorted(labels.items())],
                'startsAt': now.isoformat(), 'endsAt': (now + datetime.timedelta(seconds=duration)).isoformat(),
                'createdBy': created_by, 'comment': comment}
        return json.loads(self._call('/api/v2/silences', body) or '{}').get('silenceID')

    def notification_requests(self):
        """{integration type: (requests, failed requests)} from Alertmanager's own /metrics."""
        out = {}
        for failed, integration, value in _REQUESTS.findall(self._call('/metrics')):
            sent, bad = out.get(integration, (0.0, 0.0))
            out[integration] = (sent, bad + float(value)) if failed else (sent + float(value), bad)
        return out


def _split_credentials(url):
    """(the address without ``user:password@``, a basic Authorization header or None)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return url, None   # not an address: the request fails and says so, redacted
    if parts.username is None:
        return url, None
    host = parts.hostname or ''
    netloc = ('[%s]' % host if ':' in host else host) + (':%d' % port if port else '')
    token = '%s:%s' % (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ''))
    return (urllib.parse.urlunsplit(parts._replace(netloc=netloc)),
            'Basic ' + base64.b64encode(token.encode()).decode('ascii'))


def receivers_of(config):
    """{receiver name: [integration types]} of an Alertmanager configuration (never a URL or a key)."""
    out = {}
    for receiver in config.get('receivers') or []:
        out[receiver.get('name')] = sorted(key[:-len('_configs')] for key, value in receiver.items()
                                           if key.endswith('_configs') and value)
    return out


def route_receivers(config):
    """Every receiver the routing tree sends to (root first)."""
    found, stack = [], [config.get('route') or {}]
    while stack:
        route = stack.pop(0)
        if route.get('receiver') and route['receiver'] not in found:
            found.append(route['receiver'])
        stack.extend(route.get('routes') or [])
    return found
