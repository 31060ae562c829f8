"""``ant-fleet-sim``: start, inspect, fault and stop a simulated Autonomi fleet."""

from __future__ import annotations

import json
import sys

import click

from . import control, layout
from . import prometheus as prom
from .model import SimConfig

STATE_DIR = click.option('--state-dir', required=True, type=click.Path(file_okay=False),
                         help='Directory holding the fleet state (sim.json, hosts/, file_sd/, inventory/).')


def _fail(exc):
    click.echo('Error: %s' % exc, err=True)
    sys.exit(getattr(exc, 'exit_code', 1))


def _csv(value):
    if not value:
        return []
    out = []
    for item in value if isinstance(value, (list, tuple)) else [value]:
        out.extend(v.strip() for v in item.split(',') if v.strip())
    return out


@click.group(context_settings={'help_option_names': ['-h', '--help']})
def main():
    """Simulated Autonomi fleet: antctl hosts, node metrics endpoints, faults, Prometheus."""


@main.command()
@click.option('--hosts', default=10, show_default=True, type=int)
@click.option('--nodes-per-host', default=5, show_default=True, type=int)
@STATE_DIR
@click.option('--base-port', default=14000, show_default=True, type=int, help='Metrics port of the first node.')
@click.option('--api-port', default=18080, show_default=True, type=int, help='Control API port.')
@click.option('--ready-delay', default=3.0, show_default=True, type=float,
              help='Seconds from a (re)start until the node is ready (> 5 connected peers).')
@click.option('--restart-time', default=0.5, show_default=True, type=float,
              help='Seconds a restarting node keeps its metrics port closed.')
@click.option('--initial-mode', default='libp2p_only', show_default=True)
@click.option('--request-rate', default=20.0, show_default=True, type=float, help='Requests/s per node.')
@click.option('--client-read-rate', default=300.0, show_default=True, type=float, help='Client reads/s, fleet-wide.')
@click.option('--tick', default=1.0, show_default=True, type=float, help='Model step in seconds.')
@click.option('--seed', default=1, show_default=True, type=int)
@click.option('--rpc-start-delay', default=3.0, show_default=True, type=float,
              help='Seconds antctl start waits before it asks a started node over RPC.')
@click.option('--release-repo-online', is_flag=True,
              help='Let antctl upgrade download releases (by default the hosts are offline: only --path works).')
@click.option('--exposition', default='openmetrics', show_default=True, type=click.Choice(['openmetrics', 'text']),
              help='/metrics format: OpenMetrics with integer counters, as a real node, or the classic text format.')
@click.option('--query-rate', default=0.5, show_default=True, type=float,
              help='Closest-peers queries/s of a node that runs libp2p.')
@click.option('--without-metric', 'without_metrics', multiple=True,
              help='A contract metric family the nodes do not serve (repeatable), to see the conformance check fail.')
@click.option('--shards', default=0, show_default=True, type=int,
              help='Daemon processes holding the nodes (whole hosts each); 0: as many as the fleet needs '
                   '(one per 2,500 nodes: a process may hold 20,000 open files, a node needs 3).')
@click.option('--fresh', is_flag=True,
              help='Remove what the last fleet under STATE_DIR left (hosts with their drop-ins, the ledger '
                   'STATE_DIR/ledger.sqlite3, Alertmanager and Prometheus data) before starting.')
