# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``start``: check a migration plan, print what it would touch, or run it stage by stage."""

from __future__ import annotations

import datetime

import click
from rich.markup import escape

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes as modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import canary as canary_service
from ant_network_migration_common.ledger_status import PLAN_EVENT

from . import common, fleet, ledger_io, plan, render
from .errors import EXIT_CODES_HELP, BadInput, Refused, RunFailed


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
        rule_ids = [rule.id for rule in alert_rules.load_rules().rules]
    except ValueError:  # rule definitions unreadable: the playbooks validate overrides too
        return
    plan.check_rule_ids(data, rule_ids)


def _fleet_nodes(handle, inventory):
    """Every node of the fleet with the mode it runs: from the ledger, and for hosts the ledger
    does not know yet, from the hosts themselves (transport_info, read-only)."""
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
            canary_done=canary_service.passed(handle.canary_verdict()),
            default_batches=data.get('batches') or plan.DEFAULT_BATCHES,
            max_close_group_share=_float_or_none(common.inventory_var(inventory, 'wave_max_close_group_share')),
            planning=_planning(inventory, handle))
    except plan.PlanError as exc:
        raise BadInput(str(exc)) from None
    except ValueError as exc:   # a node the planner cannot place (e.g. a peer id that is not one)
        raise RunFailed(f'cannot plan: {exc}') from None


def _planning(inventory, handle):
    """The refusal settings the rollout's planner uses: the wave role's variables as the inventory
    sets them (else the role's defaults), the measured switch times in the ledger, this
    controller's forks (the rollback's parallelism)."""
    settings = {'switch_seconds': list(handle.switch_times(limit=1000))}
    value = common.inventory_var(inventory, 'wave_max_partition_risk')
    if value is not None:
        settings['max_partition_risk'] = _float_or_none(value, 'wave_max_partition_risk')
    settings.update(rollback_settings(inventory))
    return settings


def rollback_settings(inventory):
    """The rollback SLA (when the inventory sets wave_rollback_sla_seconds) and forks (wave_rollback_forks, else
    this controller's forks) the wave planner projects with; the rehearsal takes the same."""
    settings = {}
    value = common.inventory_var(inventory, 'wave_rollback_sla_seconds')
    if value is not None:
        settings['rollback_sla_seconds'] = _float_or_none(value, 'wave_rollback_sla_seconds')
    forks = common.inventory_var(inventory, 'wave_rollback_forks')
    settings['rollback_forks'] = int(_float_or_none(forks, 'wave_rollback_forks')) if forks is not None \
        else fleet.ansible_forks()
    return settings


def _float_or_none(value, variable='wave_max_close_group_share'):
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        raise BadInput(f'inventory variable {variable}={value!r} is not a number') from None


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
    base = common.inventory_var(inventory, 'migration_alert_overrides')
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


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--plan', 'plan_file', required=True, type=click.Path(dir_okay=False),
              help='Migration plan, YAML or JSON (schema: plan.schema.json; see docs/cli.md).')
@click.option('--dry-run', is_flag=True, help='Validate and print the hosts each stage would touch; change nothing.')
@click.option('--trust-plan-inventory', is_flag=True,
              help="Use the plan's inventory even when reading it runs code on this controller (an executable "
              'script, an inventory plugin). Without it such an inventory is refused, in a dry run too.')
@common.operator_option()
@click.pass_obj
def start(settings, plan_file, dry_run, trust_plan_inventory, operator):
    """Run a migration plan: the canary, then each wave, stopping at the first failure.

    The plan is validated against the published schema (every error names its field), then
    against the inventory (hosts and groups exist) and the ledger (not paused, halted or
    locked). --dry-run prints, per stage, the hosts it would touch in order — sorted by name,
    skipping hosts already past libp2p_only and excluded ones — and changes nothing.

    A plan file is data: it is size-limited and plain YAML or JSON (no anchors or aliases, no
    duplicate keys), and an inventory it names may not run code (an executable script, an
    inventory plugin) unless --trust-plan-inventory; -i/--inventory is the operator's own.

    \b
    Examples:
      ant-network-migration start --plan docs/examples/plan.yml --dry-run
      ant-network-migration -i inventories/prod start --plan plan.yml
    """
    try:
        data = plan.load(plan_file)
    except plan.PlanError as exc:
        raise BadInput(str(exc)) from None
    location = settings.ledger_location()
    ledger_io.require(location)
    if not settings.inventory and data.get('inventory') and not trust_plan_inventory:
        runs_code = plan.inventory_runs_code(data['inventory'])
        if runs_code:
            raise BadInput(f"the plan's inventory: {runs_code}. A plan may not make this controller run code, not "
                           'even in a dry run: give your own inventory with -i, or --trust-plan-inventory if you '
                           'trust it as your own')
    try:
        inventory = fleet.load_inventory(settings.inventory or data.get('inventory'))
        _check_plan_against_inventory(data, inventory)
        _check_rule_ids(data)
    except plan.PlanError as exc:
        raise BadInput(str(exc)) from None
    console = common.make_console()
    with ledger_io.opened(location) as handle:
        refusal = None
        try:
            common.refuse_unless_may_start(handle)
        except Refused as exc:
            if not dry_run:
                raise
            refusal = exc          # a dry run still shows its plan, then exits as the run would
        stages = _selection(data, inventory, handle)
        refused = [f"wave {stage.percent} %: {reason}" for stage in stages for reason in stage.refusals]
        if refused:
            problem = Refused('the rollout would refuse ' + '; '.join(refused))
            if not dry_run:
                raise problem
            refusal = refusal or problem
        if not data.get('canary') and not canary_service.passed(handle.canary_verdict()):
            problem = BadInput('the plan has no canary stage and the ledger records no passed canary: the '
                               'rollout would refuse every wave; add `canary:` to the plan (or run canary.yml)')
            if not dry_run:
                raise problem
            refusal = refusal or problem
    if dry_run:
        shown = redaction.redact_location(location)
        console.print(f'[bold]Dry run[/bold] of {escape(str(plan_file))} against {len(inventory.fleet)} hosts '
                      + escape(f'({inventory.source}); ledger {shown}. Nothing is changed.'))
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
            common.run_or_fail(settings, console, 'canary.yml', _canary_vars(data, inventory), 'canary', location,
                               expected_hosts=len(stage.hosts) or None, inventory=inventory_source,
                               extra_groups=groups)
            console.print('canary: [green]passed[/green]')
            continue
        wave = next(waves)
        label = f"wave {wave['percent']} %"
        common.run_or_fail(settings, console, 'rollout.yml', _wave_vars(data, wave, inventory), label, location,
                           expected_hosts=len(stage.hosts) or None, inventory=inventory_source, extra_groups=groups)
        console.print(f'{label}: [green]done[/green]')
    with ledger_io.opened(location) as handle:
        progress = handle.progress()
    console.print(f"plan complete: {progress.get('progress_percent')} % migrated, "
                  f"{progress.get('dual_stack_coverage_percent')} % dual-stack coverage, phase {progress.get('phase')}")
