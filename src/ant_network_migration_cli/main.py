# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``ant-network-migration``: the operator CLI of the libp2p -> iroh migration.

It runs the collection's playbooks through ansible-runner (the engine AWX uses) and reads the
same ledger as the callback, the gate and AWX jobs.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import os
from dataclasses import dataclass

import click
from rich.console import Console
from rich.markup import escape

from . import dashboard, fleet, ledger_io, plan, render, runs
from .errors import EXIT_CODES_HELP, EXIT_FAILED, BadInput, Refused, RunFailed

COMPLETION_HELP = """\b
Shell completion (bash, zsh, fish):
  eval "$(_ANT_NETWORK_MIGRATION_COMPLETE=bash_source ant-network-migration)"   # ~/.bashrc
  eval "$(_ANT_NETWORK_MIGRATION_COMPLETE=zsh_source ant-network-migration)"    # ~/.zshrc
  _ANT_NETWORK_MIGRATION_COMPLETE=fish_source ant-network-migration | source     # fish"""

CONTEXT_SETTINGS = {'help_option_names': ['-h', '--help'], 'max_content_width': 110}


@dataclass
class Settings:
    inventory: str | None
    ledger: str | None
    prometheus_url: str | None
    verbosity: int

    def ledger_location(self):
        return ledger_io.resolve_location(self.ledger)


def _console():
    return Console(highlight=False, soft_wrap=False)


def _operator_option():
    return click.option('--operator', envvar='ANT_MIGRATION_OPERATOR', show_envvar=True,
                        default=lambda: os.environ.get('USER') or getpass.getuser(),
                        show_default='current user', help='Who is acting; recorded in the ledger.')