@click.option('--foreground', is_flag=True, help='Run in this process (debugging) instead of in the background.')
def up(hosts, nodes_per_host, state_dir, base_port, api_port, ready_delay, restart_time, initial_mode, request_rate,
       client_read_rate, tick, seed, rpc_start_delay, release_repo_online, exposition, query_rate, without_metrics,
       shards, fresh, foreground):
    """Start a simulated fleet of HOSTS x NODES-PER-HOST nodes in the background."""
    config = SimConfig(hosts=hosts, nodes_per_host=nodes_per_host, base_port=base_port, api_port=api_port,
                       ready_delay=ready_delay, restart_time=restart_time, initial_mode=initial_mode,
                       request_rate=request_rate, client_read_rate=client_read_rate, tick=tick, seed=seed,
                       rpc_start_delay=rpc_start_delay, release_repo_online=release_repo_online,
                       without_metrics=_csv(list(without_metrics)), shards=shards, exposition=exposition,
                       query_rate=query_rate)
    try:
        if foreground:
            sys.exit(control.run_foreground(state_dir, config))
        info = control.launch(state_dir, config, timeout=max(120.0, hosts * nodes_per_host / 50.0), fresh=fresh)
    except control.SimError as exc:
        _fail(exc)
    state = layout.StateDir(state_dir)
    click.echo('simulated fleet up: %d hosts x %d nodes in %d shard process(es) (pid %s)' % (
        hosts, nodes_per_host, info.get('shards', 1), info['pid']))
    click.echo('  metrics ports  127.0.0.1:%d-%d' % (base_port, base_port + hosts * nodes_per_host - 1))
    click.echo('  control API    %s' % info['api_url'])
    click.echo('  inventory      %s' % state.inventory)
    click.echo('  file_sd        %s' % state.file_sd)
    click.echo('  antctl         %s' % state.antctl('<host>'))
    click.echo('  log            %s' % state.log_file)


@main.command()
@STATE_DIR
def down(state_dir):
    """Stop the simulator and its Prometheus under STATE_DIR (no process left behind)."""
    stopped = control.shutdown(state_dir)
    click.echo('stopped: %s' % (', '.join(stopped) if stopped else 'nothing was running'))


@main.command()
@STATE_DIR
@click.option('--json', 'as_json', is_flag=True)
def status(state_dir, as_json):
    """Summary of the running fleet."""
    state = layout.StateDir(state_dir)
    try:
        view = control.client_for(state_dir).get('/api/fleet')
    except control.SimError as exc:
        _fail(exc)
    pinfo = prom.info(state) if prom.running_pid(state) else None
    if as_json:
        view['prometheus_url'] = pinfo['url'] if pinfo else None
        click.echo(json.dumps(view, indent=1))
        return
    reads = view['client_reads']
    click.echo('fleet: %d hosts x %d nodes = %d nodes, %d ready' % (
        len(view['hosts']), view['nodes_per_host'], view['total_nodes'], view['ready']))
    click.echo('modes: ' + ', '.join('%s=%d' % kv for kv in view['by_mode'].items()))
    down_nodes = [n for n in view['nodes'] if n['status'] != 'Running']
    click.echo('stopped: %s' % (', '.join('%s/%s' % (n['host'], n['service_name']) for n in down_nodes) or 'none'))
    click.echo('client reads: %.0f ok / %.0f total (%.4f), now %.4f' % (
        reads['ok'], reads['total'], reads['ratio'], reads['current_success']))
    click.echo('partition risk: %.3f' % view['partition_risk'])
    click.echo('faults: %s' % (', '.join('%s %s' % (f['id'], f['kind']) for f in view['faults']) or 'none'))
    click.echo('api: %s   prometheus: %s' % (state.api_url(), pinfo['url'] if pinfo else 'not running'))


@main.command('client-reads')
@STATE_DIR
def client_reads(state_dir):
    """Client read totals (the service disruption figure) as JSON."""
    try:
        click.echo(json.dumps(control.client_for(state_dir).get('/api/client_reads'), indent=1))
    except control.SimError as exc:
        _fail(exc)


# ---------------------------------------------------------------------------- faults
@main.group()
def fault():
    """Inject, list and clear faults (visible in the metrics within one scrape)."""


def _post_fault(state_dir, request):
    try:
        created = control.client_for(state_dir).post('/api/faults', request)
    except control.SimError as exc:
        _fail(exc)
    click.echo(json.dumps(created))


