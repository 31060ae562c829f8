# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``pause``, ``resume``, ``rollback`` and ``unlock``: the control playbooks and the lock override."""

from __future__ import annotations

import click
from rich.markup import escape

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes as modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import wave_planning
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import control

from . import common, ledger_io
from .errors import EXIT_CODES_HELP, BadInput, Refused


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--reason', required=True, help='Why the migration is paused (recorded in the ledger).')
@common.operator_option()
@click.pass_obj
def pause(settings, reason, operator):
    """Pause the migration (playbooks/pause.yml): no new batch starts until resumed.

    A wave that is running stops before its next batch. Rollbacks ignore a pause.

    \b
    Examples:
      ant-network-migration pause --reason "iroh latency looks high on sim-host-03"
    """
    if not reason.strip():
        raise BadInput('--reason must not be empty')
    location = settings.ledger_location()
    console = common.make_console()
    with ledger_io.opened(location) as handle:
        decision = control.pause_decision(handle.get_flags())      # services/control.py decides
    if decision['action'] == 'nothing':
        console.print(escape(decision['msg']))
        return
    common.run_or_fail(settings, console, 'pause.yml', {'reason': reason, 'operator': operator}, 'pause', location)
    console.print(f'[bold]paused[/bold] by {escape(operator)}: {escape(reason)}')


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--ack', is_flag=True,
              help='Acknowledge a halt (needed to resume after an automatic halt, once its cause is understood).')
@common.operator_option()
@click.pass_obj
def resume(settings, ack, operator):
    """Resume a paused migration (playbooks/resume.yml); with --ack, also clear a halt.

    \b
    Examples:
      ant-network-migration resume
      ant-network-migration resume --ack      # after reading why it halted (status --detailed)
    """
    location = settings.ledger_location()
    console = common.make_console()
    with ledger_io.opened(location) as handle:
        flags, intents = handle.get_flags(), handle.intents()
    # The one decision (services/control.py; resume.yml asks it again in the ledger's transaction): a halt or
    # a switch that was never recorded needs --ack; nothing to clear is not an error.
    decision = control.resume_decision(flags, ack, intents)
    if decision['action'] == 'refused':
        raise Refused(f"{decision['msg']}. Find out why first: status --detailed")
    if decision['action'] == 'nothing':
        console.print(f"nothing to resume: {escape(decision['msg'])}")
        return
    common.run_or_fail(settings, console, 'resume.yml', {'ack': bool(ack), 'operator': operator}, 'resume', location)
    acknowledged = decision['acknowledged']
    console.print(f'[bold]resumed[/bold] by {escape(operator)}'
                  + (f" ({' and '.join(acknowledged)} acknowledged)" if acknowledged else ''))


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--strategy', type=click.Choice(['fast', 'gradual']), default='fast', show_default=True,
              help='fast: every affected node at once; gradual: in waves, stopping when the gate is green.')
@click.option('--target', type=click.Choice(['libp2p_only', 'dual_stack']), default='libp2p_only',
              show_default=True, help='Mode the affected nodes go back to.')
@click.option('--reason', default='operator requested rollback', show_default=True,
              help='Recorded in the ledger as the trigger.')
@click.option('-y', '--yes', is_flag=True, help='Do not ask for confirmation.')
@common.operator_option()
@click.pass_obj
def rollback(settings, strategy, target, reason, yes, operator):
    """Roll migrated nodes back (playbooks/rollback.yml). Asks for confirmation unless --yes.

    A rollback ignores a pause and does not need the canary or the gate to be green, but it
    takes the run lock: it is refused while a rollout holds it.

    \b
    Examples:
      ant-network-migration rollback                         # fast, to libp2p_only, asks first
      ant-network-migration rollback --strategy gradual --target dual_stack --yes
    """
    location = settings.ledger_location()
    console = common.make_console()
    with ledger_io.opened(location) as handle:
        common.refuse_unless_rollback_allowed(handle)
        nodes = [dict(n, mode=n.get('mode') or modes.STATE_MODE[n['state']]) for n in handle.nodes()]
    planned = wave_planning.plan_rollback(nodes, target, strategy=strategy)
    hosts = planned['hosts']
    if not hosts:
        console.print(escape(f"{planned['message']} (according to the ledger)"))
        return
    question = (f"Roll back {planned['nodes_to_switch']} nodes on {len(hosts)} hosts to {target} "
                f'({strategy} strategy)?')
    if not yes and not click.confirm(question, default=False):
        raise click.Abort()
    # rollback_strategy, not strategy: ansible-core warns about any variable named after a play keyword.
    extravars = {'rollback_strategy': strategy, 'target': target, 'reason': reason, 'operator': operator}
    common.run_or_fail(settings, console, 'rollback.yml', extravars, f'rollback ({strategy})', location,
                       expected_hosts=len(hosts))
    console.print(f"[bold]rolled back[/bold] {planned['nodes_to_switch']} nodes on {len(hosts)} hosts to {target}")


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--reason', required=True, help='Why the holder is known to be gone (recorded in the ledger).')
@click.option('-y', '--yes', is_flag=True, help='Do not ask for confirmation.')
@common.operator_option()
@click.pass_obj
def unlock(settings, reason, yes, operator):
    """Release the run lock of a rollout or rollback whose process is gone (logged override).

    Only for a holder known to be dead: releasing the lock of a live run lets two runs touch
    the fleet at once. A lock without heartbeat is also taken over automatically after its
    stale timeout.

    \b
    Examples:
      ant-network-migration unlock --reason "controller rebooted during wave 25"
    """
    if not reason.strip():
        raise BadInput('--reason must not be empty')
    location = settings.ledger_location()
    console = common.make_console()
    with ledger_io.opened(location) as handle:
        lock = handle.lock()
        if not lock:
            console.print('the ledger is not locked')
            return
        question = (f"Release the lock of {lock['holder']} (playbook {lock['playbook']}, since "
                    f"{lock['started_at']}, last heartbeat {lock['heartbeat_at']})?")
        if not yes and not click.confirm(question, default=False):
            raise click.Abort()
        handle.force_unlock(operator, reason)
    console.print(escape(f"released the lock of {lock['holder']} ({reason})"))