class _Group(click.Group):
    """Turns ledger errors raised anywhere in a command into the documented exit codes."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as exc:
            translated = ledger_io.translate(exc)
            if translated is None:
                raise
            raise translated from None


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS, epilog=f'{EXIT_CODES_HELP}\n\n{COMPLETION_HELP}')
@click.option('-i', '--inventory', envvar='ANT_MIGRATION_INVENTORY', show_envvar=True,
              type=click.Path(exists=True), help='Ansible inventory (file or directory) of the fleet. '
              "Default: the plan's inventory, else ansible.cfg's.")
@click.option('--ledger', envvar='ANT_MIGRATION_LEDGER', show_envvar=True, metavar='PATH|DSN',
              help='Ledger: SQLite path or postgresql:// DSN. Default: ansible.cfg '
              '[autonomi_network_migration] ledger, else ~/.local/state/autonomi-network-migration/.')
@click.option('--prometheus-url', envvar='MIGRATION_PROMETHEUS_URL', show_envvar=True, metavar='URL',
              help='Prometheus server for health and metrics (TLS and auth: MIGRATION_PROMETHEUS_* variables, '
              "as for the gate). Default: the inventory's migration_prometheus_url.")
@click.option('-v', '--verbose', 'verbosity', count=True,
              help='More output: -v names artifacts and failures in full, -vv shows Ansible output, -vvv+ '
              'raises Ansible verbosity.')
@click.version_option(package_name='autonomi-network-migration-tools', prog_name='ant-network-migration')
@click.pass_context
def cli(ctx, inventory, ledger, prometheus_url, verbosity):
    """Drive the libp2p -> iroh migration of an Autonomi fleet.

    \b
    Examples:
      ant-network-migration status
      ant-network-migration -i inventories/prod start --plan plan.yml --dry-run
      ant-network-migration pause --reason "investigating latency on sim-host-03"
      ant-network-migration rollback --strategy fast --target libp2p_only --yes
    """
    # One ansible.cfg for the CLI (ledger location) and the runs it starts.
    config = fleet.ansible_config()
    if config:
        os.environ['ANSIBLE_CONFIG'] = config
    ctx.obj = Settings(inventory=inventory, ledger=ledger, prometheus_url=prometheus_url, verbosity=verbosity)


# --- status ------------------------------------------------------------------------------------

GATE_EVENT_KINDS = ('gate_verdict',)
PLAN_EVENT = 'plan_started'


def _plan_target(handle):
    """The last plan started from the CLI, with its completion deadline judged against the ETA."""
    events = handle.events(kinds=PLAN_EVENT, limit=1)
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


def _status_data(handle, detailed):
    data = {
        'progress': handle.progress(),
        'flags': handle.get_flags(),
        'canary': handle.canary_verdict(),
        'gate_verdicts': handle.events(kinds=list(GATE_EVENT_KINDS), limit=5),
        'plan': _plan_target(handle),
    }
    if detailed:
        data['nodes'] = handle.nodes()
        data['events'] = handle.events(limit=20)
    return data


@cli.command(epilog=EXIT_CODES_HELP)
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
        data = _status_data(handle, detailed)
    data['ledger'] = str(location)
    if as_json:
        click.echo(render.to_json(data))
        return
    console = _console()
    console.print(render.summary_table(data['progress'], data['flags'], data['canary'], plan=data['plan']))
    console.print(render.states_table(data['progress'].get('by_state')))
    console.print(render.events_table(data['gate_verdicts'], title='Last gate verdicts'))
    if detailed:
        console.print(render.nodes_table(data['nodes']))
        console.print(render.events_table(data['events']))
    console.print(f'[dim]ledger: {escape(str(location))}[/dim]')


# --- pause / resume ----------------------------------------------------------------------------

def _run_or_fail(settings, console, playbook, extravars, label, ledger_location, expected_hosts=None,
                 inventory=None, extra_groups=None):
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


@cli.command(epilog=EXIT_CODES_HELP)
@click.option('--reason', required=True, help='Why the migration is paused (recorded in the ledger).')
@_operator_option()
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
    console = _console()
    with ledger_io.opened(location) as handle:
        paused = handle.get_flags().get('paused')
    if paused:
        console.print(f'already paused: {render.flag_text("paused", paused)}')
        return
    _run_or_fail(settings, console, 'pause.yml', {'reason': reason, 'operator': operator}, 'pause', location)
    console.print(f'[bold]paused[/bold] by {escape(operator)}: {escape(reason)}')


@cli.command(epilog=EXIT_CODES_HELP)
@click.option('--ack', is_flag=True,
              help='Acknowledge a halt (needed to resume after an automatic halt, once its cause is understood).')
@_operator_option()
@click.pass_obj
def resume(settings, ack, operator):
    """Resume a paused migration (playbooks/resume.yml); with --ack, also clear a halt.

    \b
    Examples:
      ant-network-migration resume
      ant-network-migration resume --ack      # after reading why it halted (status --detailed)
    """
    location = settings.ledger_location()
    console = _console()
    with ledger_io.opened(location) as handle:
        flags = handle.get_flags()
    if flags.get('halted') and not ack:
        halted = flags['halted']
        raise Refused(f"the migration is halted: {halted.get('reason')} ({render.fmt_time(halted.get('at'))}); "
                      'find out why (status --detailed), then resume with --ack')
    if not flags.get('paused') and not flags.get('halted'):
        console.print('nothing to resume: the migration is neither paused nor halted')
        return
    _run_or_fail(settings, console, 'resume.yml', {'ack': bool(ack), 'operator': operator}, 'resume', location)
    console.print(f'[bold]resumed[/bold] by {operator}' + (' (halt acknowledged)' if flags.get('halted') else ''))


# --- rollback ----------------------------------------------------------------------------------

@cli.command(epilog=EXIT_CODES_HELP)
@click.option('--strategy', type=click.Choice(['fast', 'gradual']), default='fast', show_default=True,
              help='fast: every affected node at once; gradual: in waves, stopping when the gate is green.')
@click.option('--target', type=click.Choice(['libp2p_only', 'dual_stack']), default='libp2p_only',
              show_default=True, help='Mode the affected nodes go back to.')
@click.option('--reason', default='operator requested rollback', show_default=True,
              help='Recorded in the ledger as the trigger.')
@click.option('-y', '--yes', is_flag=True, help='Do not ask for confirmation.')
@_operator_option()
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
    from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes as modes
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import wave_planning

    location = settings.ledger_location()
    console = _console()
    with ledger_io.opened(location) as handle:
        _refuse_if_locked(handle)
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
    extravars = {'strategy': strategy, 'target': target, 'reason': reason, 'operator': operator}
    _run_or_fail(settings, console, 'rollback.yml', extravars, f'rollback ({strategy})', location,
                 expected_hosts=len(hosts))
    console.print(f"[bold]rolled back[/bold] {planned['nodes_to_switch']} nodes on {len(hosts)} hosts to {target}")


def _refuse_if_locked(handle):
    """Refuse (exit 3) while another run holds the lock. A lock whose holder is gone (no heartbeat
    for the stale timeout, or a dead process on this host) is left to the playbook, which takes
    it over with a logged event."""
    lock = handle.lock()
    if lock and not _lock_recoverable(lock):
        raise Refused(f"the ledger is locked by {lock['holder']} since {lock['started_at']} "
                      f"(playbook {lock['playbook']}, run {lock['run_id']}): another rollout or rollback is "
                      'running. If that process is gone, wait for the stale timeout or release the lock with '
                      '`ant-network-migration unlock --reason ...`')


def _lock_recoverable(lock):
    import socket
    import time

    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger

    try:
        heartbeat = datetime.datetime.fromisoformat(str(lock.get('heartbeat_at'))).timestamp()
    except ValueError:
        heartbeat = None
    if heartbeat is not None and time.time() - heartbeat > ledger.DEFAULT_STALE_AFTER:
        return True
    if lock.get('host') == socket.gethostname() and lock.get('pid'):
        try:
            os.kill(int(lock['pid']), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
    return False


@cli.command(epilog=EXIT_CODES_HELP)
@click.option('--reason', required=True, help='Why the holder is known to be gone (recorded in the ledger).')
@click.option('-y', '--yes', is_flag=True, help='Do not ask for confirmation.')
@_operator_option()
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
    console = _console()
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


# --- start -------------------------------------------------------------------------------------

def _check_plan_against_inventory(data, inventory):
    problems = []
    _, unknown = inventory.expand(data.get('exclude') or [])
    problems += [f'exclude: {name!r} is neither a host nor a group of the inventory' for name in unknown]
    canary = data.get('canary') or {}
    _, unknown = inventory.expand(canary.get('hosts') or [])
    problems += [f'canary.hosts: {name!r} is not a host of the inventory' for name in unknown]
    fleet_size = len(inventory.fleet)
    if canary.get('count', 0) > fleet_size:
        problems.append(f"canary.count: {canary['count']} is more than the {fleet_size} hosts of the fleet")
    if problems:
        raise plan.PlanError(inventory.source or '(inventory)', problems)


def _check_rule_ids(data):
    if not data.get('thresholds'):
        return
    try:
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
        rule_ids = [rule.id for rule in alert_rules.load_rules().rules]
    except (ImportError, ValueError):  # rule definitions unreadable: the playbooks validate overrides too
        return
    plan.check_rule_ids(data, rule_ids)


def _preflight(handle):
    """Refuse (exit 3) when the migration may not move forward now: halted, paused or locked."""
    flags = handle.get_flags()
    if flags.get('halted'):
        halted = flags['halted']
        raise Refused(f"the migration is halted since {halted.get('at')} by {halted.get('operator')} "
                      f"({halted.get('source')}): {halted.get('reason')}; find out why (status --detailed), "
                      'then `resume --ack`')
    if flags.get('paused'):
        paused = flags['paused']
        raise Refused(f"the migration is paused since {paused.get('at')} by {paused.get('operator')}: "
                      f"{paused.get('reason')}; `resume` first")
    _refuse_if_locked(handle)


def _canary_passed(verdict):
    if not verdict:
        return False
    if isinstance(verdict, dict):
        verdict = verdict.get('verdict') or verdict.get('status') or verdict.get('outcome')
    return str(verdict).lower() == 'passed'    # the migration_ledger action's verdict values


def _fleet_nodes(handle, inventory):
    """Every node of the fleet with the mode it runs: from the ledger, and for hosts the ledger
    does not know yet, from the hosts themselves (transport_info, read-only)."""
    from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes as modes

    fleet_hosts = set(inventory.fleet)
    nodes = [{'host': n['host'], 'service_name': n.get('service_name') or n.get('node'),
              'peer_id': n.get('peer_id'), 'mode': modes.STATE_MODE.get(n.get('state'))}
             for n in handle.nodes() if n['host'] in fleet_hosts]
    unknown = sorted(fleet_hosts - {n['host'] for n in nodes})
    if unknown:
        found, unreachable = fleet.discover_nodes(inventory.source, unknown)
        if unreachable:
            listing = '; '.join(f'{h}: {why}' for h, why in sorted(unreachable.items())[:10])
            raise RunFailed(f'cannot plan: {len(unreachable)} host(s) unknown to the ledger did not report '
                            f'their nodes (an unreachable host could hide libp2p-only nodes): {listing}')
        nodes += found
    return nodes


EXCLUDE_GROUP = 'migration_exclude'     # the roles' wave_exclude_group / canary_exclude_group
CANARY_GROUP = 'canary'                 # the canary role's canary_group
PLAN_CANARY_GROUP = 'migration_plan_canary'


def _excluded(data, inventory):
    """Hosts no stage may touch: the plan's exclude (groups expanded) and the inventory's
    migration_exclude group, which the roles honour."""
    hosts, _ = inventory.expand(data.get('exclude') or [])
    return sorted(set(hosts) | set(inventory.groups.get(EXCLUDE_GROUP, [])))


def _canary_hosts(data, inventory):
    """Explicit canaries: the plan's canary.hosts, else the inventory's canary group (as the role)."""
    canary = data.get('canary') or {}
    return sorted(canary.get('hosts') or inventory.groups.get(CANARY_GROUP) or [])


def _selection(data, inventory, handle):
    canary = data.get('canary') or {}
    try:
        return plan.select_plan(
            _fleet_nodes(handle, inventory), data['waves'], exclude=_excluded(data, inventory),
            canary_count=canary.get('count', 0), canary_hosts=_canary_hosts(data, inventory) if canary else (),
            canary_done=_canary_passed(handle.canary_verdict()),
            default_batches=data.get('batches') or plan.DEFAULT_BATCHES,
            max_close_group_share=_float_or_none(_inventory_var(inventory, 'wave_max_close_group_share')))
    except plan.PlanError as exc:
        raise BadInput(str(exc)) from None


def _inventory_var(inventory, name):
    """A role variable the operator set in the inventory (same for the fleet), else None."""
    for host in inventory.fleet:
        value = inventory.hostvars.get(host, {}).get(name)
        if value is not None and '{{' not in str(value):
            return value
    return None


def _float_or_none(value):
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        raise BadInput(f'inventory variable wave_max_close_group_share={value!r} is not a number') from None


def _run_groups(data, inventory):
    """Inventory groups added for the plan's runs: its excludes, and its explicit canaries."""
    groups = {}
    excluded = _excluded(data, inventory)
    if excluded:
        groups[EXCLUDE_GROUP] = excluded
    if (data.get('canary') or {}).get('hosts'):
        groups[PLAN_CANARY_GROUP] = sorted(data['canary']['hosts'])
    return groups


