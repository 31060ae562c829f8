"""The metrics exposition of one simulated node (docs/node-interface.md).

Names, types and labels are those of the real node (module_utils/_node_interface.py lists the
sources): the closest-peer successes are libp2p's histogram, its error counter a family of the
``error`` label, the version Info is on ``/metadata``, iroh's socket metrics are counters (``_total``).

Two formats (``SimConfig.exposition``):

- ``openmetrics`` (the default), as a real node serves it: prometheus-client 0.23.1's encoder
  (prometheus/client_rust ``src/encoding/text.rs``: ``# HELP`` with the registered help and a ``.``,
  ``# TYPE`` with the family name, integer counters and gauges, a histogram as ``_sum``, ``_count``
  then the cumulative ``_bucket`` series, ``# EOF``), served as ``application/openmetrics-text`` (ant-node
  ``src/networking/metrics/service.rs``). A labelled family's series exist from their first use, so a
  family nobody touched yet is declared with no sample (client_rust #271: the closest-peers error
  counter before the first error, the iroh request series of a libp2p-only node); iroh's socket group
  is there only on a node that runs iroh. Counters are the model's expected counts rounded down, so
  a node with a low rate shows one query, then two, as a real one does.
- ``text``: the classic text format 0.0.4 with the expected (fractional) counts and every series
  from the start, rendered from one fleet-wide format string (one ``%`` operation per node).

No per-node labels (Prometheus adds host, service_name and peer_id from file_sd). The daemon caches
the bytes per node and model version.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import (
    MODE_TRANSPORTS,
    MODES,
    TRANSPORTS,
)

from .model import HISTOGRAM_BUCKETS

CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
# ant-node/src/networking/metrics/service.rs METRICS_CONTENT_TYPE.
OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text;charset=utf-8;version=1.0.0'
EXPOSITIONS = ('openmetrics', 'text')


def content_type(exposition):
    return OPENMETRICS_CONTENT_TYPE if exposition == 'openmetrics' else CONTENT_TYPE

# Every metric name a node serves (the contract the integration test checks one by one).
NODE_METRIC_NAMES = (
    'ant_networking_connected_peers',
    'ant_networking_peers_in_routing_table',
    'ant_networking_open_connections',
    'ant_networking_estimated_network_size',
    'ant_networking_records_stored',
    'ant_node_uptime',
    'libp2p_kad_query_result_get_closest_peers_ok_bucket',
    'libp2p_kad_query_result_get_closest_peers_ok_sum',
    'libp2p_kad_query_result_get_closest_peers_ok_count',
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
    'socket_num_conns_direct_total',
    'socket_holepunch_attempts_total',
    'socket_paths_relay_total',
)
# libp2p-metrics kad: the number of peers a successful GetClosestPeers query returned.
CLOSEST_PEERS_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0)
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
    add('# HELP libp2p_kad_query_result_get_closest_peers_ok Number of peers returned by a successful '
        'GetClosestPeers query.')
    add('# TYPE libp2p_kad_query_result_get_closest_peers_ok histogram')
    for le in CLOSEST_PEERS_BUCKETS:
        add('libp2p_kad_query_result_get_closest_peers_ok_bucket{le="%s"} %%s' % _le(le))
    add('libp2p_kad_query_result_get_closest_peers_ok_bucket{le="+Inf"} %s')
    add('libp2p_kad_query_result_get_closest_peers_ok_sum %s')
    add('libp2p_kad_query_result_get_closest_peers_ok_count %s')
    add('# HELP libp2p_swarm_connections_established Number of connections established.')
    add('# TYPE libp2p_swarm_connections_established counter')
    add('libp2p_swarm_connections_established_total{role="Dialer",protocols="/ip4/udp/quic-v1"} %s')
    add('libp2p_swarm_connections_established_total{role="Listener",protocols="/ip4/udp/quic-v1"} %s')
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
    for name, help_text in (('socket_num_conns_direct', 'Number of connections with a successful handshake that '
                             'became direct.'),
                            ('socket_holepunch_attempts', 'Number of hole punching attempts.'),
                            ('socket_paths_relay', 'Number of relay paths.')):
        add('# HELP %s %s' % (name, help_text))
        add('# TYPE %s counter' % name)
        add('%s_total %%s' % name)
    return '\n'.join(lines) + '\n'


# The error counter family appears with its first error (a libp2p Family creates a series on first use).
ERROR_TEMPLATE = ('# HELP libp2p_kad_query_result_get_closest_peers_error Number of failed GetClosestPeers queries.\n'
                  '# TYPE libp2p_kad_query_result_get_closest_peers_error counter\n'
                  'libp2p_kad_query_result_get_closest_peers_error_total{error="Timeout"} %s\n')
METADATA_TEMPLATE = ('# HELP ant_node_antnode_version The version of the ant node.\n'
                     '# TYPE ant_node_antnode_version info\n'
                     'ant_node_antnode_version_info{antnode_version="%s"} 1\n'
                     '# EOF\n')


TEMPLATE = _build_template()


def _f(value):
    """Counter values are expected counts (floats): three decimals keep the text short."""
    return '%.3f' % value


def render_metadata(figures):
    """The node's ``/metadata`` page (the version Info; OpenMetrics text as prometheus-client serves it)."""
    return (METADATA_TEMPLATE % figures['version']).encode('ascii')


