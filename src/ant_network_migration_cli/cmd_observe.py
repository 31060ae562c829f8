# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``health`` and ``metrics``: Prometheus figures, the alert rules judged, node_health verdicts."""

from __future__ import annotations

import click
from rich.markup import escape

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes as modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, prometheus, redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import health as health_service
from ant_network_migration_common import figures as figures_lib

from . import common, fleet, ledger_io, render
from .errors import EXIT_CODES_HELP, EXIT_FAILED, BadInput, RunFailed


def prometheus_client(url=None, default_url=None):
    """The collection's Prometheus client: --prometheus-url, else MIGRATION_PROMETHEUS_URL, else the
    inventory's migration_prometheus_url. TLS and auth come from MIGRATION_PROMETHEUS_* variables."""
    try:
        return prometheus.client_from_options({'url': url} if url else None, default_url=default_url)
    except prometheus.PrometheusConfigError as exc:
        raise BadInput(f'Prometheus: {exc}') from None


def _inventory_or_none(settings):
    try:
        return fleet.load_inventory(settings.inventory)
    except BadInput:
        return None


def _inventory_prometheus_url(inventory):
    """``migration_prometheus_url`` of the inventory (group_vars), when it is a plain URL."""
    value = common.inventory_var(inventory, 'migration_prometheus_url') if inventory else None
    if isinstance(value, str) and value.startswith(('http://', 'https://')):
        return value
    return None


def _client(settings, inventory):
    default = None if settings.prometheus_url else _inventory_prometheus_url(inventory)
    return prometheus_client(settings.prometheus_url, default_url=default)


def _read_figures(client):
    """(figures, error): Prometheus figures, or the reason they are not available."""
    try:
        return figures_lib.query_figures(client), None
    except prometheus.PrometheusError as exc:
        return None, redaction.redact_text(str(exc))


def _figures(settings, inventory):
    client = _client(settings, inventory)
    try:
        return _read_figures(client)
    finally:
        client.close()


def _ruleset(inventory):
    """The alert rules as the gate reads them: the inventory's migration_alert_overrides and
    migration_alert_settings (the rules' windows) over rules/alert_rules.yml."""
    values = [common.inventory_var(inventory, name) if inventory else None
              for name in ('migration_alert_overrides', 'migration_alert_settings')]
    overrides, rule_settings = (value if isinstance(value, dict) else None for value in values)
    try:
        return alert_rules.load_rules(overrides=overrides, settings=rule_settings)
    except alert_rules.AlertRulesError as exc:
        raise BadInput(f'the alert rules: {exc}') from None


def _fleet_health(settings, inventory, transport):
    """(figures, gate result): the figures shown, and the verdict of the fleet gate of one evaluation
    (services/health.py fleet_health: the gate's own judgement, pass / fail / inconclusive / unavailable)."""
    ruleset = _ruleset(inventory)
    client = _client(settings, inventory)
    try:
        figures, _ = _read_figures(client)
        try:
            verdict = health_service.fleet_health(client, ruleset, transport)
        except MigrationError as exc:      # the gate's options (e.g. rules that could never fail)
            raise BadInput(f'health: {exc}') from None
    finally:
        client.close()
    return figures, redaction.redact(verdict)


def _node_health(handle, transport=None):
    nodes = handle.nodes()
    unhealthy = [n for n in nodes if n.get('health') == 'unhealthy']
    if transport:
        unhealthy = [n for n in unhealthy
                     if transport in modes.MODE_TRANSPORTS.get(n.get('mode') or modes.STATE_MODE[n['state']], ())]
    return {
        'healthy': sum(1 for n in nodes if n.get('health') == 'healthy'),
        'unhealthy': len(unhealthy),
        'unknown': sum(1 for n in nodes if not n.get('health')),
        'unhealthy_nodes': [{'node_id': n['node_id'], 'host': n['host'], 'service_name': n['service_name'],
                             'state': n['state'], 'at': n.get('health_at'), 'detail': n.get('health_data')}
                            for n in unhealthy],
    }


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--transport', type=click.Choice(figures_lib.TRANSPORTS), help='Only this transport.')
@click.option('--check-nodes', is_flag=True,
              help='First run playbooks/health.yml (node_health on every host) to refresh the node verdicts.')
