# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``history``: the ledger's audit log (services/audit.py), as JSON lines or a table."""

from __future__ import annotations

import json

import click
from rich.markup import escape

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import audit

from . import common, ledger_io
from .errors import EXIT_CODES_HELP


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--jsonl', is_flag=True, help='One JSON object per line: at, who, what, run_id, run, data.')
@click.option('--limit', type=click.IntRange(min=1), default=100000, show_default=True,
              help='At most this many events and this many node transitions (the newest).')
@click.pass_obj
def history(settings, jsonl, limit):
    """Every migration activity in the ledger, oldest first: who, when, what, and the run.

    \b
    Examples:
      ant-network-migration history --jsonl > migration-audit.jsonl
      ant-network-migration history --jsonl | jq -c 'select(.what == "preflight_waived")'
    """
    with ledger_io.opened(settings.ledger_location()) as handle:
        records = audit.history(handle, limit=limit)
    if jsonl:
        for record in records:
            click.echo(json.dumps(record, sort_keys=True, default=str))
        return
    console = common.make_console()
    for record in records:
        console.print('%s  %-18s %-12s run %-5s %s' % tuple(escape(str(v)) for v in (
            record['at'], record['what'], record['who'] or '-', record['run_id'] or '-',
            (record['run'] or {}).get('playbook') or '')))