def without(text, families):
    """``text`` without the samples and HELP/TYPE lines of ``families`` (the simulator's
    --without-metric flag, for the conformance check)."""
    if not families:
        return text
    keep = []
    for line in text.split('\n'):
        words = line.split(' ', 3)
        name = words[2] if line.startswith('# ') and len(words) > 2 else line.split('{', 1)[0].split(' ', 1)[0]
        if any(name == f or (name.startswith(f) and name[len(f):] in ('_total', '_bucket', '_sum', '_count', '_info'))
               for f in families):
            continue
        keep.append(line)
    return '\n'.join(keep)


def render(figures, omit=(), exposition='openmetrics'):
    """One node's ``/metrics`` page for its figures (``Fleet.node_metrics``) as bytes."""
    if exposition == 'openmetrics':
        return without(render_openmetrics(figures), omit).encode('ascii')
    return render_text(figures, omit)


# The peers a successful closest-peers query found: most find a full close group and more.
CLOSEST_SHARES = (0.0, 0.0, 0.01, 0.06, 0.55, 0.93, 1.0, 1.0, 1.0, 1.0)


def _om_le(value):
    """A bucket bound as client_rust encodes an f64 label (dtoa): 1.0, 0.005."""
    return repr(float(value))


def _family(out, name, help_text, mtype):
    out.append('# HELP %s %s.\n# TYPE %s %s\n' % (name, help_text, name, mtype))


def _histogram(out, name, labels, total, sum_value, cumulative, bounds):
    """client_rust's encode_histogram: _sum, _count, then the cumulative buckets and +Inf."""
    sep = ',' if labels else ''
    out.append('%s_sum%s %r\n' % (name, '{%s}' % labels if labels else '', float(sum_value)))
    out.append('%s_count%s %d\n' % (name, '{%s}' % labels if labels else '', total))
    for le, count in zip(bounds, cumulative, strict=True):
        out.append('%s_bucket{%s%sle="%s"} %d\n' % (name, labels, sep, _om_le(le), count))
    out.append('%s_bucket{%s%sle="+Inf"} %d\n' % (name, labels, sep, total))