def _plan_event(plan_file, data, operator):
    event = {'plan': str(plan_file), 'operator': operator, 'waves': [w['percent'] for w in data['waves']],
             'canary': data.get('canary'), 'rollback_policy': data.get('rollback_policy'),
             'target_duration': data.get('target_duration')}
    if data.get('target_duration') is not None:
        deadline = (datetime.datetime.now(datetime.UTC)
                    + datetime.timedelta(seconds=plan.parse_duration(data['target_duration'])))
        event['deadline'] = deadline.isoformat(timespec='seconds')
    return event


def _overrides(data, inventory):
    """The plan's thresholds merged over the inventory's migration_alert_overrides ({} when the
    plan has none: the inventory's own then apply untouched)."""
    if not data.get('thresholds'):
        return {}
    base = _inventory_var(inventory, 'migration_alert_overrides')
    return plan.alert_overrides(data, base if isinstance(base, dict) else None)


def _wave_vars(data, wave, inventory):
    """rollout.yml's extra vars for one wave of the plan (the wave role's variables)."""
    extravars = {
        'wave': wave['percent'],
        'wave_batches': list(wave.get('batches') or data.get('batches') or plan.DEFAULT_BATCHES),
    }
    soak = wave.get('soak', data.get('soak'))
    if soak is not None:
        extravars['wave_soak_seconds'] = plan.parse_duration(soak)
    if data.get('rollback_policy'):
        extravars['wave_rollback_policy'] = data['rollback_policy']
    overrides = _overrides(data, inventory)
    if overrides:
        extravars['migration_alert_overrides'] = overrides
    return extravars


