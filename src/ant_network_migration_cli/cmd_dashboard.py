# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``dashboard``: start the live dashboard service (ant_network_migration_dashboard) with the CLI's
ledger, Prometheus and inventory settings."""

from __future__ import annotations

import click

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction
from ant_network_migration_common import ledger_status
from ant_network_migration_dashboard import server

from . import common, fleet
from .errors import EXIT_CODES_HELP, BadInput


def _inventory_values(settings, *names):
    """The inventory's values of ``names`` (None each without an inventory), read once."""
    try:
        inventory = fleet.load_inventory(settings.inventory)
    except BadInput:
        return [None] * len(names)
    return [common.inventory_var(inventory, name) for name in names]


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--listen', default=server.DEFAULT_LISTEN, show_default=True, metavar='HOST:PORT',
              help='Address to serve on. Anything but loopback requires a token.')
@click.option('--token-file', type=click.Path(dir_okay=False), metavar='PATH',
              help=f'File holding the access token (else ${server.ENV_TOKEN_FILE}, else ${server.ENV_TOKEN}).')
@click.option('--allowed-host', 'allowed_hosts', multiple=True, metavar='NAME',
              help='A name clients reach the dashboard by (repeatable; also $ANT_DASHBOARD_ALLOWED_HOSTS, comma-'
              'separated). Requests for any other Host are refused (DNS rebinding). Always allowed: the listen '
              "address, loopback names on loopback or 0.0.0.0, this machine's names on 0.0.0.0.")
@click.option('--poll-interval', type=click.FloatRange(0.2, 60), default=1.0, show_default=True,
              help="Seconds between two looks at the ledger's newest event.")
@click.option('--prometheus-interval', type=click.FloatRange(1, 300), default=5.0, show_default=True,
              help='Seconds between two Prometheus scrapes.')
@click.pass_obj
def dashboard(settings, listen, token_file, allowed_hosts, poll_interval, prometheus_interval):
    """Serve the live migration dashboard (read-only): / (the page), /status (JSON), /ws (live
    updates), /metrics (Prometheus exposition) and /health (200 ready / 503 not ready).

    It reads the same ledger and Prometheus as the playbooks and keeps running when either is
    down (the page and /status say what is missing).

    \b
    Examples:
      ant-network-migration dashboard
      ANT_DASHBOARD_TOKEN_FILE=/etc/ant-dashboard/token ant-network-migration dashboard --listen 0.0.0.0:8090 \\
          --allowed-host monitor-1.example.com
    """
    try:
        host, port = server.parse_listen(listen)
        token = server.read_token(token_file)
        server.check_exposure(host, token)
        names, configured = server.host_names(host, allowed_hosts)
    except server.DashboardConfigError as exc:
        raise BadInput(str(exc)) from None
    location = settings.ledger_location()
    inventory_url, overrides, alert_settings = _inventory_values(
        settings, 'migration_prometheus_url', 'migration_alert_overrides', 'migration_alert_settings')
    prometheus_url = settings.prometheus_url or inventory_url
    if prometheus_url is not None and not str(prometheus_url).startswith(('http://', 'https://')):
        prometheus_url = None
    url = server.url_for(host, port)

    def ready(service):
        waiting = '' if ledger_status.exists(location) else ', not created yet: waiting for it'
        shown_prometheus = redaction.redact_text(prometheus_url) or 'not configured'
        click.echo(f'dashboard: {url} (ledger {service.ledger_state["location"]}{waiting}, Prometheus '
                   f'{shown_prometheus}){" - token required" if token else ""}')

    rc = server.serve(location, host, port, prometheus_url=prometheus_url, token=token, poll_interval=poll_interval,
                      prometheus_interval=prometheus_interval,
                      overrides=overrides if isinstance(overrides, dict) else None,
                      alert_settings=alert_settings if isinstance(alert_settings, dict) else None, allowed_hosts=names,
                      configured_hosts=configured, on_ready=ready)
    if rc:
        raise click.ClickException(f'the dashboard could not start on {listen} (port in use?)')
