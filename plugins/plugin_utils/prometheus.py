# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one Prometheus client of the collection (gate, canary analysis, CLI).

A thin layer over prometheus-api-client's ``PrometheusConnect`` that adds what the
rollout needs: settings with environment fallbacks, TLS verification on by default
(optionally against a CA bundle), basic auth or a bearer token that never appears in
a message or a repr, a bounded number of retries, and one exception,
``PrometheusUnavailable``, for "cannot get an answer" -- which callers treat as a
failure (fail closed), never as "no problem found".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction, validation
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError

ENV_PREFIX = 'MIGRATION_PROMETHEUS_'
# option -> environment variable used when the option is not set.
ENV_FALLBACKS = {
    'url': ENV_PREFIX + 'URL',
    'validate_certs': ENV_PREFIX + 'VALIDATE_CERTS',
    'ca_path': ENV_PREFIX + 'CA_PATH',
    'username': ENV_PREFIX + 'USERNAME',
    'password': ENV_PREFIX + 'PASSWORD',
    'token': ENV_PREFIX + 'TOKEN',
    'timeout': ENV_PREFIX + 'TIMEOUT',
    'retries': ENV_PREFIX + 'RETRIES',
}
SECRET_OPTIONS = ('password', 'token')
RETRY_STATUSES = (429, 500, 502, 503, 504)

# Options shared by every plugin that talks to Prometheus (argument spec form).
CONNECTION_ARGSPEC = {
    'url': {'type': 'str'},
    'validate_certs': {'type': 'bool'},
    'ca_path': {'type': 'path'},
    'username': {'type': 'str'},
    'password': {'type': 'str', 'no_log': True},
    'token': {'type': 'str', 'no_log': True},
    'timeout': {'type': 'float'},
    'retries': {'type': 'int'},
}


class PrometheusError(MigrationError):
    """Base class of the client's errors."""


class PrometheusConfigError(PrometheusError):
    """The connection settings are incomplete or contradictory."""


class PrometheusUnavailable(PrometheusError):
    """No usable answer after the bounded retries: unreachable, HTTP error, bad reply.

    Gates treat this as a failure: the rollout never proceeds blind.
    """


class PrometheusQueryError(PrometheusUnavailable):
    """Prometheus answered but rejected the query (HTTP 400/422): a rules bug."""


@dataclass
class PrometheusSettings:
    url: str
    validate_certs: bool = True
    ca_path: str | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.5

    def __repr__(self):
        auth = 'token' if self.token else ('basic' if self.username else 'none')
        return ('PrometheusSettings(url=%r, validate_certs=%r, ca_path=%r, auth=%s, timeout=%r, retries=%r)'
                % (self.url, self.validate_certs, self.ca_path, auth, self.timeout, self.retries))

    __str__ = __repr__

    @classmethod
    def from_options(cls, options=None, env=None, default_url=None):
        """Settings from plugin options, then ``MIGRATION_PROMETHEUS_*``, then ``default_url``."""
        options = dict(options or {})
        env = os.environ if env is None else env
        values = {}
        for name, var in ENV_FALLBACKS.items():
            value = options.get(name)
            if value is None or value == '':
                value = env.get(var) or None
            if value is not None:
                values[name] = value
        url = values.pop('url', None) or default_url
        if not url:
            raise PrometheusConfigError('no Prometheus URL: set the url option, the %s environment variable '
                                        'or the inventory variable migration_prometheus_url' % ENV_FALLBACKS['url'])
        url = str(url).rstrip('/')
        if not url.startswith(('http://', 'https://')):
            raise PrometheusConfigError('Prometheus URL %r must start with http:// or https://' % url)
        if values.get('token') and (values.get('username') or values.get('password')):
            raise PrometheusConfigError('use either a bearer token or username/password for Prometheus, not both')
        if values.get('password') and not values.get('username'):
            raise PrometheusConfigError('a Prometheus password needs a username')
        settings = cls(url=url)
        if 'validate_certs' in values:
            try:
                settings.validate_certs = validation.boolean(values['validate_certs'], 'validate_certs')
            except validation.InputError as exc:
                raise PrometheusConfigError(str(exc)) from None
        for name in ('ca_path', 'username', 'password', 'token'):
            if values.get(name):
                setattr(settings, name, str(values[name]))
        try:
            if 'timeout' in values:
                settings.timeout = float(values['timeout'])
            if 'retries' in values:
                settings.retries = int(values['retries'])
        except (TypeError, ValueError) as exc:
            raise PrometheusConfigError('Prometheus timeout/retries must be numbers: %s' % exc) from exc
        if settings.retries < 0 or settings.timeout <= 0:
            raise PrometheusConfigError('Prometheus retries must be >= 0 and timeout > 0')
        return settings


def _retry(settings):
    from urllib3.util.retry import Retry

    return Retry(total=settings.retries, connect=settings.retries, read=settings.retries,
                 status=settings.retries, backoff_factor=settings.backoff,
                 status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({'GET', 'POST'}),
                 raise_on_status=False)