SCOPE_HOSTS = click.option('--hosts', multiple=True, help='Host names (repeat or comma-separate).')
SCOPE_NODES = click.option('--nodes', multiple=True, help='Nodes as host/service_name (repeat or comma-separate).')


@fault.command('transport')
@STATE_DIR
@click.option('--transport', required=True, help='libp2p or iroh')
@click.option('--error-rate', type=float, help='Extra error rate, 0..1.')
@click.option('--latency-ms', type=float, help='Extra median latency in milliseconds.')
@SCOPE_HOSTS
@SCOPE_NODES
@click.option('--mode', help='Only nodes in this mode (including nodes that enter it later).')
def fault_transport(state_dir, transport, error_rate, latency_ms, hosts, nodes, mode):
    """Error rate and/or latency on one transport."""
    request = {'kind': 'transport', 'transport': transport, 'hosts': _csv(hosts), 'nodes': _csv(nodes),
               'mode': mode}
    if error_rate is not None:
        request['error_rate'] = error_rate
    if latency_ms is not None:
        request['latency_ms'] = latency_ms
    _post_fault(state_dir, request)


@fault.command('crash-on-switch')
@STATE_DIR
@SCOPE_HOSTS
@SCOPE_NODES
@click.option('--mode', help='Only switches into this mode (default: any mode change).')
@click.option('--behaviour', default='crash', show_default=True,
              help='crash: the service dies after starting; never_ready: it runs but never gets past 5 peers.')
def fault_crash(state_dir, hosts, nodes, mode, behaviour):
    """Nodes that switch mode fail to come back (switching back to the previous mode restores them)."""
    _post_fault(state_dir, {'kind': 'crash_on_switch', 'hosts': _csv(hosts), 'nodes': _csv(nodes), 'mode': mode,
                            'behaviour': behaviour})


@fault.command('unresponsive')
@STATE_DIR
@SCOPE_HOSTS
@SCOPE_NODES
@click.option('--delay-s', type=float, help='Answer after this many seconds instead of never.')
@click.option('--rpc/--no-rpc', default=True, show_default=True, help='Whether the node\'s RPC hangs too.')
def fault_unresponsive(state_dir, hosts, nodes, delay_s, rpc):
    """Hung nodes: metrics (and RPC) accept connections but never answer (or answer late)."""
    _post_fault(state_dir, {'kind': 'unresponsive', 'hosts': _csv(hosts), 'nodes': _csv(nodes), 'delay_s': delay_s,
                            'rpc': rpc})


@fault.command('rpc-unresponsive')
@STATE_DIR
@SCOPE_HOSTS
@SCOPE_NODES
def fault_rpc_unresponsive(state_dir, hosts, nodes):
    """Only the nodes' RPC hangs: antctl start / stop / upgrade of their hosts fail."""
    _post_fault(state_dir, {'kind': 'rpc_unresponsive', 'hosts': _csv(hosts), 'nodes': _csv(nodes)})


@fault.command('partition')
@STATE_DIR
@click.option('--group', 'groups', multiple=True, help='A host group (comma-separated); give two or more.')
@click.option('--hosts', multiple=True, help='Split these hosts from all the others.')
def fault_partition(state_dir, groups, hosts):
    """Partition the network between host groups."""
    request = {'kind': 'partition'}
    if groups:
        request['groups'] = [_csv(g) for g in groups]
    else:
        request['hosts'] = _csv(hosts)
    _post_fault(state_dir, request)


@fault.command('list')
@STATE_DIR
def fault_list(state_dir):
    """Active faults as JSON."""
    try:
        click.echo(json.dumps(control.client_for(state_dir).get('/api/faults'), indent=1))
    except control.SimError as exc:
        _fail(exc)


@fault.command('clear')
@STATE_DIR
@click.option('--id', 'fault_id', help='Remove only this fault.')
def fault_clear(state_dir, fault_id):
    """Clear all faults (or one with --id)."""
    try:
        client = control.client_for(state_dir)
        result = client.delete('/api/faults/%s' % fault_id) if fault_id else client.delete('/api/faults')
    except control.SimError as exc:
        _fail(exc)
    click.echo(json.dumps(result))