def _canary_vars(data, inventory):
    """canary.yml's extra vars (the canary role's variables)."""
    canary = data['canary']
    extravars = {'canary_count': canary['count']}
    if 'duration' in canary:
        extravars['canary_duration'] = plan.parse_duration(canary['duration'])
    if canary.get('hosts'):
        extravars['canary_group'] = PLAN_CANARY_GROUP
    overrides = _overrides(data, inventory)
    if overrides:
        extravars['migration_alert_overrides'] = overrides
    return extravars


@cli.command(epilog=EXIT_CODES_HELP)
@click.option('--plan', 'plan_file', required=True, type=click.Path(dir_okay=False),
              help='Migration plan, YAML or JSON (schema: plan.schema.json; see docs/cli.md).')
@click.option('--dry-run', is_flag=True, help='Validate and print the hosts each stage would touch; change nothing.')
@_operator_option()
@click.pass_obj
def start(settings, plan_file, dry_run, operator):
    """Run a migration plan: the canary, then each wave, stopping at the first failure.

    The plan is validated against the published schema (every error names its field), then
    against the inventory (hosts and groups exist) and the ledger (not paused, halted or
    locked). --dry-run prints, per stage, the hosts it would touch in order — sorted by name,
    skipping hosts already past libp2p_only and excluded ones — and changes nothing.

    \b
    Examples:
      ant-network-migration start --plan docs/examples/plan.yml --dry-run
      ant-network-migration -i inventories/prod start --plan plan.yml
    """
    try:
        data = plan.load(plan_file)
        inventory = fleet.load_inventory(settings.inventory or data.get('inventory'))
        _check_plan_against_inventory(data, inventory)
        _check_rule_ids(data)
    except plan.PlanError as exc:
        raise BadInput(str(exc)) from None
    console = _console()
    location = settings.ledger_location()
    if dry_run and not ledger_io.exists(location):
        ledger_context = contextlib.nullcontext(ledger_io.EmptyLedger(location))
    else:
        ledger_context = ledger_io.opened(location)
    with ledger_context as handle:
        refusal = None
        try:
            _preflight(handle)
        except Refused as exc:
            if not dry_run:
                raise
            refusal = exc          # a dry run still shows its plan, then exits as the run would
        stages = _selection(data, inventory, handle)
        if not data.get('canary') and not _canary_passed(handle.canary_verdict()):
            problem = BadInput('the plan has no canary stage and the ledger records no passed canary: the '
                               'rollout would refuse every wave; add `canary:` to the plan (or run canary.yml)')
            if not dry_run:
                raise problem
            refusal = refusal or problem
    if dry_run:
        missing = '' if ledger_io.exists(location) else ' (does not exist yet: an empty ledger)'
        console.print(f'[bold]Dry run[/bold] of {escape(str(plan_file))} against {len(inventory.fleet)} hosts '
                      + escape(f'({inventory.source}); ledger {location}{missing}. Nothing is changed.'))
        wave_number = 0
        for stage in stages:
            if stage.stage == 'wave':
                wave_number += 1
            console.print(render.selection_heading(stage, wave_number))
            console.print(render.selection_table(stage))
        if refusal:
            raise refusal
        console.print('[green]plan is valid; a real run would start now[/green]')
        return
    with ledger_io.opened(location) as handle:
        handle.record_event(PLAN_EVENT, **_plan_event(plan_file, data, operator))
    inventory_source = inventory.source
    groups = _run_groups(data, inventory)
    waves = iter(data['waves'])
    for stage in stages:
        if stage.stage == 'canary':
            if stage.skipped:
                console.print(f'canary: skipped ({escape(stage.skipped)})')
                continue
            _run_or_fail(settings, console, 'canary.yml', _canary_vars(data, inventory), 'canary', location,
                         expected_hosts=len(stage.hosts) or None, inventory=inventory_source, extra_groups=groups)
            console.print('canary: [green]passed[/green]')
            continue
        wave = next(waves)
        label = f"wave {wave['percent']} %"
        _run_or_fail(settings, console, 'rollout.yml', _wave_vars(data, wave, inventory), label, location,
                     expected_hosts=len(stage.hosts) or None, inventory=inventory_source, extra_groups=groups)
        console.print(f'{label}: [green]done[/green]')
    with ledger_io.opened(location) as handle:
        progress = handle.progress()
    console.print(f"plan complete: {progress.get('progress_percent')} % migrated, "
                  f"{progress.get('dual_stack_coverage_percent')} % dual-stack coverage, phase {progress.get('phase')}")


