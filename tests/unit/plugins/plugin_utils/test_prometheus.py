# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Prometheus client: settings and env fallbacks, secrets, bounded retries, fail closed."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import prometheus as prom


def test_settings_from_options_then_env_then_default():
    env = {'MIGRATION_PROMETHEUS_URL': 'https://env:9090/', 'MIGRATION_PROMETHEUS_TOKEN': 's3cret',
           'MIGRATION_PROMETHEUS_VALIDATE_CERTS': 'no', 'MIGRATION_PROMETHEUS_RETRIES': '1'}
    settings = prom.PrometheusSettings.from_options({'url': None}, env=env, default_url='http://inventory:9090')
    assert (settings.url, settings.token, settings.validate_certs, settings.retries) == \
        ('https://env:9090', 's3cret', False, 1)
    settings = prom.PrometheusSettings.from_options({'url': 'http://opt:9090'}, env=env)
    assert settings.url == 'http://opt:9090'
    settings = prom.PrometheusSettings.from_options({}, env={}, default_url='http://inventory:9090')
    assert settings.url == 'http://inventory:9090' and settings.validate_certs is True


@pytest.mark.parametrize('options, message', [
    ({}, 'no Prometheus URL'),
    ({'url': 'prometheus:9090'}, 'must start with http'),
    ({'url': 'http://p', 'token': 't', 'username': 'u'}, 'either a bearer token or username/password'),
    ({'url': 'http://p', 'password': 'p'}, 'needs a username'),
    ({'url': 'http://p', 'retries': -1}, 'retries must be >= 0'),
])
def test_bad_settings(options, message):
    with pytest.raises(prom.PrometheusConfigError, match=message):
        prom.PrometheusSettings.from_options(options, env={})


def test_secrets_never_in_repr():
    settings = prom.PrometheusSettings.from_options({'url': 'http://p', 'username': 'u', 'password': 'hunter2'},
                                                    env={})
    client = prom.PrometheusClient(settings)
    assert 'hunter2' not in repr(settings) + str(settings) + repr(client)
    assert 'auth=basic' in repr(settings)
    token = prom.PrometheusSettings.from_options({'url': 'http://p', 'token': 'tok-123'}, env={})
    assert 'tok-123' not in repr(token) and 'auth=token' in repr(token)


class _Handler(BaseHTTPRequestHandler):
    status = 200
    calls = 0
    seen_auth = []

    def do_GET(self):  # noqa: N802
        type(self).calls += 1
        type(self).seen_auth.append(self.headers.get('Authorization'))
        body = json.dumps({'status': 'success', 'data': {'resultType': 'vector', 'result': [
            {'metric': {'host': 'h1'}, 'value': [1, '0.25']}]}}).encode()
        self.send_response(self.status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.status, _Handler.calls, _Handler.seen_auth = 200, 0, []
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d' % httpd.server_address[1]
    httpd.shutdown()


def client_for(url, **options):
    settings = prom.PrometheusSettings.from_options(dict(options, url=url), env={})
    settings.backoff = 0.01
    return prom.PrometheusClient(settings)


def test_query_returns_floats_and_sends_the_token(server):
    client = client_for(server, token='tok-123')
    assert client.query('up') == [{'metric': {'host': 'h1'}, 'value': 0.25}]
    assert client.queries == 1 and _Handler.seen_auth == ['Bearer tok-123']


def test_http_errors_are_retried_a_bounded_number_of_times(server):
    _Handler.status = 503
    client = client_for(server, retries=2)
    with pytest.raises(prom.PrometheusUnavailable, match='answered with an error after 2 retries'):
        client.query('up')
    assert _Handler.calls == 3


def test_bad_query_and_bad_credentials(server):
    _Handler.status = 400
    with pytest.raises(prom.PrometheusQueryError, match='rejected a query'):
        client_for(server, retries=0).query('up{')
    _Handler.status = 401
    with pytest.raises(prom.PrometheusUnavailable, match='refused the credentials') as info:
        client_for(server, retries=0, username='u', password='hunter2').query('up')
    assert 'hunter2' not in str(info.value)


def test_unreachable_raises_prometheus_unavailable():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    client = client_for('http://127.0.0.1:%d' % port, retries=1, password='hunter2', username='u')
    query = 'sum by (host) (rate(ant_networking_transport_requests_total{transport="iroh"}[10s]))'
    with pytest.raises(prom.PrometheusUnavailable, match=r'is unreachable \(Connection refused\) after 1 retries'
                       ) as info:
        client.query(query)
    assert 'hunter2' not in str(info.value)
    # the cause in a few words, not the URL-encoded query (finding 4)
    assert 'api/v1/query' not in str(info.value) and len(str(info.value)) < 120