# ---------------------------------------------------------------------------- prometheus
@main.group()
def prometheus():
    """Run a Prometheus server that scrapes the fleet (every 2 s up to 1,000 nodes, every 15 s above)."""


@prometheus.command('up')
@STATE_DIR
@click.option('--port', default=19090, show_default=True, type=int)
@click.option('--scrape-interval', help='e.g. 15s; default: 2s up to 1,000 nodes, 15s (timeout 10s) above.')
def prometheus_up(state_dir, port, scrape_interval):
    """Start Prometheus (config, rules dir, TSDB and log under STATE_DIR/prometheus); wait until ready."""
    try:
        url = prom.start(layout.StateDir(state_dir), port, scrape_interval=scrape_interval)
    except prom.PrometheusError as exc:
        click.echo('Error: %s' % exc, err=True)
        sys.exit(2 if 'clash' in str(exc) or 'already' in str(exc) else 1)
    pinfo = prom.info(layout.StateDir(state_dir))
    click.echo('prometheus up: %s, scraping every %s (timeout %s; config %s)' % (
        url, pinfo['scrape']['interval'], pinfo['scrape']['timeout'],
        layout.StateDir(state_dir).prometheus_dir / 'prometheus.yml'))


@prometheus.command('down')
@STATE_DIR
def prometheus_down(state_dir):
    """Stop the Prometheus started under STATE_DIR."""
    click.echo('prometheus stopped' if prom.stop(layout.StateDir(state_dir)) else 'prometheus was not running')


@prometheus.command('wait')
@STATE_DIR
@click.option('--timeout', default=90.0, show_default=True, type=float)
def prometheus_wait(state_dir, timeout):
    """Wait until Prometheus reports every node target and the simulator as up."""
    import time
    import urllib.request

    state = layout.StateDir(state_dir)
    pinfo = prom.info(state) if prom.running_pid(state) else None
    sim = state.read_sim()
    if not pinfo or not sim or not state.running_pid():
        click.echo('Error: the simulator and its Prometheus must both run under %s' % state.root, err=True)
        sys.exit(1)
    expected = sim['total_nodes'] + 1
    deadline = time.monotonic() + timeout
    up = 0
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(pinfo['url'] + '/api/v1/targets?state=active', timeout=5) as resp:
                targets = json.loads(resp.read())['data']['activeTargets']
            up = sum(1 for t in targets if t['health'] == 'up')
            if up >= expected:
                click.echo('all %d targets up' % expected)
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    click.echo('Error: only %d of %d targets up after %.0f s' % (up, expected, timeout), err=True)
    sys.exit(1)


# ---------------------------------------------------------------------------- alertmanager
@main.group()
def alertmanager():
    """Run an Alertmanager that Prometheus sends the fleet's alerts to."""


@alertmanager.command('up')
@STATE_DIR
@click.option('--port', default=19093, show_default=True, type=int)
def alertmanager_up(state_dir, port):
    """Start Alertmanager (config, data and log under STATE_DIR/alertmanager); point Prometheus at it."""
    state = layout.StateDir(state_dir)
    try:
        url = prom.start_alertmanager(state, port)
    except prom.PrometheusError as exc:
        click.echo('Error: %s' % exc, err=True)
        sys.exit(2 if 'clash' in str(exc) or 'already' in str(exc) else 1)
    click.echo('alertmanager up: %s (config %s)' % (url, prom.alertmanager_config_path(state)))


@alertmanager.command('down')
@STATE_DIR
def alertmanager_down(state_dir):
    """Stop the Alertmanager started under STATE_DIR."""
    click.echo('alertmanager stopped' if prom.stop_alertmanager(layout.StateDir(state_dir))
               else 'alertmanager was not running')


if __name__ == '__main__':
    main()
