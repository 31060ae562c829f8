# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every command of the CLI shares: settings, the console, running a playbook and turning
its failure into the right message, and asking the guard whether a run may start."""

from __future__ import annotations

from dataclasses import dataclass

import click
from rich.console import Console

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard, identity

from . import fleet, ledger_io, runs
from .errors import Refused, RunFailed


@dataclass
class Settings:
    inventory: str | None
    ledger: str | None
    prometheus_url: str | None
    verbosity: int

    def ledger_location(self):
        return ledger_io.resolve_location(self.ledger)


def make_console():
    """Rich console on stdout; tables keep their shape, output is not syntax-highlighted."""
    return Console(highlight=False, soft_wrap=False)


def operator_option():
    return click.option('--operator', envvar=identity.ENV_OPERATOR, show_envvar=True, default=identity.os_user,
                        show_default='current user', help='Who is acting; recorded in the ledger.')


def run_or_fail(settings, console, playbook, extravars, label, ledger_location, expected_hosts=None,
                 inventory=None, extra_groups=None):
    """Run a playbook; on failure raise RunFailed (exit 1) saying which run failed, the ledger's
    halt reason if the run halted the migration, the first failed tasks and where the full
    output is kept."""
    outcome = runs.run_playbook(playbook, extravars=extravars,
                                inventory=inventory or settings.inventory or fleet.default_inventory(),
                                ledger_location=ledger_location, console=console, label=label,
                                expected_hosts=expected_hosts, verbosity=settings.verbosity,
                                extra_groups=extra_groups)
    if outcome.ok:
        return outcome
    lines = [f'{label} failed ({playbook}: {outcome.status}, rc={outcome.rc})']
    with ledger_io.opened(ledger_location) as handle:
        halted = handle.get_flags().get('halted')
    if halted:
        lines.append(f"migration halted: {halted.get('reason')} (source {halted.get('source') or '?'})")
    shown = outcome.failures if settings.verbosity else outcome.failures[:5]
    lines.extend(f'  {failure}' for failure in shown)
    if len(shown) < len(outcome.failures):
        lines.append(f'  ... {len(outcome.failures) - len(shown)} more (-v to show all)')
    if outcome.artifact_dir:
        lines.append(f'full output: {outcome.artifact_dir}/artifacts')
    raise RunFailed('\n'.join(lines))


def refuse_unless_guard_allows(handle, rollback=False):
    """Refuse (exit 3) when the guard says this run may not start now: halted or paused (a rollback
    passes both), or the run lock held by a live run. The one guard decides
    (plugin_utils/guard.py); a lock whose holder is gone from this host with all its processes is
    not live, and the playbook takes it over with a logged event. Processes of a gone holder that
    still run are waited for first (Ledger.wait_for_gone_controller)."""
    # Right after a crash: the dead run's workers finish what they hold, then the lock is free.
    handle.wait_for_gone_controller(progress=lambda message: click.echo(f'waiting: {message}', err=True))
    snapshot = guard.Snapshot(flags=handle.get_flags(), lock=handle.live_lock())
    decision = guard.decide(snapshot, guard.Actor(), ignore_pause=rollback, allow_rollback=rollback)
    if not decision.allowed:
        raise Refused(decision.reason)


def inventory_var(inventory, name):
    """A role variable the operator set in the inventory (same for the fleet), else None."""
    for host in inventory.fleet:
        value = inventory.hostvars.get(host, {}).get(name)
        if value is not None and '{{' not in str(value):
            return value
    return None
