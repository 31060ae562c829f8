# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who may talk to the dashboard (docs/dashboard.md, "Security").

- ``Host``: only the names the dashboard is reached by (the listen address, loopback names when it
  listens on loopback or everywhere, the configured --allowed-host names). A page whose own name an
  attacker points at this machine (DNS rebinding: ``Host: attacker.example``) gets nothing.
- ``Origin``: a browser names the page that makes a request; a WebSocket or an API request from any
  page but the dashboard's own (another port of this machine, another site) is refused. Requests
  without Origin (curl, Prometheus, the page's own GETs and navigation) are not cross-origin.
- the token: ``Authorization: Bearer <token>``, or the session cookie the page got when it was
  opened with ``?token=`` (the one place a token is read from a URL); compared in constant time.
"""

from __future__ import annotations

import hmac
import urllib.parse

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse

SESSION_COOKIE = 'ant_dashboard_session'
_SESSION_CONTEXT = b'ant-network-migration dashboard session'
LOOPBACK_NAMES = ('localhost', '127.0.0.1', '::1')


def _hostname(authority):
    """The host name of ``host[:port]`` (lower case, IPv6 without brackets), None when malformed."""
    try:
        parts = urllib.parse.urlsplit('//' + authority)
        parts.port   # noqa: B018 (raises ValueError for a malformed port)
    except ValueError:
        return None
    return parts.hostname


class HostPolicy:
    """The Host names a dashboard answers (``names``) and the names an operator configured
    (``configured``, a subset: --allowed-host), whose pages on a default port are trusted origins
    even when a reverse proxy rewrites Host."""

    def __init__(self, names=LOOPBACK_NAMES, configured=()):
        self.configured = frozenset(_normal(n) for n in configured if _normal(n))
        self.names = frozenset(_normal(n) for n in names if _normal(n)) | self.configured

    def allows_host(self, host_header):
        return _matches(_hostname(host_header or ''), self.names)

    def allows_origin(self, origin, host_header):
        """Same origin as the request (the Origin's ``host[:port]`` is the Host header), or a
        configured name on its default port."""
        parts = urllib.parse.urlsplit(origin)
        if parts.scheme not in ('http', 'https') or not parts.netloc:
            return False     # "null" (a sandboxed frame, a file), or not a web origin
        if parts.netloc.lower() == (host_header or '').lower():
            return True
        try:
            default_port = parts.port is None
        except ValueError:
            return False
        return default_port and _matches(parts.hostname, self.configured)


def _normal(name):
    return str(name).strip().lower().strip('[]')


def _matches(name, names):
    return bool(name) and (name in names or any(n.startswith('*.') and name.endswith(n[1:]) for n in names))


class RequestBoundary:
    """ASGI middleware: the Host allow-list and the same-origin rule, on every HTTP request and
    WebSocket handshake, before any endpoint runs."""

    def __init__(self, app, policy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope, receive, send):
        if scope['type'] not in ('http', 'websocket'):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get('host')
        origin = headers.get('origin')
        refusal = None
        if not self.policy.allows_host(host):
            refusal = (400, 'this dashboard does not answer to that Host name (start it with --allowed-host NAME '
                            'to add one)')
        elif origin is not None and not self.policy.allows_origin(origin, host):
            refusal = (403, 'a page of another origin may not use this dashboard')
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope['type'] == 'websocket':
            await receive()                       # websocket.connect
            await send({'type': 'websocket.close', 'code': 1008})   # before accept: the handshake gets 403
        else:
            status, text = refusal
            await PlainTextResponse(f'{status} {text}\n', status_code=status)(scope, receive, send)


def session_value(token):
    """The session cookie's value for ``token`` (derived, so the cookie is not the token itself)."""
    return hmac.new(token.encode(), _SESSION_CONTEXT, 'sha256').hexdigest()


def _same(offered, expected):
    return hmac.compare_digest(offered.encode(), expected.encode())


def authorized(connection: HTTPConnection, token, url_token=False):
    """Whether ``connection`` carries ``token`` (always, without one): a Bearer header, the session
    cookie, or - ``url_token``, the page only - ``?token=``."""
    if not token:
        return True
    auth = connection.headers.get('authorization') or ''
    if auth.lower().startswith('bearer ') and _same(auth[7:].strip(), token):
        return True
    cookie = connection.cookies.get(SESSION_COOKIE)
    if cookie and _same(cookie, session_value(token)):
        return True
    return bool(url_token) and _same(connection.query_params.get('token') or '', token)
