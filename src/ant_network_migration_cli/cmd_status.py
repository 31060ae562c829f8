# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``status``: where the migration is, from the ledger alone."""

from __future__ import annotations

import datetime

import click
from rich.markup import escape

from . import common, ledger_io, render
from .errors import EXIT_CODES_HELP, redact

GATE_EVENT_KINDS = ('gate_verdict',)
LAST_VERDICTS = 5


def _last_gate_verdicts(handle):
    """The latest gate verdicts. The gate records each evaluation with its rules (value,
    threshold, verdict) and the tracker records the same verdict with the task that asked; keep
    the gate's own record when there is one, so each evaluation is listed once."""
    events = handle.events(kinds=list(GATE_EVENT_KINDS), limit=4 * LAST_VERDICTS)
    with_rules = [e for e in events if isinstance(e.get('data'), dict) and e['data'].get('rules')]
    return (with_rules or events)[:LAST_VERDICTS]


def _plan_target(handle):
    """The last plan started from the CLI, with its completion deadline judged against the ETA."""
    events = handle.events(kinds=common.PLAN_EVENT, limit=1)
    if not events:
        return None
    data = dict(events[0]['data'] or {}, started_at=events[0]['at'])
    eta = handle.progress().get('eta')
    deadline = data.get('deadline')
    if deadline and eta:
        late = (eta - datetime.datetime.fromisoformat(deadline)).total_seconds()
        data['on_track'] = late <= 0
        data['late_seconds'] = max(0, round(late))
    return data


def status_data(handle, detailed):
    """What `status` shows (and the dashboard serves): progress, flags, canary, last gate verdicts, plan."""
    data = {
        'progress': handle.progress(),
        'flags': handle.get_flags(),
        'canary': handle.canary_verdict(),
        'gate_verdicts': _last_gate_verdicts(handle),
        'plan': _plan_target(handle),
    }
    if detailed:
        data['nodes'] = handle.nodes()
        data['events'] = handle.events(limit=20)
    return data


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--detailed', is_flag=True, help='Also list every node with its state, and recent events.')
@click.option('--json', 'as_json', is_flag=True, help='Print JSON instead of tables.')
@click.pass_obj
def status(settings, detailed, as_json):
    """Where the migration is, from the ledger alone (fast; works with Prometheus down).

    Progress %, phase, nodes migrated / total, dual-stack coverage, velocity, ETA, paused or
    halted with the reason, the canary verdict and the last gate verdicts.

    \b
    Examples:
      ant-network-migration status
      ant-network-migration status --detailed
      ant-network-migration --ledger postgresql://awx@db/migration status --json | jq .progress
    """
    location = settings.ledger_location()
    with ledger_io.opened(location, create=False) as handle:
        data = status_data(handle, detailed)
    data['ledger'] = str(location)
    if as_json:
        click.echo(render.to_json(data))
        return
    console = common.make_console()
    console.print(render.summary_table(data['progress'], data['flags'], data['canary'], plan=data['plan']))
    console.print(render.states_table(data['progress'].get('by_state')))
    console.print(render.events_table(data['gate_verdicts'], title='Last gate verdicts'))
    if detailed:
        console.print(render.nodes_table(data['nodes']))
        console.print(render.events_table(data['events']))
    console.print(f'[dim]ledger: {escape(redact(location))}[/dim]')
