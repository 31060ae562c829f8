"""The fleet simulator against a real Prometheus: contract metrics, antctl, faults, bad input."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from ant_fleet_sim import layout
from ant_fleet_sim.control import SimError
from ant_fleet_sim.metrics import NODE_METRIC_NAMES
from ant_fleet_sim.systemd import configured_modes
from ant_fleet_sim.testing import wait_for

pytestmark = pytest.mark.integration

PARTITION_RISK = ('avg(clamp(2 * (1 - ant_networking_peers_in_routing_table'
                  ' / (ant_networking_estimated_network_size - 1)), 0, 1))')


def sel(host, service):
    return 'host="%s",service_name="%s"' % (host, service)


def cli(stack, *args):
    return subprocess.run([sys.executable, '-m', 'ant_fleet_sim.cli', *args, '--state-dir', str(stack.state_dir)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(autouse=True)
def clean_faults(sim_stack):
    yield
    sim_stack.clear_faults()


def test_every_target_up(sim_stack):
    assert sim_stack.query_value('count(up{job="ant_node"} == 1)') == 12
    assert sim_stack.query_value('up{job="ant_fleet_sim"}') == 1
    labels = sim_stack.query('up{job="ant_node"}')[0]['metric']
    assert labels['host'].startswith('sim-host-') and labels['service_name'].startswith('antnode')
    assert labels['peer_id'].startswith('12D3KooW')


# Nodes serve OpenMetrics as prometheus-client 0.23.1 does: a labelled family's series appear with their
# first event (the closest-peer error counter at the first failed query, dial failures at the first failed
# dial), and iroh's socket group only on a node that runs iroh - none in this libp2p-only fleet.
FIRST_USE = ('libp2p_kad_query_result_get_closest_peers_error_total', 'ant_networking_transport_dial_failures_total',
             'socket_num_conns_direct_total', 'socket_holepunch_attempts_total', 'socket_paths_relay_total')


@pytest.mark.parametrize('name', [n for n in NODE_METRIC_NAMES if n not in FIRST_USE]
                         + ['ant_sim_client_requests_total'])
def test_contract_metric_in_prometheus(sim_stack, name):
    expected = 1 if name == 'ant_sim_client_requests_total' else 12
    sim_stack.wait_query('count(count by (host, service_name) ({__name__="%s"}))' % name,
                         lambda r: r and float(r[0]['value'][1]) == expected, timeout=30)


def test_transport_labels_and_mode_gauge(sim_stack):
    modes = sim_stack.query('sum by (mode) (ant_node_transport_mode)')
    assert {r['metric']['mode']: float(r['value'][1]) for r in modes} == {
        'libp2p_only': 12, 'dual_stack': 0, 'iroh_primary': 0, 'iroh_only': 0}
    transports = sim_stack.query('count by (transport) (ant_networking_transport_request_duration_seconds_bucket)')
    # A libp2p-only fleet carries no iroh traffic: its nodes never touched their iroh series (OpenMetrics).
    assert {r['metric']['transport'] for r in transports} == {'libp2p'}
    assert sim_stack.query('ant_networking_transport_requests_total{transport="iroh"}') == []
    assert sim_stack.query_value('min(ant_networking_connected_peers)') > 5


def test_switch_mode_through_antctl_and_back(sim_stack):
    host, svc, peer = 'sim-host-02', 'antnode1', 'antnode2'
    before = sim_stack.query_value('ant_node_uptime{%s}' % sel(host, svc))
    sim_stack.set_mode(host, svc, 'dual_stack')  # drop-in, daemon-reload, restart
    status = {n['service_name']: n for n in sim_stack.antctl_status(host)['nodes']}
    # antctl keeps no per-node environment (ant-service-management NodeServiceData has none)
    assert 'environment_variables' not in status[svc] and 'transport_mode' not in status[svc]
    configured = configured_modes(sim_stack.state, host)
    assert configured == {svc: 'dual_stack', peer: 'libp2p_only', 'antnode3': 'libp2p_only'}
    sim_stack.wait_query('ant_node_transport_mode{%s,mode="dual_stack"} == 1' % sel(host, svc), bool)
    sim_stack.wait_query('ant_node_uptime{%s} < %f' % (sel(host, svc), min(before, 60)), bool)
    sim_stack.wait_query('ant_networking_connected_peers{%s} > 5' % sel(host, svc), bool)
    # Alone in dual_stack it has no iroh peer yet; with a second dual-stack node iroh carries traffic.
    assert sim_stack.query_value('ant_networking_transport_connected_peers{%s,transport="iroh"}' % sel(host, svc)) == 0
    sim_stack.set_mode(host, peer, 'dual_stack')
    sim_stack.wait_query('ant_networking_transport_connected_peers{%s,transport="iroh"} == 1' % sel(host, svc), bool)
    sim_stack.wait_query('rate(ant_networking_transport_requests_total{%s,transport="iroh"}[6s]) > 0'
                         % sel(host, svc), bool)
    # Roll back: the nodes return to libp2p_only; the restarted process never touches its iroh series.
    sim_stack.set_mode(host, [svc, peer], 'libp2p_only')
    sim_stack.wait_query('ant_node_transport_mode{%s,mode="libp2p_only"} == 1' % sel(host, svc), bool)
    sim_stack.wait_query('absent(ant_networking_transport_requests_total{%s,transport="iroh"})' % sel(host, svc),
                         bool)


def test_stop_closes_the_port_and_start_reopens_it(sim_stack):
    host, svc = 'sim-host-04', 'antnode3'
    port = next(n['metrics_port'] for n in sim_stack.antctl_status(host)['nodes'] if n['service_name'] == svc)
    assert sim_stack.antctl(host, 'stop', '--service-name', svc).returncode == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
    status = {n['service_name']: n for n in sim_stack.antctl_status(host)['nodes']}
    assert status[svc]['status'] == 'Stopped'
    sim_stack.wait_query('up{%s} == 0' % sel(host, svc), bool)
    assert sim_stack.antctl(host, 'start', '--service-name', svc, '--interval', '0').returncode == 0
    sim_stack.wait_query('up{%s} == 1' % sel(host, svc), bool)
    sim_stack.wait_ready()


def test_error_fault_staged_on_mode_hits_nodes_that_switch_later(sim_stack):
    host, svc = 'sim-host-03', 'antnode2'
    sim_stack.fault('transport', transport='iroh', error_rate=0.5, mode='dual_stack')
    sim_stack.set_mode(host, svc, 'dual_stack')
    try:
        ratio = ('sum(rate(ant_networking_transport_requests_total{%s,transport="iroh",outcome="error"}[6s]))'
                 ' / sum(rate(ant_networking_transport_requests_total{%s,transport="iroh"}[6s]))'
                 % (sel(host, svc), sel(host, svc)))
        sim_stack.wait_query(ratio + ' > 0.4', bool)
        # libp2p on the same node is unaffected.
        lib = ratio.replace('iroh', 'libp2p')
        assert sim_stack.query_value(lib, default=0.0) < 0.05
        sim_stack.clear_faults()
        sim_stack.wait_query(ratio + ' < 0.05', bool)
    finally:
        sim_stack.set_mode(host, svc, 'libp2p_only')


def test_latency_fault_on_hosts(sim_stack):
    host = 'sim-host-04'
    sim_stack.set_mode(host, ['antnode1', 'antnode2'], 'dual_stack')
    try:
        p95 = ('histogram_quantile(0.95, sum by (le) (rate(ant_networking_transport_request_duration_seconds_bucket'
               '{host="%s",transport="iroh"}[6s])))' % host)
        sim_stack.wait_query(p95 + ' < 0.3', bool)
        sim_stack.fault('transport', transport='iroh', latency_ms=600, hosts=[host])
        sim_stack.wait_query(p95 + ' > 0.5', bool)
        sim_stack.clear_faults()
        sim_stack.wait_query(p95 + ' < 0.3', bool)
    finally:
        sim_stack.set_mode(host, ['antnode1', 'antnode2'], 'libp2p_only')


def test_crash_on_switch_and_restore(sim_stack):
    host, svc = 'sim-host-01', 'antnode3'
    sim_stack.fault('crash_on_switch', nodes=['%s/%s' % (host, svc)], mode='dual_stack')
    sim_stack.set_mode(host, svc, 'dual_stack')
    sim_stack.wait_query('up{%s} == 0' % sel(host, svc), bool)
    wait_for(lambda: {n['service_name']: n for n in sim_stack.antctl_status(host)['nodes']}[svc]['status']
             == 'Stopped', 10, what='antctl to report the crashed node as Stopped')
    # Switching back to its previous mode restores it.
    sim_stack.set_mode(host, svc, 'libp2p_only')
    sim_stack.wait_query('up{%s} == 1' % sel(host, svc), bool)
    sim_stack.wait_query('ant_networking_connected_peers{%s} > 5' % sel(host, svc), bool)


def test_unresponsive_node(sim_stack):
    host, svc = 'sim-host-01', 'antnode2'
    node = sim_stack.node(host, svc)
    sim_stack.fault('unresponsive', nodes=['%s/%s' % (host, svc)])
    sock = socket.create_connection(('127.0.0.1', node['metrics_port']), timeout=5)
    try:
        sock.sendall(b'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
        sock.settimeout(1.0)
        with pytest.raises(socket.timeout):
            sock.recv(100)
    finally:
        sock.close()
    sim_stack.wait_query('up{%s} == 0' % sel(host, svc), bool)
    sim_stack.wait_query('rate(ant_networking_transport_dial_failures_total{reason="timeout"}[6s]) > 0', bool)
    sim_stack.clear_faults()
    sim_stack.wait_query('up{%s} == 1' % sel(host, svc), bool)


def test_partition_between_host_groups(sim_stack):
    hosts = sim_stack.host_names
    sim_stack.wait_query(PARTITION_RISK + ' < 0.1', bool)
    sim_stack.fault('partition', groups=[hosts[:2], hosts[2:]])
    sim_stack.wait_query(PARTITION_RISK + ' > 0.8', bool)
    sim_stack.wait_query('sum(rate(ant_networking_transport_dial_failures_total{reason="unreachable"}[6s])) > 0',
                         bool)
    assert sim_stack.query_value('max(ant_networking_estimated_network_size)') == 12
    sim_stack.clear_faults()
    sim_stack.wait_query(PARTITION_RISK + ' < 0.1', bool)


def test_client_reads_figure(sim_stack):
    reads = sim_stack.client_reads()
    assert reads['total'] > 0 and 0 <= reads['ratio'] <= 1
    sim_stack.wait_query('rate(ant_sim_client_requests_total{outcome="ok"}[6s]) > 100', bool)


def test_bad_fault_input_refused_fleet_unchanged(sim_stack):
    before = sim_stack.fleet()
    cases = [
        ('transport', '--transport', 'iroh', '--error-rate', '-0.5'),
        ('transport', '--transport', 'iroh', '--error-rate', '1.5'),
        ('transport', '--transport', 'warp', '--error-rate', '0.5'),
        ('transport', '--transport', 'iroh', '--error-rate', '0.5', '--hosts', 'no-such-host'),
        ('transport', '--transport', 'iroh', '--error-rate', '0.5', '--mode', 'iroh_maybe'),
        ('unresponsive', '--nodes', 'sim-host-01/antnode42'),
        ('partition', '--group', 'sim-host-01'),
    ]
    for case in cases:
        res = cli(sim_stack, 'fault', *case)
        assert res.returncode == 2, (case, res.stdout, res.stderr)
        assert res.stderr.startswith('Error: '), res.stderr
    with pytest.raises(SimError, match='unknown host'):
        sim_stack.fault('partition', groups=[['sim-host-01'], ['atlantis']])
    after = sim_stack.fleet()
    assert after['faults'] == [] and sim_stack.faults() == []
    assert after['by_mode'] == before['by_mode']
    assert [n['status'] for n in after['nodes']] == [n['status'] for n in before['nodes']]


def test_antctl_errors_like_antctl(sim_stack):
    host = 'sim-host-02'
    res = sim_stack.antctl(host, 'stop', '--service-name', 'antnode77')
    assert res.returncode == 1 and "No service named 'antnode77'" in res.stderr
    res = sim_stack.antctl(host, 'upgrade', '--force', '--env', 'ANT_TRANSPORT_MODE=warp', '--service-name', 'antnode1',
                           '--interval', '10', '--path', '/tmp/antnode')
    assert res.returncode == 1 and 'ANT_TRANSPORT_MODE' in res.stderr
    res = sim_stack.antctl(host, 'upgrade', '--force', '--env', 'NOEQUALS', '--service-name', 'antnode1')
    assert res.returncode == 2 and 'KEY=VALUE' in res.stderr
    res = sim_stack.antctl(host, 'upgrade', '--interval', '10', '--connection-timeout', '5')
    assert res.returncode == 2
    assert set(configured_modes(sim_stack.state, host).values()) == {'libp2p_only'}
    assert {n['mode'] for n in sim_stack.fleet()['nodes'] if n['host'] == host} == {'libp2p_only'}
    table = sim_stack.antctl(host, 'status')
    assert table.returncode == 0 and 'antnode1' in table.stdout and 'RUNNING' in table.stdout


def test_port_clash_refused_running_fleet_unchanged(sim_stack, tmp_path):
    res = subprocess.run([sys.executable, '-m', 'ant_fleet_sim.cli', 'up', '--hosts', '1', '--nodes-per-host', '2',
                          '--state-dir', str(tmp_path / 'clash'), '--base-port', str(sim_stack.config.base_port),
                          '--api-port', str(layout.free_port())], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and 'port clash' in res.stderr, res.stderr
    assert sim_stack.fleet()['total_nodes'] == 12
    res = cli(sim_stack, 'status', '--json')
    assert res.returncode == 0 and json.loads(res.stdout)['total_nodes'] == 12


def test_prometheus_restart_keeps_scraping(sim_stack):
    url = sim_stack.prometheus_url
    sim_stack.stop_prometheus()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + '/-/ready', timeout=2)
    assert sim_stack.start_prometheus() == url
    sim_stack.wait_targets_up()
    assert sim_stack.query_value('count(up{job="ant_node"} == 1)') == 12


def test_api_refuses_malformed_requests(sim_stack):
    for method, path, body in [('POST', '/api/faults', b'not json'), ('POST', '/api/faults', b'[1, 2]'),
                               ('POST', '/api/hosts/sim-host-01/upgrade', b'"x"'),
                               ('POST', '/api/hosts/nowhere/stop', b'{}'), ('GET', '/api/nothing', None)]:
        req = urllib.request.Request(sim_stack.api_url + path, data=body, method=method)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        assert info.value.code in (400, 404), (path, info.value.code)
        assert 'error' in json.loads(info.value.read())
    assert sim_stack.faults() == []


def test_down_leaves_no_process(sim_stack_factory):
    stack = sim_stack_factory(hosts=2, nodes_per_host=2)
    pids = [stack.info['pid'], int((stack.state.prometheus_dir / 'prometheus.pid').read_text())]
    res = subprocess.run([sys.executable, '-m', 'ant_fleet_sim.cli', 'down', '--state-dir', str(stack.state_dir)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and 'prometheus' in res.stdout and 'simulator' in res.stdout
    for pid in pids:
        assert not layout.process_matches(pid, '')
    assert layout.port_in_use(stack.config.api_port) is False


def systemctl(stack, host, *args):
    return subprocess.run([str(stack.state.systemctl(host)), *args], capture_output=True, text=True, timeout=60)


def test_systemd_stand_in_applies_a_drop_in_only_after_reload_and_restart(sim_stack):
    host, svc = 'sim-host-03', 'antnode2'
    dropin = sim_stack.state.unit_dir(host) / f'{svc}.service.d' / 'ant-transport-mode.conf'
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text('[Service]\nEnvironment=ANT_TRANSPORT_MODE=dual_stack\n')
    try:
        assert systemctl(sim_stack, host, 'show', svc, '-p', 'NeedDaemonReload', '--value').stdout == 'yes\n'
        systemctl(sim_stack, host, 'restart', f'{svc}.service')  # not reloaded: the old environment
        wait_for(lambda: sim_stack.node(host, svc)['ready'], 30, what='restarted node ready')
        assert sim_stack.node(host, svc)['mode'] == 'libp2p_only'
        assert systemctl(sim_stack, host, 'daemon-reload').returncode == 0
        shown = systemctl(sim_stack, host, 'show', svc, '-p', 'Environment', '-p', 'NeedDaemonReload').stdout
        assert shown == 'Environment=ANT_LOG=ant_node=info ANT_TRANSPORT_MODE=dual_stack\nNeedDaemonReload=no\n'
        assert sim_stack.node(host, svc)['mode'] == 'libp2p_only'  # loaded, not yet running
        systemctl(sim_stack, host, 'restart', svc)
        wait_for(lambda: sim_stack.node(host, svc)['mode'] == 'dual_stack', 30, what='dual_stack after restart')
    finally:
        dropin.unlink()
        systemctl(sim_stack, host, 'daemon-reload')
        systemctl(sim_stack, host, 'restart', svc)
        wait_for(lambda: sim_stack.node(host, svc)['mode'] == 'libp2p_only', 30, what='back')


def test_systemd_stand_in_errors_like_systemctl(sim_stack):
    host = 'sim-host-03'
    missing = systemctl(sim_stack, host, 'restart', 'antnode9.service')
    assert missing.returncode == 5 and 'Unit antnode9.service not found.' in missing.stderr
    active = systemctl(sim_stack, host, 'is-active', 'antnode1')
    assert active.returncode == 0 and active.stdout == 'active\n'
    assert systemctl(sim_stack, host, 'frobnicate').returncode == 1


def test_multi_unit_restart_goes_on_past_a_missing_unit_like_systemctl(sim_stack):
    host = 'sim-host-03'
    before = {n['service_name']: n['pid'] for n in sim_stack.antctl_status(host)['nodes']}
    run = systemctl(sim_stack, host, 'restart', 'antnode1.service', 'antnode9.service', 'antnode2.service')
    assert run.returncode == 5
    assert run.stderr == 'Failed to restart antnode9.service: Unit antnode9.service not found.\n'
    after = {n['service_name']: n['pid'] for n in sim_stack.antctl_status(host)['nodes']}
    assert after['antnode1'] != before['antnode1'] and after['antnode2'] != before['antnode2']


def test_status_has_schema_v2_fields_and_no_per_node_environment(sim_stack):
    node = sim_stack.antctl_status('sim-host-04')['nodes'][0]
    for field in ('schema_version', 'listen_addr', 'rewards_address', 'network_id', 'rpc_socket_addr',
                  'connected_peers', 'evm_network', 'user_mode'):
        assert field in node, field
    assert node['schema_version'] == 2
    assert 'environment_variables' not in node and 'transport_mode' not in node
    host, port = node['rpc_socket_addr'].split(':')
    with urllib.request.urlopen(f'http://{host}:{port}/node_info', timeout=5) as resp:  # the node's RPC answers
        assert json.loads(resp.read())['peer_id'] == node['peer_id']


def test_upgrade_refuses_to_download_and_a_dead_rpc_aborts_antctl(sim_stack):
    host = 'sim-host-04'
    offline = sim_stack.antctl(host, 'upgrade', '--force', '--version', '0.4.6', '--service-name', 'antnode1')
    assert offline.returncode == 1
    assert offline.stderr.splitlines()[:2] == ['Error: ', '   0: Failed to download release after 3 tries.']
    sim_stack.fault('rpc_unresponsive', nodes=[f'{host}/antnode3'])
    addr = sim_stack.antctl_status(host)['nodes'][2]['rpc_socket_addr']
    for args in (['stop', '--service-name', 'antnode1'], ['start'],
                 ['upgrade', '--force', '--path', '/opt/antnode', '--service-name', 'antnode1']):
        res = sim_stack.antctl(host, *args)
        assert res.returncode == 1 and f"0: Could not connect to RPC endpoint 'https://{addr}'" in res.stderr, args
    assert all(n['status'] == 'Running' for n in sim_stack.antctl_status(host)['nodes'])  # nothing was done


def test_metrics_show_a_node_ready_when_it_is_not_at_the_next_tick(sim_stack_factory):
    # A real node's connected-peers gauge changes on every connection event; the simulator's ticks are
    # a minute apart here, so only a scrape that brings the fleet up to now can show the node ready.
    stack = sim_stack_factory(hosts=1, nodes_per_host=8, prometheus=False, tick=60.0, ready_delay=5.0)
    host, svc = stack.host_names[0], 'antnode3'
    port = stack.node(host, svc)['metrics_port']

    def peers():
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            return None  # restarting: the port is closed
        line = next(x for x in text.splitlines() if x.startswith('ant_networking_connected_peers '))
        return float(line.split()[1])

    assert peers() > 5
    assert systemctl(stack, host, 'restart', svc).returncode == 0
    wait_for(lambda: peers() is not None and peers() <= 5, 20, interval=0.05, what='the restarted node ramping up')
    wait_for(lambda: (peers() or 0) > 5, 20, interval=0.2, what='the node ready in its metrics, before the next tick')


def test_status_json_shows_the_last_full_refresh_and_the_table_refreshes(sim_stack_factory):
    # ant-node-manager/src/lib.rs status_report: refresh_node_registry(full_refresh = !output_json). Right after
    # a restart, --json still shows the peers of the last full refresh; the table asks every node over RPC.
    stack = sim_stack_factory(hosts=1, nodes_per_host=8, prometheus=False, ready_delay=30.0)
    host, svc = stack.host_names[0], 'antnode3'

    def table_peers():
        res = stack.antctl(host, 'status')
        assert res.returncode == 0, res.stderr
        row = next(line.split() for line in res.stdout.splitlines() if line.startswith(svc + ' '))
        return row[3]

    before = len(next(n for n in stack.antctl_status(host)['nodes'] if n['service_name'] == svc)['connected_peers'])
    assert before > 5 and int(table_peers()) > 5
    assert systemctl(stack, host, 'restart', svc).returncode == 0
    wait_for(lambda: stack.node(host, svc)['serving'], 30, what='the restarted node serving')
    node = next(n for n in stack.antctl_status(host)['nodes'] if n['service_name'] == svc)
    assert len(node['connected_peers']) == before  # stale: no full refresh with --json
    assert int(table_peers()) <= 5  # ramping up for 30 s: what the node says now


# ---------------------------------------------------------------------------- shards
SHARDED = dict(hosts=6, nodes_per_host=3, ready_delay=0.5, prometheus=False, seed=5)
GAUGES = ('ant_node_transport_mode', 'ant_networking_connected_peers', 'ant_networking_peers_in_routing_table',
          'ant_networking_transport_connected_peers', 'ant_networking_estimated_network_size',
          'ant_networking_records_stored')


def node_gauges(port):
    """The gauges of one node's /metrics (counters move with time), 'closed' or 'hung'."""
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=2) as resp:
            text = resp.read().decode()
    except urllib.error.URLError as exc:
        return 'hung' if isinstance(exc.reason, TimeoutError) else 'closed'
    except TimeoutError:
        return 'hung'
    return sorted(line for line in text.splitlines() if line.startswith(GAUGES))