# --- health and metrics ------------------------------------------------------------------------

def _inventory_or_none(settings):
    try:
        return fleet.load_inventory(settings.inventory)
    except BadInput:
        return None


def _inventory_prometheus_url(inventory):
    """``migration_prometheus_url`` of the inventory (group_vars), when it is a plain URL."""
    value = _inventory_var(inventory, 'migration_prometheus_url') if inventory else None
    if isinstance(value, str) and value.startswith(('http://', 'https://')):
        return value
    return None


def _figures(settings, inventory):
    """(figures, error): Prometheus figures, or the reason they are not available."""
    default = None if settings.prometheus_url else _inventory_prometheus_url(inventory)
    client = dashboard.prometheus_client(settings.prometheus_url, default_url=default)
    try:
        return dashboard.query_figures(client), None
    except dashboard.unavailable_errors() as exc:
        return None, str(exc)
    finally:
        client.close()


def _node_health(handle, transport=None):
    nodes = handle.nodes()
    unhealthy = [n for n in nodes if n.get('health') == 'unhealthy']
    if transport:
        from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes as modes

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


@cli.command(epilog=EXIT_CODES_HELP)
@click.option('--transport', type=click.Choice(dashboard.TRANSPORTS), help='Only this transport.')
@click.option('--check-nodes', is_flag=True,
              help='First run playbooks/health.yml (node_health on every host) to refresh the node verdicts.')
