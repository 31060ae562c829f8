# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``status``: where the migration is, from the ledger alone."""

from __future__ import annotations

import click
from rich.markup import escape

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import preflight
from ant_network_migration_common.ledger_status import status_data

from . import common, ledger_io, render
from .errors import EXIT_CODES_HELP, EXIT_FAILED


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--detailed', is_flag=True, help='Also list every node with its state, and recent events.')
@click.option('--json', 'as_json', is_flag=True, help='Print JSON instead of tables.')
@click.pass_obj
def status(settings, detailed, as_json):
    """Where the migration is, from the ledger alone (fast; works with Prometheus down).

    Progress %, phase, nodes migrated / total, dual-stack coverage, velocity, ETA, whether the
    fleet was read yet, nodes not ready, paused or halted with the reason, switches that were
    never recorded, the run lock with its heartbeat, the failure budget, the canary verdict, the
    last migration run with its outcome and the last gate verdicts.

    Exits 1 when the last canary, wave or rollback run ended with an outcome that fails its
    playbook (halted, failed, frozen, incomplete, degraded, ...: docs/operator-guide.md,
    "Outcomes and exit codes"), 0 otherwise (also while it runs).

    \b
    Examples:
      ant-network-migration status
      ant-network-migration status --detailed
      ant-network-migration --ledger postgresql://awx@db/migration status --json | jq .progress
    """
    location = settings.ledger_location()
    with ledger_io.opened(location) as handle:
        data = redaction.redact(status_data(handle, detailed))
    data['ledger'] = redaction.redact_location(location)
    if as_json:
        click.echo(render.to_json(data))
    else:
        console = common.make_console()
        console.print(render.summary_table(data['progress'], data['flags'], data['canary'], plan=data['plan'],
                                           status=data))
        console.print(render.states_table(data['progress'].get('by_state')))
        console.print(render.events_table(data['gate_verdicts'], title='Last gate verdicts'))
        console.print(escape(preflight.describe(data['preflight'])))
        if detailed:
            console.print(render.nodes_table(data['nodes']))
            console.print(render.events_table(data['events']))
        console.print(f"[dim]ledger: {escape(data['ledger'])}[/dim]")
    if (data['run'] or {}).get('failed'):
        raise click.exceptions.Exit(EXIT_FAILED)