class PrometheusClient:
    """Instant queries against one Prometheus server.

    ``connect`` is the PrometheusConnect class (injectable for tests). ``queries``
    counts the HTTP queries made (the benchmark and the tests read it).
    """

    def __init__(self, settings, connect=None):
        self.settings = settings
        self.queries = 0
        if connect is None:
            from prometheus_api_client import PrometheusConnect as connect
        import requests

        session = requests.Session()
        session.verify = (settings.ca_path or True) if settings.validate_certs else False
        headers = {}
        auth = None
        if settings.token:
            headers['Authorization'] = 'Bearer %s' % settings.token
        elif settings.username:
            auth = (settings.username, settings.password or '')
        self._prom = connect(url=settings.url, headers=headers or None, auth=auth, retry=_retry(settings),
                             session=session, timeout=settings.timeout)
        self._http = (session, headers, auth)

    def __repr__(self):
        return 'PrometheusClient(%r)' % (self.settings,)

    def query(self, promql):
        """Run an instant query; return ``[{'metric': {labels}, 'value': float}]``.

        Raises PrometheusUnavailable (or PrometheusQueryError for a rejected query).
        """
        from prometheus_api_client.exceptions import PrometheusApiClientException

        self.queries += 1
        try:
            result = self._prom.custom_query(query=promql)
        except PrometheusApiClientException as exc:
            text = str(exc)
            if 'Status Code 400' in text or 'Status Code 422' in text:
                raise PrometheusQueryError('Prometheus at %s rejected a query: %s; query: %s'
                                           % (self.settings.url, _clip(text), _clip(promql, 300))) from None
            if 'Status Code 401' in text or 'Status Code 403' in text:
                raise PrometheusUnavailable('Prometheus at %s refused the credentials (%s): check username/password '
                                            'or token' % (self.settings.url, text.split(' (', maxsplit=1)[0])) from None
            raise PrometheusUnavailable('Prometheus at %s answered with an error after %d retries: %s'
                                        % (self.settings.url, self.settings.retries, _clip(text))) from None
        except Exception as exc:  # requests/urllib3 connection, TLS and timeout errors
            raise PrometheusUnavailable('Prometheus at %s is unreachable (%s) after %d retries'
                                        % (self.settings.url, _redact(short_cause(exc), self.settings),
                                           self.settings.retries)) from None
        return _samples(result, self.settings.url)

    def rules(self):
        """The rule groups Prometheus has loaded (``/api/v1/rules``: ``[{name, file, rules: [...]}]``)."""
        session, headers, auth = self._http
        try:
            resp = session.get(self.settings.url + '/api/v1/rules', headers=headers, auth=auth,
                               timeout=self.settings.timeout)
            resp.raise_for_status()
            return resp.json()['data']['groups']
        except Exception as exc:  # requests' connection, HTTP and JSON errors alike
            raise PrometheusUnavailable('Prometheus at %s did not list its rules (%s)'
                                        % (self.settings.url, _redact(short_cause(exc), self.settings))) from None

    def close(self):
        self._prom.close()


_ERRNO = re.compile(r'\[Errno -?\d+\] ([^\'"()\]]+)')


def short_cause(exc):
    """The cause of a connection error in a few words ("Connection refused", "timed out").

    requests' messages carry the whole request URL, i.e. the URL-encoded PromQL: hundreds of
    characters that say nothing about the cause.
    """
    text = str(exc)
    match = _ERRNO.search(text)
    if match:
        return match.group(1).strip()
    lowered = text.lower()
    if 'timed out' in lowered or 'timeout' in type(exc).__name__.lower():
        return 'timed out'
    if 'certificate' in lowered or 'ssl' in type(exc).__name__.lower():
        return 'TLS error: %s' % _clip(re.sub(r'with url: \S+', '', text), 160)
    return '%s: %s' % (type(exc).__name__, _clip(re.sub(r'with url: \S+', '', text), 160))


def _clip(text, limit=200):
    text = str(text)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _redact(text, settings):
    return redaction.redact_text(text, secrets=[getattr(settings, name) for name in SECRET_OPTIONS])


def _samples(result, url):
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        result = [{'metric': {}, 'value': result}]  # a scalar
    if not isinstance(result, list):
        raise PrometheusUnavailable('Prometheus at %s returned an unexpected result: %r' % (url, result))
    out = []
    for item in result:
        try:
            out.append({'metric': dict(item.get('metric') or {}), 'value': float(item['value'][1])})
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise PrometheusUnavailable('Prometheus at %s returned an unexpected sample: %r' % (url, item)) from None
    return out


def client_from_options(options=None, env=None, default_url=None, connect=None):
    return PrometheusClient(PrometheusSettings.from_options(options, env=env, default_url=default_url),
                            connect=connect)