def fleet_figures(stack):
    """Everything the fleet shows that does not depend on ports or on when it is read."""
    view = stack.fleet()
    for node in view['nodes']:
        node.pop('uptime')
        node['gauges'] = node_gauges(node.pop('metrics_port'))
    view['client_reads'] = view['client_reads']['current_success']
    hosts = {}
    for host in stack.host_names:
        table = stack.antctl(host, 'status')  # asks every running node over its RPC (another shard's, too)
        rows = [line.split() for line in table.stdout.splitlines() if line.startswith('antnode')]
        status = stack.antctl_status(host)['nodes']
        hosts[host] = {'rc': table.returncode, 'rows': rows, 'error': '0: Could not connect' in table.stderr,
                       'peers': [(n['service_name'], n['status'], n['connected_peers']) for n in status]}
    return view, hosts


def settled(stack):
    return all(n['ready'] for n in stack.fleet()['nodes'] if n['status'] == 'Running')


def test_a_sharded_fleet_behaves_as_the_single_process_one(sim_stack_factory):
    """The same operations and faults on a fleet in one process and on the same fleet in three: every
    node shows the same state, network view, gauges and antctl view, read from the process serving it."""
    single = sim_stack_factory(shards=1, **SHARDED)
    sharded = sim_stack_factory(shards=3, **SHARDED)
    assert (single.info['shards'], sharded.info['shards']) == (1, 3)
    assert sharded.client.get('/api/health')['listening'] == 18

    def act(stack):
        every = [n['service_name'] for n in stack.antctl_status('sim-host-02')['nodes']]
        stack.set_mode('sim-host-02', every, 'dual_stack')
        stack.set_mode('sim-host-05', every, 'iroh_only')  # libp2p-only and iroh-only nodes cannot meet
        stack.fault('crash_on_switch', hosts=['sim-host-03'], mode='iroh_primary')
        stack.set_mode('sim-host-03', ['antnode1'], 'iroh_primary')
        stack.fault('unresponsive', nodes=['sim-host-04/antnode2'])
        stack.fault('partition', groups=[['sim-host-01', 'sim-host-02'], ['sim-host-03', 'sim-host-04']])
        assert stack.antctl('sim-host-06', 'stop', '--service-name', 'antnode3').returncode == 0

    def compare():
        for stack in (single, sharded):
            wait_for(lambda stack=stack: settled(stack), 60, what='every running node ready')
        (view_1, hosts_1), (view_3, hosts_3) = fleet_figures(single), fleet_figures(sharded)
        for a, b in zip(view_1['nodes'], view_3['nodes'], strict=True):
            assert a == b, 'node %s/%s differs' % (a['host'], a['service_name'])
        assert view_1 == view_3
        assert hosts_1 == hosts_3
        return view_3, hosts_3

    for stack in (single, sharded):
        act(stack)
    view, hosts = compare()
    # The faults are there, in every shard: a crashed node, a hung one, a partition, a mode split.
    by_ref = {(n['host'], n['service_name']): n for n in view['nodes']}
    assert by_ref[('sim-host-03', 'antnode1')]['status'] == 'Stopped'
    assert by_ref[('sim-host-04', 'antnode2')]['gauges'] == 'hung' and hosts['sim-host-04']['error']
    assert by_ref[('sim-host-06', 'antnode3')]['gauges'] == 'closed'
    assert by_ref[('sim-host-05', 'antnode1')]['connected_peers'] == 2  # iroh-only: its own host only
    assert view['partition_risk'] > 0.7 and view['client_reads'] < 1
    for stack in (single, sharded):
        stack.clear_faults()
        stack.set_mode('sim-host-05', ['antnode1', 'antnode2', 'antnode3'], 'dual_stack')
        assert stack.antctl('sim-host-03', 'start', '--interval', '100').returncode == 0
    view, _ = compare()
    assert view['ready'] == 17 and view['client_reads'] == 1.0


