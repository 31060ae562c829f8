# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``preflight``: playbooks/preflight.yml through ansible-runner, then each item's result from the ledger."""

from __future__ import annotations

import click
from rich.markup import escape

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import preflight as service

from . import common, ledger_io
from .errors import EXIT_CODES_HELP, BadInput, RunFailed


def _waivers(given):
    out = {}
    for entry in given:
        item, sep, reason = entry.partition('=')
        if not sep or not reason.strip():
            raise BadInput(f'--waive takes ITEM=REASON, got {entry!r}; items: {", ".join(service.ITEMS)}')
        out[item.strip()] = reason
    return out


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--alertmanager-url', metavar='URL', help="Alertmanager (default: the inventory's "
              'preflight_alertmanager_url, else monitoring_alertmanager_url).')
@click.option('--waive', 'waivers', multiple=True, metavar='ITEM=REASON',
              help=f'Waive a failed item with a recorded reason (repeatable); items: {", ".join(service.ITEMS)}.')
@click.option('--baseline-window', metavar='DURATION', help='Window of the baseline the thresholds are compared with.')
@common.operator_option()
@click.pass_obj
def preflight(settings, alertmanager_url, waivers, baseline_window, operator):
    """Is the fleet ready for a production wave? The checklist, checked (playbooks/preflight.yml).

    Each item passes, fails or is waived; the result is recorded in the ledger, and rollout / promote
    refuse to start without one that passed within preflight_max_age (docs/preflight.md).

    \b
    Examples:
      ant-network-migration preflight --alertmanager-url http://alertmanager:9093
      ant-network-migration preflight --waive "thresholds=new fleet, 2 h of baseline only"
    """
    extravars = {'operator': operator, 'preflight_waivers': _waivers(waivers)}
    if alertmanager_url:
        extravars['preflight_alertmanager_url'] = alertmanager_url
    if baseline_window:
        extravars['preflight_baseline_window'] = baseline_window
    location = settings.ledger_location()
    console = common.make_console()
    failure = None
    try:
        common.run_or_fail(settings, console, 'preflight.yml', extravars, 'preflight', location)
    except RunFailed as exc:
        failure = exc
    with ledger_io.opened(location) as handle:
        last = service.latest(handle)
    if last:
        for entry in last['data'].get('items', []):
            colour = {'pass': 'green', 'fail': 'red', 'waived': 'yellow'}.get(entry['result'], 'white')
            console.print(f"[{colour}]{entry['result']:>6}[/{colour}]  {escape(entry['message'])}")
            for warning in entry.get('warnings') or ():
                console.print(f'        [dim]warning: {escape(warning)}[/dim]')
        console.print(escape(f"preflight {last['data'].get('result')} at {last['at']}"))
    if failure:
        raise failure
