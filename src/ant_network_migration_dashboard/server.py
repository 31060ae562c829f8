# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the service: the listen address, the token rule, uvicorn."""

from __future__ import annotations

import ipaddress
import os
import re
import socket

ENV_TOKEN = 'ANT_DASHBOARD_TOKEN'
ENV_TOKEN_FILE = 'ANT_DASHBOARD_TOKEN_FILE'
ENV_ALLOWED_HOSTS = 'ANT_DASHBOARD_ALLOWED_HOSTS'
DEFAULT_LISTEN = '127.0.0.1:8090'
WILDCARD_ADDRESSES = ('0.0.0.0', '::')
LOOPBACK_NAMES = ('localhost', '127.0.0.1', '::1')
_HOST_NAME = re.compile(r'(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?')


class DashboardConfigError(ValueError):
    """Bad dashboard settings; the message names the option and the accepted form."""


def parse_listen(text):
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port)."""
    text = str(text or '').strip()
    form = 'HOST:PORT, e.g. 127.0.0.1:8090 or [::1]:8090'
    if text.startswith('['):
        host, sep, port = text[1:].partition(']:')
    else:
        host, sep, port = text.rpartition(':')
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DashboardConfigError(f'--listen {text!r} is not {form}')
    return host, int(port)


def is_loopback(host):
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(token_file=None, env=None):
    """The access token: ``token_file`` (or ANT_DASHBOARD_TOKEN_FILE), else ANT_DASHBOARD_TOKEN; None if unset."""
    env = os.environ if env is None else env
    path = token_file or env.get(ENV_TOKEN_FILE)
    if path:
        try:
            with open(path, encoding='utf-8') as handle:
                token = handle.read().strip()
        except OSError as exc:
            raise DashboardConfigError(f'--token-file {path}: cannot read it ({exc.strerror})') from None
        if not token:
            raise DashboardConfigError(f'--token-file {path} is empty; put the token on its first line')
        return token
    return (env.get(ENV_TOKEN) or '').strip() or None


def check_exposure(host, token):
    """Loopback needs no token; any other address requires one."""
    if not is_loopback(host) and not token:
        raise DashboardConfigError(
            f'--listen {host}: listening beyond loopback requires an access token: set {ENV_TOKEN} '
            f'or {ENV_TOKEN_FILE} / --token-file (a file holding the token); clients then send '
            '"Authorization: Bearer <token>" (the page: ?token=<token>)')


def host_names(listen_host, configured=(), env=None):
    """(names, configured): the Host names the dashboard answers - the listen address; the loopback
    names when it listens on loopback or on every address; this machine's names when on every
    address; the configured ones (--allowed-host, ANT_DASHBOARD_ALLOWED_HOSTS, comma-separated;
    ``*.example.com`` for a domain) - and the configured ones alone."""
    env = os.environ if env is None else env
    extra = [n.strip() for n in list(configured or ()) + env.get(ENV_ALLOWED_HOSTS, '').split(',') if n.strip()]
    for name in extra:
        if not _HOST_NAME.fullmatch(name):
            raise DashboardConfigError(f'--allowed-host {name!r} is not a host name or address (no scheme, no port; '
                                       '*.example.com for a domain)')
    names = set(extra)
    wildcard = listen_host in WILDCARD_ADDRESSES
    if not wildcard:
        names.add(listen_host)
    if wildcard or is_loopback(listen_host):
        names.update(LOOPBACK_NAMES)
    if wildcard:
        names.update(n for n in (socket.gethostname(), socket.getfqdn()) if n)
    return sorted(names), sorted(extra)


def url_for(host, port):
    shown = f'[{host}]' if ':' in host else host
    if host in ('0.0.0.0', '::'):
        shown = '127.0.0.1'
    return f'http://{shown}:{port}/'


def serve(ledger_location, host, port, prometheus_url=None, token=None, poll_interval=1.0, prometheus_interval=5.0,
          overrides=None, allowed_hosts=None, configured_hosts=(), on_ready=None, alert_settings=None):
    """Run the service under uvicorn until interrupted; 0 once it served, 1 when it could not start.
    ``allowed_hosts``, ``configured_hosts``: host_names() for ``host`` (computed here when None).
    ``on_ready(service)`` is called once it listens."""
    # uvicorn, Starlette and prometheus_client take 0.25 s to import: only this command loads them,
    # not every other command of the CLI that imports this module.
    import uvicorn

    from .app import Service, create_app
    from .boundary import HostPolicy

    if allowed_hosts is None:
        allowed_hosts, configured_hosts = host_names(host)
    service = Service(ledger_location, prometheus_url=prometheus_url, poll_interval=poll_interval,
                      prometheus_interval=prometheus_interval, token=token, overrides=overrides,
                      alert_settings=alert_settings,
                      host_policy=HostPolicy(allowed_hosts, configured_hosts))
    config = uvicorn.Config(create_app(service), host=host, port=port, log_level='warning', ws='websockets-sansio',
                            ws_ping_interval=20.0, lifespan='on', access_log=False)
    server = uvicorn.Server(config)
    if on_ready:
        original = server.startup

        async def startup(sockets=None):
            await original(sockets=sockets)
            if server.started:
                on_ready(service)

        server.startup = startup
    server.run()
    return 0 if server.started else 1
