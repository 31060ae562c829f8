"""Prometheus text exposition of one simulated node (docs/node-interface.md).

One format string for the whole fleet (no per-node labels: Prometheus adds host,
service_name and peer_id from file_sd), filled with a tuple of values: rendering a node costs
one ``%`` operation. The daemon caches the bytes per node and model version.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODES, TRANSPORTS

from .model import HISTOGRAM_BUCKETS

CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

# Every metric name a node serves (the contract the integration test checks one by one).
NODE_METRIC_NAMES = (
    'ant_networking_connected_peers',
    'ant_networking_peers_in_routing_table',
    'ant_networking_open_connections',
    'ant_networking_estimated_network_size',
    'ant_networking_records_stored',
    'ant_node_uptime',
    'ant_node_antnode_version_info',
    'libp2p_kad_query_result_get_closest_peers_ok_total',
    'libp2p_kad_query_result_get_closest_peers_error_total',
    'libp2p_swarm_connections_established_total',
    'libp2p_bandwidth_bytes_total',
    'ant_node_transport_mode',
    'ant_networking_transport_connected_peers',
    'ant_networking_transport_requests_total',
    'ant_networking_transport_request_duration_seconds_bucket',
    'ant_networking_transport_request_duration_seconds_sum',
    'ant_networking_transport_request_duration_seconds_count',
    'ant_networking_transport_dial_failures_total',
    'socket_num_conns_direct',
    'socket_holepunch_attempts_total',
    'socket_paths_relay',
)
DIAL_REASONS = ('unreachable', 'timeout', 'handshake')


def _le(value):
    text = repr(float(value))
    return text[:-2] if text.endswith('.0') else text


def _build_template():
    lines = []
    add = lines.append

    def gauge(name, help_text, labels=''):
        add('# HELP %s %s' % (name, help_text))
        add('# TYPE %s gauge' % name)
        add('%s%s %%s' % (name, labels))

    gauge('ant_networking_connected_peers', 'The number of peers we are connected to.')
    gauge('ant_networking_peers_in_routing_table', 'The number of peers in our routing table.')
    gauge('ant_networking_open_connections', 'The number of open connections.')
    gauge('ant_networking_estimated_network_size', 'The estimated number of nodes in the network.')
    gauge('ant_networking_records_stored', 'The number of records stored locally.')
    gauge('ant_node_uptime', 'The uptime of the node in seconds.')
    add('# HELP ant_node_antnode_version_info The antnode version.')
    add('# TYPE ant_node_antnode_version_info gauge')
    add('ant_node_antnode_version_info{antnode_version="%s"} 1')
    add('# HELP libp2p_kad_query_result_get_closest_peers_ok_total Successful GetClosestPeers queries.')
    add('# TYPE libp2p_kad_query_result_get_closest_peers_ok_total counter')
    add('libp2p_kad_query_result_get_closest_peers_ok_total %s')
    add('# HELP libp2p_kad_query_result_get_closest_peers_error_total Failed GetClosestPeers queries.')
    add('# TYPE libp2p_kad_query_result_get_closest_peers_error_total counter')
    add('libp2p_kad_query_result_get_closest_peers_error_total{error="Timeout"} %s')
    add('# HELP libp2p_swarm_connections_established_total Connections established by the swarm.')
    add('# TYPE libp2p_swarm_connections_established_total counter')
    add('libp2p_swarm_connections_established_total{role="Dialer"} %s')
    add('# HELP libp2p_bandwidth_bytes_total Bandwidth usage by direction and transport protocols.')
    add('# TYPE libp2p_bandwidth_bytes_total counter')
    add('libp2p_bandwidth_bytes_total{protocols="/ip4/udp/quic-v1",direction="Inbound"} %s')
    add('libp2p_bandwidth_bytes_total{protocols="/ip4/udp/quic-v1",direction="Outbound"} %s')
    add('# HELP ant_node_transport_mode The active transport mode (1) among all modes (0).')
    add('# TYPE ant_node_transport_mode gauge')
    for mode in MODES:
        add('ant_node_transport_mode{mode="%s"} %%s' % mode)
    add('# HELP ant_networking_transport_connected_peers Peers connected over each transport.')
    add('# TYPE ant_networking_transport_connected_peers gauge')
    for t in TRANSPORTS:
        add('ant_networking_transport_connected_peers{transport="%s"} %%s' % t)
    add('# HELP ant_networking_transport_requests_total Requests sent over each transport, by outcome.')
    add('# TYPE ant_networking_transport_requests_total counter')
    for t in TRANSPORTS:
        for outcome in ('success', 'error'):
            add('ant_networking_transport_requests_total{transport="%s",outcome="%s"} %%s' % (t, outcome))
    add('# HELP ant_networking_transport_request_duration_seconds Request latency per transport.')
    add('# TYPE ant_networking_transport_request_duration_seconds histogram')
    for t in TRANSPORTS:
        for le in HISTOGRAM_BUCKETS:
            add('ant_networking_transport_request_duration_seconds_bucket{transport="%s",le="%s"} %%s'
                % (t, _le(le)))
        add('ant_networking_transport_request_duration_seconds_bucket{transport="%s",le="+Inf"} %%s' % t)
        add('ant_networking_transport_request_duration_seconds_sum{transport="%s"} %%s' % t)
        add('ant_networking_transport_request_duration_seconds_count{transport="%s"} %%s' % t)
    add('# HELP ant_networking_transport_dial_failures_total Failed dials per transport and reason.')
    add('# TYPE ant_networking_transport_dial_failures_total counter')
    for t in TRANSPORTS:
        for reason in DIAL_REASONS:
            add('ant_networking_transport_dial_failures_total{transport="%s",reason="%s"} %%s' % (t, reason))
    gauge('socket_num_conns_direct', 'iroh: connections using a direct path.')
    add('# HELP socket_holepunch_attempts_total iroh: hole-punching attempts.')
    add('# TYPE socket_holepunch_attempts_total counter')
    add('socket_holepunch_attempts_total %s')
    gauge('socket_paths_relay', 'iroh: connections using a relay path.')
    return '\n'.join(lines) + '\n'


TEMPLATE = _build_template()


def _f(value):
    """Counter values are expected counts (floats): three decimals keep the text short."""
    return '%.3f' % value


def render(figures):
    """Prometheus text for one node's figures (``Fleet.node_metrics``) as bytes."""
    c = figures['counters']
    mode = figures['mode']
    values = [
        figures['connected'],
        figures['routing_table'],
        figures['open_connections'],
        figures['network_size'],
        figures['records_stored'],
        figures['uptime'],
        figures['version'],
        _f(c.kad_ok),
        _f(c.kad_err),
        _f(c.swarm_established),
        _f(c.bandwidth_in),
        _f(c.bandwidth_out),
    ]
    values.extend(1 if m == mode else 0 for m in MODES)
    connected_t = figures['connected_t']
    values.extend(connected_t[t] for t in TRANSPORTS)
    for t in TRANSPORTS:
        req = c.requests[t]
        values.append(_f(req['success']))
        values.append(_f(req['error']))
    for t in TRANSPORTS:
        total = c.requests[t]['success'] + c.requests[t]['error']
        values.extend(_f(v) for v in c.hist[t])
        values.append(_f(total))
        values.append('%.6f' % c.hist_sum[t])
        values.append(_f(total))
    for t in TRANSPORTS:
        dial = c.dial[t]
        values.extend(_f(dial[r]) for r in DIAL_REASONS)
    values.append(figures['iroh_direct'])
    values.append(_f(c.holepunch))
    values.append(figures['iroh_relay'])
    return (TEMPLATE % tuple(values)).encode('ascii')


