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
import os
import shutil
import tempfile
import time
from pathlib import Path

import click
from rich.markup import escape

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, wave_planning
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
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


def _scraped_since(stack, since):
    """How many of the copy's nodes Prometheus scraped successfully after ``since`` (epoch seconds)."""
    from ant_fleet_sim import prometheus as sim_prometheus

    count = 0
    for target in stack.targets():
        if target.get('labels', {}).get('job') != sim_prometheus.NODE_JOB or target.get('health') != 'up':
            continue
        last = datetime.datetime.fromisoformat(target['lastScrape'])
        count += last.timestamp() > since
    return count


def _load_figures(stack, before, ended, client_read_rate):
    """The background load's figures once the rollback ended: the clients' reads during it, and how many nodes
    Prometheus scraped again after it (polled for three scrape intervals and the readiness wait)."""
    from ant_fleet_sim import prometheus as sim_prometheus
    from ant_fleet_sim.testing import SimStackError, wait_for

    after = stack.client_reads()
    total = stack.hosts * stack.nodes_per_host
    interval = alert_rules.parse_duration(sim_prometheus.scrape_settings(total)['interval'])
    try:
        wait_for(lambda: _scraped_since(stack, ended) >= total, timeout=3 * interval + 30, interval=1.0,
                 what='every node scraped after the rollback')
    except SimStackError:
        pass   # the figure below says how many were
    return {'scrape_interval': interval, 'client_read_rate': client_read_rate, 'targets': total,
            'targets_up_after': _scraped_since(stack, ended),
            'reads_total': round(after['total'] - before['total'], 1),
            'reads_failed': round(after['failed'] - before['failed'], 1),
            'load_average': round(os.getloadavg()[0], 2)}


def run_copy(settings, console, hosts, nodes_per_host, mode, ready_delay, forks, order, operator, workdir=None,
             load=None):
    """Start a simulated copy (``hosts`` x ``nodes_per_host`` in ``mode``), fast-roll it back to libp2p_only
    with playbooks/rollback.yml, stop it. Returns {seconds, copy_switch_seconds, start_seconds, nodes, load}: the
    rollback's wall time (the runner's start to its end), the copy's own measured switch times, its nodes and,
    with ``load`` ({client_read_rate}), the background load's figures: the copy is then scraped by a Prometheus
    at its size's interval and read by clients throughout (_load_figures)."""
    from ant_fleet_sim.testing import SimStack  # loads the simulator only for a rehearsal

    own = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix='ant-network-migration-rehearsal-'))
    scratch = workdir / 'rehearsal-ledger.sqlite3'
    console.print(escape(f'starting a simulated copy: {hosts} hosts x {nodes_per_host} nodes in {mode}, '
                         f'ready delay {ready_delay:.1f} s'))
    started = time.monotonic()
    extra = {'client_read_rate': float(load['client_read_rate'])} if load else {}
    stack = SimStack(workdir, hosts=hosts, nodes_per_host=nodes_per_host, ready_delay=ready_delay,
                     prometheus=bool(load), initial_mode=mode, fresh=True, **extra)
    figures = None
    try:
        stack.start()
        stack.wait_ready(timeout=max(120.0, 4 * ready_delay + hosts * nodes_per_host * 0.05))
        if load:
            stack.wait_targets_up(timeout=max(60.0, hosts * nodes_per_host * 0.05))
        start_seconds = time.monotonic() - started
        copy_nodes = [{'host': n['host'], 'service_name': n['service_name'], 'peer_id': n['peer_id'], 'mode': mode}
                      for n in stack.fleet()['nodes']]
        _seed(scratch, copy_nodes, mode)
        console.print(escape(f'copy ready in {start_seconds:.1f} s; fast rollback to libp2p_only '
                             f'({order}, {forks} forks)...'))
        extravars = {'rollback_strategy': 'fast', 'rollback_order': order, 'target': _modes.LIBP2P_ONLY,
                     'reason': 'rollback rehearsal on a simulated copy', 'trigger': 'rehearsal', 'operator': operator}
        reads_before = stack.client_reads() if load else None
        begin = time.monotonic()
        common.run_or_fail(settings, console, 'rollback.yml', extravars, 'rehearsal: fast rollback', scratch,
                           expected_hosts=hosts, inventory=str(stack.inventory), forks=forks)
        seconds = time.monotonic() - begin
        if load:
            figures = _load_figures(stack, reads_before, time.time(), load['client_read_rate'])
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
            'start_seconds': round(start_seconds, 1), 'nodes': copy_nodes, 'load': figures}


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
@click.option('--under-load', is_flag=True, help='Rehearse under a background load: a Prometheus scrapes the copy '
              "at its size's interval and clients read throughout (the preflight's load_tested item needs one).")
