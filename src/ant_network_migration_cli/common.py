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
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import control

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
                 inventory=None, extra_groups=None, forks=None):
    """Run a playbook; on failure raise RunFailed (exit 1) saying which run failed, the ledger's
    halt reason if the run halted the migration, the first failed tasks and where the full
    output is kept."""
    outcome = runs.run_playbook(playbook, extravars=extravars,
                                inventory=inventory or settings.inventory or fleet.default_inventory(),
                                ledger_location=ledger_location, console=console, label=label,
                                expected_hosts=expected_hosts, verbosity=settings.verbosity,
                                extra_groups=extra_groups, forks=forks)
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


def _waiting(message):
    click.echo(f'waiting: {message}', err=True)


def refuse_unless_may_start(handle):
    """Refuse (exit 3) when a migration run (canary, wave) may not start now: the collection's one answer,
    ``services/control.check()`` - the guard (halted, an unrecorded switch, paused, the run lock held by a
    live run) and the failure budget. Right after a crash the dead run's workers are waited for first
    (Ledger.wait_for_gone_controller); a lock whose holder is gone with all its processes is not live, and
    the playbook takes it over with a logged event."""
    answer = control.check(handle, wait=_waiting, actor=guard.Actor())     # the CLI holds no lock of its own
    if answer.get('failed'):
        raise Refused(answer['msg'])


def refuse_unless_rollback_allowed(handle):
    """Refuse (exit 3) a rollback the guard refuses (plugin_utils/guard.py, as the rollback's own switch asks it:
    a halt, a pause and an unrecorded switch do not stop a rollback; the run lock of a live run does)."""
    handle.wait_for_gone_controller(progress=_waiting)
    decision = guard.check(handle, guard.Actor(), ignore_pause=True, allow_rollback=True)
    if not decision.allowed:
        raise Refused(decision.reason)


def inventory_var(inventory, name):
    """A role variable the operator set in the inventory (same for the fleet), else None."""
    for host in inventory.fleet:
        value = inventory.hostvars.get(host, {}).get(name)
        if value is not None and '{{' not in str(value):
            return value
    return None