def render_openmetrics(figures):
    """OpenMetrics text of one node, as prometheus-client 0.23.1 encodes ant-node's registries."""
    c = figures['counters']
    mode = figures['mode']
    runs = MODE_TRANSPORTS[mode]
    phase = figures.get('phase', 0.0)

    def whole(value):
        """A counter's whole events: the model's expected count, its fraction carried by the node's phase."""
        return int(value + phase) if value > 0 else 0

    out = []
    # libp2p's registry (misc/metrics/src/kad.rs, swarm.rs): registered first.
    ok = whole(c.kad_ok)
    _family(out, 'libp2p_kad_query_result_get_closest_peers_ok',
            'Number of closest peers returned by a successful Kademlia get closest peers query', 'histogram')
    _histogram(out, 'libp2p_kad_query_result_get_closest_peers_ok', '', ok, float(ok * 17),
               [int(ok * share) for share in CLOSEST_SHARES], CLOSEST_PEERS_BUCKETS)
    _family(out, 'libp2p_kad_query_result_get_closest_peers_error',
            'Number of failed Kademlia get closest peers queries', 'counter')
    if whole(c.kad_err) >= 1:
        out.append('libp2p_kad_query_result_get_closest_peers_error_total{error="Timeout"} %d\n' % whole(c.kad_err))
    _family(out, 'libp2p_swarm_connections_established', 'Number of connections established', 'counter')
    for role, share in (('Dialer', 0.6), ('Listener', 0.4)):
        if whole(c.swarm_established * share):
            out.append('libp2p_swarm_connections_established_total{role="%s",protocols="/ip4/udp/quic-v1"} %d\n'
                       % (role, whole(c.swarm_established * share)))
    _family(out, 'libp2p_bandwidth_bytes', 'Bandwidth usage by direction and transport protocols', 'counter')
    for direction, value in (('Inbound', c.bandwidth_in), ('Outbound', c.bandwidth_out)):
        if whole(value):
            out.append('libp2p_bandwidth_bytes_total{protocols="/ip4/udp/quic-v1",direction="%s"} %d\n'
                       % (direction, whole(value)))
    # ant-node's sub-registries (networking/metrics/mod.rs "ant_networking", metrics.rs "ant_node").
    for name, help_text, value in (
            ('ant_networking_records_stored', 'The number of records stored locally', figures['records_stored']),
            ('ant_networking_connected_peers', 'The number of peers that we are currently connected to',
             figures['connected']),
            ('ant_networking_estimated_network_size',
             'The estimated number of nodes in the network calculated by the peers in our RT', figures['network_size']),
            ('ant_networking_open_connections', 'The number of active connections to other peers',
             figures['open_connections']),
            ('ant_networking_peers_in_routing_table', 'The total number of peers in our routing table',
             figures['routing_table']),
            ('ant_node_uptime', 'The uptime of the node in seconds', figures['uptime'])):
        _family(out, name, help_text, 'gauge')
        out.append('%s %d\n' % (name, value))
    # The dual-stack additions (docs/node-interface.md), encoded the same way.
    _family(out, 'ant_node_transport_mode', 'The active transport mode (1) among all modes (0)', 'gauge')
    out.extend('ant_node_transport_mode{mode="%s"} %d\n' % (m, 1 if m == mode else 0) for m in MODES)
    _family(out, 'ant_networking_transport_connected_peers', 'Peers connected over each transport', 'gauge')
    out.extend('ant_networking_transport_connected_peers{transport="%s"} %d\n' % (t, figures['connected_t'][t])
               for t in TRANSPORTS)
    _family(out, 'ant_networking_transport_requests', 'Requests sent over each transport, by outcome', 'counter')
    for t in TRANSPORTS:
        for outcome in ('success', 'error'):
            value = whole(c.requests[t][outcome])
            if value:
                out.append('ant_networking_transport_requests_total{transport="%s",outcome="%s"} %d\n'
                           % (t, outcome, value))
    _family(out, 'ant_networking_transport_request_duration_seconds', 'Request latency per transport', 'histogram')
    for t in TRANSPORTS:
        total = whole(c.requests[t]['success'] + c.requests[t]['error'])
        if total:
            _histogram(out, 'ant_networking_transport_request_duration_seconds', 'transport="%s"' % t, total,
                       c.hist_sum[t], [min(total, whole(v)) for v in c.hist[t]], HISTOGRAM_BUCKETS)
    _family(out, 'ant_networking_transport_dial_failures', 'Failed dials per transport and reason', 'counter')
    for t in TRANSPORTS:
        for reason in DIAL_REASONS:
            value = whole(c.dial[t][reason])
            if value:
                out.append('ant_networking_transport_dial_failures_total{transport="%s",reason="%s"} %d\n'
                           % (t, reason, value))
    if 'iroh' in runs:
        # iroh's socket group (iroh/src/socket/metrics.rs), counters of the process.
        for name, help_text, value in (
                ('socket_num_conns_direct', 'Number of connections with a successful handshake that became direct',
                 c.holepunch * 0.85),
                ('socket_holepunch_attempts', 'Number of hole punching attempts', c.holepunch),
                ('socket_paths_relay', 'Number of relay paths', c.holepunch * 0.15)):
            _family(out, name, help_text, 'counter')
            out.append('%s_total %d\n' % (name, whole(value)))
    out.append('# EOF\n')
    return ''.join(out)


def render_text(figures, omit=()):
    """The classic text format 0.0.4 (``--exposition text``): expected counts, every series from the start."""
    c = figures['counters']
    mode = figures['mode']
    ok = c.kad_ok
    values = [
        figures['connected'],
        figures['routing_table'],
        figures['open_connections'],
        figures['network_size'],
        figures['records_stored'],
        figures['uptime'],
    ]
    values.extend(_f(ok * share) for share in CLOSEST_SHARES)
    values += [
        _f(ok),
        _f(ok * 17.0),
        _f(ok),
        _f(c.swarm_established * 0.6),
        _f(c.swarm_established * 0.4),
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
    # iroh's socket metrics are counters of the process (they only grow, and reset on a restart): most
    # hole-punching attempts end in a direct connection, the rest on a relay path.
    values.append(_f(c.holepunch * 0.85))
    values.append(_f(c.holepunch))
    values.append(_f(c.holepunch * 0.15))
    text = TEMPLATE % tuple(values)
    if c.kad_err >= 1.0:
        text += ERROR_TEMPLATE % _f(c.kad_err)
    return without(text, omit).encode('ascii')


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