# ---------------------------------------------------------------------------- a new fleet starts clean
def test_a_fresh_fleet_starts_clean_and_prometheus_keeps_each_fleets_series_apart(tmp_path):
    """`make sim-up` (``up --fresh``) starts a new fleet without the last one's drop-ins, ledger and
    Alertmanager data; without it they are kept. Either way each fleet's series live in a TSDB of their
    own: the old fleet's figures never dilute the new one's (they did for Prometheus' 5 min lookback)."""
    from ant_fleet_sim import prometheus as prom
    from ant_fleet_sim.testing import SimStack

    first = SimStack(tmp_path, hosts=3, nodes_per_host=2, tick=0.5).start()
    try:
        first.wait_targets_up()
        first.set_mode('sim-host-01', ['antnode1'], 'dual_stack')
        wait_for(lambda: first.query_value('count(ant_networking_connected_peers)') == 6, 30, what='6 series')
        first.state.ledger.write_text('the last fleet\'s ledger')
        (first.state.root / 'alertmanager' / 'data').mkdir(parents=True)
        (first.state.root / 'alertmanager' / 'data' / 'silences').write_text('old silences')
        old_data = prom.data_dir(first.state)
    finally:
        first.stop()

    def second_fleet(fresh):
        stack = SimStack(tmp_path, hosts=1, nodes_per_host=2, tick=0.5, fresh=fresh).start()
        try:
            stack.wait_targets_up()
            wait_for(lambda: stack.query('count(ant_networking_connected_peers)'), 30, what='a first scrape')
            return (stack.node('sim-host-01', 'antnode1')['mode'],
                    stack.query_value('count(ant_networking_connected_peers)'), prom.data_dir(stack.state),
                    stack.state.ledger.exists(), (stack.state.root / 'alertmanager' / 'data').exists())
        finally:
            stack.stop()

    mode, series, data, ledger, am_data = second_fleet(fresh=False)
    assert (mode, series, ledger, am_data) == ('dual_stack', 2, True, True)  # kept: booted from the drop-in
    assert data != old_data and not old_data.exists()
    mode, series, data_2, ledger, am_data = second_fleet(fresh=True)
    assert (mode, series, ledger, am_data) == ('libp2p_only', 2, False, False)
    assert data_2 != data