@click.option('--json', 'as_json', is_flag=True, help='Print JSON instead of tables.')
@click.pass_obj
def health(settings, transport, check_nodes, as_json):
    """Per-transport health: Prometheus figures judged by the alert rules, and node_health verdicts.

    The figures are the monitoring role's recording rules (health score = 0.5 x success +
    0.3 x latency score + 0.2 x connection score); the node verdicts are the latest node_health
    results in the ledger (--check-nodes refreshes them first). Exits 1 when a critical rule is
    breached, a node is unhealthy, health.yml fails or Prometheus cannot be reached.

    \b
    Examples:
      ant-network-migration health
      ant-network-migration health --transport iroh --check-nodes
    """
    location = settings.ledger_location()
    console = None if as_json else _console()
    run_failure = None
    if check_nodes:
        extravars = {'transport': transport} if transport else {}
        try:
            _run_or_fail(settings, console, 'health.yml', extravars, 'node health', location)
        except RunFailed as exc:
            run_failure = exc.message
    inventory = _inventory_or_none(settings)
    figures, prometheus_error = _figures(settings, inventory)
    overrides = _inventory_var(inventory, 'migration_alert_overrides') if inventory else None
    verdicts = dashboard.judge(figures, transport, overrides if isinstance(overrides, dict) else None) \
        if figures else []
    with ledger_io.opened(location, create=False) as handle:
        nodes = _node_health(handle, transport)
    transports = [transport] if transport else list(dashboard.TRANSPORTS)
    problems = []
    if prometheus_error:
        problems.append(prometheus_error)
    problems += [f"{v['rule']}: {v['figure']} {v['value']:.4g} {v['comparison']} {v['threshold']:g}"
                 for v in verdicts if v['verdict'] == 'breach' and v['severity'] == 'critical']
    no_data = [v['rule'] for v in verdicts if v['verdict'] == 'no data']
    if no_data:
        problems.append(f"inconclusive: no data for {', '.join(no_data)} (no traffic on that transport yet, or "
                        "the monitoring role's recording rules are not installed in this Prometheus)")
    if nodes['unhealthy']:
        problems.append(f"{nodes['unhealthy']} node(s) unhealthy")
    if run_failure:
        problems.append(run_failure)
    if as_json:
        click.echo(render.to_json({
            'healthy': not problems, 'problems': problems,
            'transports': {t: figures.transports[t] for t in transports} if figures else None,
            'fleet': figures.fleet if figures else None, 'rules': verdicts, 'nodes': nodes}))
    else:
        if figures:
            console.print(render.transport_table(figures, transports))
            console.print(render.verdicts_table(verdicts))
        console.print(render.node_health_table(nodes))
        for problem in problems:
            console.print(f'[bold red]problem:[/bold red] {escape(problem)}')
        if not problems:
            console.print('[green]healthy[/green]')
    if problems:
        raise click.exceptions.Exit(EXIT_FAILED)


@cli.command(epilog=EXIT_CODES_HELP)
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
    figures, prometheus_error = _figures(settings, None if settings.prometheus_url else _inventory_or_none(settings))
    with ledger_io.opened(location, create=False) as handle:
        progress = handle.progress()
        ledger_text = handle.metrics_text() if fmt == 'prometheus' else ''
    if fmt == 'json':
        click.echo(render.to_json({'transports': figures.transports if figures else None,
                                   'fleet': figures.fleet if figures else None,
                                   'units': figures.units if figures else None,
                                   'migration': progress, 'prometheus_error': prometheus_error}))
    elif fmt == 'prometheus':
        click.echo((dashboard.prometheus_text(figures) if figures else '') + ledger_text, nl=False)
    else:
        console = _console()
        if figures:
            console.print(render.transport_table(figures, list(dashboard.TRANSPORTS)))
        console.print(render.summary_table(progress, {}, None, short=True))
    if prometheus_error:
        click.echo(f'Error: {prometheus_error}', err=True)
        raise click.exceptions.Exit(EXIT_FAILED)


def main():
    cli(prog_name='ant-network-migration')


if __name__ == '__main__':
    main()