@click.option('--json', 'as_json', is_flag=True, help='Print JSON instead of tables.')
@click.pass_obj
def health(settings, transport, check_nodes, as_json):
    """Is the fleet healthy: the gate's own verdict on the fleet now, the figures, and node_health verdicts.

    The verdict is the migration gate's, asked outside a rollout (a fleet-wide gate of one evaluation
    that records nothing): every alert rule over its window, pass / fail / no_data per rule, and
    the fleet's pass, fail, inconclusive (no data is not a pass) or unavailable (Prometheus cannot
    be asked) - what a wave's gate would say on the same data. The figures are the monitoring
    role's recording rules (health score = 0.5 x success + 0.3 x latency score + 0.2 x connection
    score); the node verdicts are the latest node_health results in the ledger (--check-nodes
    refreshes them first). Exits 1 unless the gate passes, when a node is unhealthy or when
    health.yml fails.

    \b
    Examples:
      ant-network-migration health
      ant-network-migration health --transport iroh --check-nodes
    """
    location = settings.ledger_location()
    ledger_io.require(location)          # before health.yml, whose run would create a mistyped one
    console = None if as_json else common.make_console()
    run_failure = None
    if check_nodes:
        extravars = {'transport': transport} if transport else {}
        try:
            common.run_or_fail(settings, console, 'health.yml', extravars, 'node health', location)
        except RunFailed as exc:
            run_failure = exc.message
    inventory = _inventory_or_none(settings)
    figures, verdict = _fleet_health(settings, inventory, transport)
    with ledger_io.opened(location) as handle:
        nodes = _node_health(handle, transport)
    transports = [transport] if transport else list(figures_lib.TRANSPORTS)
    problems = []
    if verdict['failed']:          # fail, inconclusive (no data is not a pass), unavailable (fail closed)
        problems.append(verdict['msg'])
    if nodes['unhealthy']:
        problems.append(f"{nodes['unhealthy']} node(s) unhealthy")
    if run_failure:
        problems.append(run_failure)
    if as_json:
        click.echo(render.to_json({
            'healthy': not problems, 'problems': problems, 'verdict': verdict['verdict'], 'msg': verdict['msg'],
            'transports': {t: figures.transports[t] for t in transports} if figures else None,
            'fleet': figures.fleet if figures else None, 'rules': verdict['rules'], 'nodes': nodes}))
    else:
        if figures:
            console.print(render.transport_table(figures, transports))
        if verdict['rules']:
            console.print(render.verdicts_table(verdict['rules']))
        console.print(render.node_health_table(nodes))
        for problem in problems:
            console.print(f'[bold red]problem:[/bold red] {escape(problem)}')
        if not problems:
            console.print(f"[green]healthy[/green]: {escape(verdict['msg'])}")
    if problems:
        raise click.exceptions.Exit(EXIT_FAILED)


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--format', 'fmt', type=click.Choice(['table', 'json', 'prometheus']), default='table',
              show_default=True, help='prometheus: the text exposition format (for a textfile collector).')
@click.pass_obj
def metrics(settings, fmt):
    """Dashboard figures: per transport request rate, error rate, p50/p95/p99 latency, connections
    and health score, fleet partition risk (Prometheus recording rules), and the migration's own
    metrics from the ledger (progress, velocity, ETA).

    The ledger part is printed even when Prometheus is down; the exit code is then 1.

    \b
    Examples:
      ant-network-migration metrics
      ant-network-migration metrics --format json | jq .transports.iroh
      ant-network-migration metrics --format prometheus > /var/lib/node_exporter/migration.prom
    """
    location = settings.ledger_location()
    ledger_io.require(location)
    figures, prometheus_error = _figures(settings, None if settings.prometheus_url else _inventory_or_none(settings))
    with ledger_io.opened(location) as handle:
        progress = handle.progress()
        ledger_text = handle.metrics_text() if fmt == 'prometheus' else ''
    if fmt == 'json':
        click.echo(render.to_json({'transports': figures.transports if figures else None,
                                   'fleet': figures.fleet if figures else None,
                                   'units': figures.units if figures else None,
                                   'migration': progress, 'prometheus_error': prometheus_error}))
    elif fmt == 'prometheus':
        click.echo((figures_lib.prometheus_text(figures) if figures else '') + ledger_text, nl=False)
    else:
        console = common.make_console()
        if figures:
            console.print(render.transport_table(figures, list(figures_lib.TRANSPORTS)))
        console.print(render.summary_table(progress, {}, None, short=True))
    if prometheus_error:
        click.echo(f'Error: {prometheus_error}', err=True)
        raise click.exceptions.Exit(EXIT_FAILED)
