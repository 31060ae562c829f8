# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``rehearse``: the fast rollback on a simulated copy of this fleet's shape, timed against the SLA.

The shape, the readiness delay, the projection and the verdict are decided in
plugins/plugin_utils/services/rehearsal.py; this command starts the copy (ant_fleet_sim.testing.SimStack),
runs playbooks/rollback.yml against it through the same runner as every other command (with a scratch
ledger: the fleet's own ledger only gets the result), stops the copy and records one ``rehearsal`` event.
"""

from __future__ import annotations

import datetime
import shutil
import tempfile
import time
from pathlib import Path

import click
from rich.markup import escape

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import wave_planning
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import control
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import rehearsal as service

from . import cmd_start, common, fleet, ledger_io
from .errors import EXIT_CODES_HELP, BadInput, RunFailed

ORDER_VARIABLES = ('rollback_order', 'migration_rollback_order')


def read_shape(handle, inventory):
    """The fleet's shape from the ledger's nodes, else from the inventory's hosts as they report their nodes
    (transport_info, read-only); with where it came from."""
    nodes = handle.nodes()
    if nodes:
        return dict(service.fleet_shape(nodes), source='ledger', node_list=nodes)
    if inventory is None:
        raise BadInput('the ledger knows no node and no inventory was found: give -i INVENTORY')
    reported, unreachable = fleet.discover_nodes(inventory.source, inventory.fleet)
    try:
        shape = service.fleet_shape(reported)
    except service.RehearsalError as exc:
        raise BadInput(str(exc)) from None
    # A host that did not answer still counts: it would be rolled back with the others.
    shape['hosts'] += len(set(unreachable) - {n['host'] for n in reported})
    return dict(shape, source='inventory', unreachable=sorted(unreachable), node_list=reported)


def _seed(location, nodes, mode):
    """The scratch ledger knows the copy's nodes in ``mode`` (the readable order's rounds come from it)."""
    scratch = ledger_lib.open_ledger(str(location), create=True)
    try:
        scratch.record_transitions([{'host': n['host'], 'service_name': n['service_name'], 'peer_id': n['peer_id'],
                                     'to_state': None, 'mode': mode, 'reason': 'rehearsal copy'} for n in nodes])
    finally:
        scratch.close()


def run_copy(settings, console, hosts, nodes_per_host, mode, ready_delay, forks, order, operator, workdir=None):
    """Start a simulated copy (``hosts`` x ``nodes_per_host`` in ``mode``), fast-roll it back to libp2p_only
    with playbooks/rollback.yml, stop it. Returns {seconds, copy_switch_seconds, start_seconds, nodes}: the rollback's
    wall time (the runner's start to its end), the copy's own measured switch times and its nodes."""
    from ant_fleet_sim.testing import SimStack  # loads the simulator only for a rehearsal

    own = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix='ant-network-migration-rehearsal-'))
    scratch = workdir / 'rehearsal-ledger.sqlite3'
    console.print(escape(f'starting a simulated copy: {hosts} hosts x {nodes_per_host} nodes in {mode}, '
                         f'ready delay {ready_delay:.1f} s'))
    started = time.monotonic()
    stack = SimStack(workdir, hosts=hosts, nodes_per_host=nodes_per_host, ready_delay=ready_delay,
                     prometheus=False, initial_mode=mode, fresh=True)
    try:
        stack.start()
        stack.wait_ready(timeout=max(120.0, 4 * ready_delay + hosts * nodes_per_host * 0.05))
        start_seconds = time.monotonic() - started
        copy_nodes = [{'host': n['host'], 'service_name': n['service_name'], 'peer_id': n['peer_id'], 'mode': mode}
                      for n in stack.fleet()['nodes']]
        _seed(scratch, copy_nodes, mode)
        console.print(escape(f'copy ready in {start_seconds:.1f} s; fast rollback to libp2p_only '
                             f'({order}, {forks} forks)...'))
        extravars = {'rollback_strategy': 'fast', 'rollback_order': order, 'target': _modes.LIBP2P_ONLY,
                     'reason': 'rollback rehearsal on a simulated copy', 'trigger': 'rehearsal', 'operator': operator}
        begin = time.monotonic()
        common.run_or_fail(settings, console, 'rollback.yml', extravars, 'rehearsal: fast rollback', scratch,
                           expected_hosts=hosts, inventory=str(stack.inventory), forks=forks)
        seconds = time.monotonic() - begin
        behind = [f"{n['host']}/{n['service_name']}" for n in stack.fleet()['nodes']
                  if n['mode'] != _modes.LIBP2P_ONLY or not n['ready']]
        if behind:
            raise RunFailed(f'the rehearsed rollback ended with {len(behind)} node(s) of the copy not back in '
                            f"libp2p_only and ready: {', '.join(behind[:10])}")
        with ledger_io.opened(scratch) as handle:
            copy_switches = handle.switch_times(limit=10000, direction='backward')
    finally:
        stack.stop()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    console.print(escape(f'copy stopped; the rollback took {seconds:.1f} s'))
    return {'seconds': round(seconds, 1), 'copy_switch_seconds': copy_switches,
            'start_seconds': round(start_seconds, 1), 'nodes': copy_nodes}


def _default_order(inventory):
    for variable in ORDER_VARIABLES:
        value = common.inventory_var(inventory, variable) if inventory is not None else None
        if value in wave_planning.ROLLBACK_ORDERS:
            return value
    return 'readable'


@click.command(epilog=EXIT_CODES_HELP)
@click.option('--forks', type=click.IntRange(min=1), help="The fast rollback's parallelism (default: the "
              "inventory's wave_rollback_forks, else ansible.cfg's forks, as the wave planner takes it).")
@click.option('--sla', 'sla_seconds', type=click.FloatRange(min=0, min_open=True), default=service.DEFAULT_SLA_SECONDS,
              show_default=True, help="The rollback SLA in seconds (default: the inventory's "
              'wave_rollback_sla_seconds, else 300).')
@click.option('--max-simulated-hosts', type=click.IntRange(min=1), default=service.DEFAULT_MAX_SIMULATED_HOSTS,
              show_default=True, help='A larger fleet is rehearsed on a copy of this many hosts and projected.')
@click.option('--ready-delay', type=click.FloatRange(min=0), help='Seconds a node takes to be ready after a '
              "restart (default: the 95th percentile of the ledger's measured switch times).")
@click.option('--mode', type=click.Choice(_modes.MODES[1:]), help='The mode the copy starts in (default: the '
              "fleet's migrated mode in the ledger, else dual_stack).")
@click.option('--order', type=click.Choice(wave_planning.ROLLBACK_ORDERS), help="The fast rollback's order "
              "(default: the inventory's rollback_order, else readable).")
@common.operator_option()
@click.pass_context
def rehearse(ctx, forks, sla_seconds, max_simulated_hosts, ready_delay, mode, order, operator):
    """Rehearse the fast rollback on a simulated copy of this fleet's shape and compare its time with the SLA.

    The copy has the fleet's host count (at most --max-simulated-hosts), nodes per host and migrated mode,
    and the readiness delay the real nodes' switches measured; playbooks/rollback.yml (fast, to libp2p_only)
    runs against it with the rollback's forks. The result is recorded in the ledger (event rehearsal) and
    the preflight's rollback_tested item needs a recent passed one (docs/preflight.md). Exit 1 when the
    rehearsal is over the SLA or failed.

    \b
    Examples:
      ant-network-migration rehearse
      ant-network-migration rehearse --max-simulated-hosts 20 --forks 100
    """
    settings = ctx.obj
    location = settings.ledger_location()
    console = common.make_console()
    try:
        inventory = fleet.load_inventory(settings.inventory or fleet.default_inventory())
    except BadInput:
        if settings.inventory:
            raise
        inventory = None   # no inventory at all: the ledger's shape, ansible.cfg's forks
    with ledger_io.opened(location) as handle:
        shape = read_shape(handle, inventory)
        measured = control.rollback_switch_times(handle)
    sla_seconds, forks = _sla_and_forks(ctx, inventory, sla_seconds, forks)
    ready = service.readiness(measured['switch_seconds'], measured['switch_direction'])
    samples = measured['switch_seconds'] if ready['measured'] else [ready['ready_delay']]
    if ready_delay is not None:
        ready = dict(ready, ready_delay=float(ready_delay), measured=False, given=True)
        samples = [float(ready_delay)]
    mode = mode or shape['mode']
    order = order or _default_order(inventory)
    try:
        copy_hosts = service.simulated_hosts(shape['hosts'], shape['nodes_per_host'], max_simulated_hosts)
    except service.RehearsalError as exc:
        raise BadInput(str(exc)) from None
    scaled = copy_hosts < shape['hosts']
    # The whole fleet in its migrated mode, rolled back in the order's rounds (readable: from its close groups).
    fleet_nodes = [dict(n, mode=mode) for n in shape['node_list']]
    fleet_rounds = wave_planning.rollback_fork_rounds(fleet_nodes, {n['host'] for n in fleet_nodes}, forks, order)
    projected = service.projection(shape['hosts'], shape['nodes_per_host'], samples, forks, rounds=fleet_rounds)
    console.print(escape(
        f"fleet: {shape['hosts']} hosts x {shape['nodes_per_host']} nodes ({shape['nodes']} nodes, from the "
        f"{shape['source']}), migrated mode {mode}; readiness {ready['ready_delay']:.1f} s ("
        + (f"p95 of {ready['samples']} measured switches, {ready['direction']}" if ready['measured'] else
           'given' if ready.get('given') else 'nothing measured: the planner\'s default')
        + f'); forks {forks}; SLA {sla_seconds:.0f} s'))
    console.print(escape(f"projection for the fleet (wave_planning.project_fast_rollback): {projected['seconds']:.0f} s"
                         f" ({projected['rounds']} round(s) of at most {forks} hosts, {order} order)"))
    if scaled:
        console.print(escape(f'the fleet is larger than --max-simulated-hosts {max_simulated_hosts}: rehearsing '
                             f'{copy_hosts} of its {shape["hosts"]} hosts, then projecting'))
    result = {'operator': operator, 'date': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
              'shape': {'hosts': shape['hosts'], 'nodes_per_host': shape['nodes_per_host'], 'mode': mode,
                        'source': shape['source']},
              'simulated_hosts': copy_hosts, 'forks': forks, 'order': order, 'sla_seconds': sla_seconds,
              'ready_delay': ready['ready_delay'], 'readiness_measured': ready['measured'],
              'switch_samples': ready['samples'], 'projected_seconds': projected['seconds'],
              'rounds': projected['rounds']}
    try:
        copy = run_copy(settings, console, copy_hosts, shape['nodes_per_host'], mode, ready['ready_delay'], forks,
                        order, operator)
    except Exception as exc:   # the simulator may fail to start too: a failed rehearsal is a result
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        with ledger_io.opened(location) as handle:
            service.record(handle, dict(result, passed=False, measured_seconds=None,
                                        method=service.METHOD_MEASURED, message=f'the rehearsal failed: {message}'))
        if isinstance(exc, RunFailed):
            raise
        raise RunFailed(f'the rehearsal failed: {exc}') from None
    result['measured_seconds'] = copy['seconds']
    result['copy_switch_p95'] = service.readiness(copy['copy_switch_seconds'])['ready_delay'] \
        if copy['copy_switch_seconds'] else None
    copy_rounds = wave_planning.rollback_fork_rounds(copy['nodes'], {n['host'] for n in copy['nodes']}, forks, order)
    result['copy_projected_seconds'] = service.projection(copy_hosts, shape['nodes_per_host'], samples, forks,
                                                          rounds=copy_rounds)['seconds']
    if scaled:
        calibrated = service.calibrated_projection(copy['seconds'], (copy_hosts, copy_rounds),
                                                   (shape['hosts'], fleet_rounds), shape['nodes_per_host'], samples,
                                                   forks)
        result.update(projected_seconds=calibrated['seconds'], uncalibrated_seconds=projected['seconds'],
                      per_round_overhead=calibrated['per_round_overhead'],
                      method=service.METHOD_SCALED % (copy_hosts, shape['hosts']))
    else:
        result['method'] = service.METHOD_MEASURED
    passed, message = service.verdict(copy['seconds'], sla_seconds, result['projected_seconds'], scaled=scaled)
    result.update(passed=passed, message=message)
    with ledger_io.opened(location) as handle:
        service.record(handle, result)
    console.print(escape(f"measured {copy['seconds']:.1f} s on the copy ({copy_hosts} x {shape['nodes_per_host']}, "
                         f"model: {result['copy_projected_seconds']:.1f} s); projected "
                         f"{result['projected_seconds']:.0f} s for the fleet; SLA {sla_seconds:.0f} s"))
    console.print(escape(f"method: {result['method']}"))
    colour = 'green' if passed else 'red'
    console.print(f'[{colour}]rehearsal {"passed" if passed else "failed"}[/{colour}]: {escape(message)}')
    if not passed:
        raise RunFailed(f'rehearsal failed: {message} (docs/runbooks/rehearsal-failed.md)')


def _sla_and_forks(ctx, inventory, sla_seconds, forks):
    """--sla unless left at its default, then the inventory's wave_rollback_sla_seconds; --forks, else the
    inventory's wave_rollback_forks, else ansible.cfg's forks: the wave planner's own inputs (cmd_start)."""
    planner = cmd_start.rollback_settings(inventory) if inventory is not None else {
        'rollback_forks': fleet.ansible_forks()}
    if ctx.get_parameter_source('sla_seconds') == click.core.ParameterSource.DEFAULT:
        sla_seconds = planner.get('rollback_sla_seconds', sla_seconds)
    return sla_seconds, forks or planner['rollback_forks']