@click.option('--client-reads', type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              help='With --under-load: client reads per second across the copy.')
@click.option('--max-read-loss', type=click.FloatRange(min=0, max=100), default=100 * service.DEFAULT_MAX_READ_LOSS,
              show_default=True, help='With --under-load: the percentage of client reads the rollback may cost.')
@common.operator_option()
@click.pass_context
def rehearse(ctx, forks, sla_seconds, max_simulated_hosts, ready_delay, mode, order, under_load, client_reads,
             max_read_loss, operator):
    """Rehearse the fast rollback on a simulated copy of this fleet's shape and compare its time with the SLA.

    The copy has the fleet's host count (at most --max-simulated-hosts), nodes per host and migrated mode,
    and the readiness delay the real nodes' switches measured; playbooks/rollback.yml (fast, to libp2p_only)
    runs against it with the rollback's forks. The result is recorded in the ledger (event rehearsal) and
    the preflight's rollback_tested item needs a recent passed one (docs/preflight.md). With --under-load the
    copy is scraped and read throughout, and the reads the rollback cost are judged too (the preflight's
    load_tested item). Exit 1 when the rehearsal is over the SLA, its load's limits, or failed.

    \b
    Examples:
      ant-network-migration rehearse
      ant-network-migration rehearse --max-simulated-hosts 20 --forks 100
      ant-network-migration rehearse --under-load --client-reads 500
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
    load = {'client_read_rate': client_reads} if under_load else None
    if load:
        console.print(escape(f'under load: a Prometheus scrapes the copy and clients read {client_reads:g} records/s '
                             f'throughout; the rollback may cost at most {max_read_loss:g} % of the reads'))
    try:
        copy = run_copy(settings, console, copy_hosts, shape['nodes_per_host'], mode, ready['ready_delay'], forks,
                        order, operator, load=load)
    except Exception as exc:   # the simulator may fail to start too: a failed rehearsal is a result
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        failed = dict(result, passed=False, measured_seconds=None, method=service.METHOD_MEASURED,
                      message=f'the rehearsal failed: {message}')
        if load:
            failed['load'] = dict(load, passed=False, message=f'under load: the rehearsal failed: {message}',
                                  max_read_loss=max_read_loss / 100.0, method=service.LOAD_METHOD)
        with ledger_io.opened(location) as handle:
            service.record(handle, failed)
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
    load_passed = True
    if load:
        load_passed, load_message = service.load_verdict(copy['load'], max_read_loss / 100.0)
        result['load'] = dict(copy['load'], passed=load_passed, message=load_message,
                              max_read_loss=max_read_loss / 100.0, method=service.LOAD_METHOD)
    with ledger_io.opened(location) as handle:
        service.record(handle, result)
    console.print(escape(f"measured {copy['seconds']:.1f} s on the copy ({copy_hosts} x {shape['nodes_per_host']}, "
                         f"model: {result['copy_projected_seconds']:.1f} s); projected "
                         f"{result['projected_seconds']:.0f} s for the fleet; SLA {sla_seconds:.0f} s"))
    console.print(escape(f"method: {result['method']}"))
    if load:
        figures = result['load']
        console.print(escape(f"under load (load average {figures['load_average']:g}): {figures['reads_failed']:g} of "
                             f"{figures['reads_total']:g} client reads failed during the rollback; "
                             f"{figures['targets_up_after']} of {figures['targets']} nodes scraped again after it"))
        message = f"{message}; {figures['message']}"
    ok = passed and load_passed
    colour = 'green' if ok else 'red'
    console.print(f'[{colour}]rehearsal {"passed" if ok else "failed"}[/{colour}]: {escape(message)}')
    if not ok:
        raise RunFailed(f'rehearsal failed: {message} (docs/runbooks/rehearsal-failed.md)')


def _sla_and_forks(ctx, inventory, sla_seconds, forks):
    """--sla unless left at its default, then the inventory's wave_rollback_sla_seconds; --forks, else the
    inventory's wave_rollback_forks, else ansible.cfg's forks: the wave planner's own inputs (cmd_start)."""
    planner = cmd_start.rollback_settings(inventory) if inventory is not None else {
        'rollback_forks': fleet.ansible_forks()}
    if ctx.get_parameter_source('sla_seconds') == click.core.ParameterSource.DEFAULT:
        sla_seconds = planner.get('rollback_sla_seconds', sla_seconds)
    return sla_seconds, forks or planner['rollback_forks']