def render_sim_metrics(fleet):
    """The simulator's own /metrics (API port, job ant_fleet_sim): the service disruption figure."""
    reads = fleet.client_reads()
    now = fleet.clock()
    by_mode = {m: 0 for m in MODES}
    ready = 0
    for node in fleet.nodes:
        by_mode[node.mode] += 1
        if fleet.is_ready(node, now):
            ready += 1
    lines = [
        '# HELP ant_sim_client_requests_total Simulated client reads by outcome (service disruption figure).',
        '# TYPE ant_sim_client_requests_total counter',
        'ant_sim_client_requests_total{outcome="ok"} %.3f' % reads['ok'],
        'ant_sim_client_requests_total{outcome="failed"} %.3f' % reads['failed'],
        '# HELP ant_sim_client_read_success_ratio Current probability that a client read succeeds.',
        '# TYPE ant_sim_client_read_success_ratio gauge',
        'ant_sim_client_read_success_ratio %s' % reads['current_success'],
        '# HELP ant_sim_nodes Simulated nodes by transport mode.',
        '# TYPE ant_sim_nodes gauge',
    ]
    lines.extend('ant_sim_nodes{mode="%s"} %d' % (m, n) for m, n in by_mode.items())
    lines += [
        '# HELP ant_sim_nodes_ready Simulated nodes that are ready (more than 5 connected peers).',
        '# TYPE ant_sim_nodes_ready gauge',
        'ant_sim_nodes_ready %d' % ready,
        '# HELP ant_sim_faults_active Active injected faults.',
        '# TYPE ant_sim_faults_active gauge',
        'ant_sim_faults_active %d' % len(fleet.faults),
        '# HELP ant_sim_partition_risk Partition risk as the alert rules derive it (for cross-checks).',
        '# TYPE ant_sim_partition_risk gauge',
        'ant_sim_partition_risk %.6f' % fleet.partition_risk(),
    ]
    return ('\n'.join(lines) + '\n').encode('ascii')