def test_a_moved_rpc_port_of_a_sharded_node_reaches_antctl(sim_stack_factory):
    """A node's RPC port is kept across restarts unless another process took it meanwhile (an outgoing
    connection's ephemeral port); then the node moves it. On a worker shard the primary keeps the registry
    antctl reads, so the worker must tell it: antctl's refresh (status, start, stop) asks the new port."""
    stack = sim_stack_factory(hosts=4, nodes_per_host=2, shards=2, prometheus=False)
    host, svc = 'sim-host-04', 'antnode1'  # on the second shard

    def rpc_addr():
        return next(n['rpc_socket_addr'] for n in stack.antctl_status(host)['nodes'] if n['service_name'] == svc)

    before = rpc_addr()
    assert systemctl(stack, host, 'stop', svc).returncode == 0
    wait_for(lambda: not stack.node(host, svc)['serving'], 30, what='the node stopped')
    squatter = socket.socket()
    try:
        squatter.bind(('127.0.0.1', int(before.rsplit(':', 1)[1])))  # bound, not listening: connects are refused
        assert systemctl(stack, host, 'start', svc).returncode == 0
        wait_for(lambda: stack.node(host, svc)['serving'], 30, what='the node serving again')
        wait_for(lambda: rpc_addr() != before, 10, what='the moved RPC port in antctl status --json')
        table = stack.antctl(host, 'status')  # asks every running node of the host over its RPC
        assert table.returncode == 0, table.stderr
    finally:
        squatter.close()
