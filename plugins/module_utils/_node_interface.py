# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node interface in one place: metric names, types, labels and the transport-mode switch.

docs/node-interface.md is the prose of this file. The modules read nodes with these names, the
simulator serves them, the conformance check verifies them against a real host and the alert
rules are written against them. Runs on fleet hosts: standard library only.

Sources of the real definitions (read, not copied):
- maidsafe/autonomi ``ant-node/src/networking/metrics/mod.rs`` (sub-registry ``ant_networking``),
  ``ant-node/src/metrics.rs`` (sub-registry ``ant_node``; the version Info on the *metadata*
  registry, served on ``/metadata``);
- libp2p/rust-libp2p ``misc/metrics/src/kad.rs`` (``query_result_get_closest_peers_ok`` is a
  Histogram of the number of peers found, ``..._error`` a Family{error} of Counters) and
  ``misc/metrics/src/swarm.rs`` (``connections_established`` Family{role, protocols});
- n0-computer/iroh ``iroh/src/socket/metrics.rs`` (group ``socket``, all Counters; the group
  was ``magicsock`` before iroh 0.96).
"""

from __future__ import annotations

# The systemd drop-in that carries a node's transport mode (docs/node-interface.md, "The switch").
TRANSPORT_MODE_ENV = 'ANT_TRANSPORT_MODE'
DEFAULT_UNIT_DIR = '/etc/systemd/system'
DEFAULT_SYSTEMCTL = 'systemctl'
DROPIN_NAME = 'ant-transport-mode.conf'
# A dual-stack capable node started without ANT_TRANSPORT_MODE runs this mode.
MODE_WITHOUT_ENV = 'libp2p_only'

# A node serves metrics only when antctl added it with --enable-metrics-server or --metrics-port
# (ant-node-manager/src/add_services/mod.rs: metrics_port is None otherwise, and antctl then starts the
# node without --metrics-server-port); nothing the collection does can work without them.
METRICS_SERVER_FIX = 'antctl add --enable-metrics-server'


def no_metrics_port_reason(service):
    """Why a node whose ``metrics_port`` is null cannot be read, and what to do about it."""
    return (f'{service} has no metrics port (metrics_port is null in antctl status --json: antctl added it without '
            '--enable-metrics-server or --metrics-port, so it serves no metrics and its mode and readiness cannot be '
            f'read); antctl cannot turn the metrics server on for an existing node: add nodes with '
            f'`{METRICS_SERVER_FIX}` (or --metrics-port PORT)')


# Paths a node serves on its metrics port.
METRICS_PATH = '/metrics'
METADATA_PATH = '/metadata'

# Metric names (Prometheus text names, i.e. with the _total / _count suffixes as exposed).
M_MODE = 'ant_node_transport_mode'
M_CONNECTED = 'ant_networking_connected_peers'
M_TRANSPORT_CONNECTED = 'ant_networking_transport_connected_peers'
M_ROUTING_TABLE = 'ant_networking_peers_in_routing_table'
M_OPEN_CONNECTIONS = 'ant_networking_open_connections'
M_NETWORK_SIZE = 'ant_networking_estimated_network_size'
M_RECORDS = 'ant_networking_records_stored'
M_UPTIME = 'ant_node_uptime'
M_VERSION = 'ant_node_antnode_version_info'          # on /metadata
M_CLOSEST_OK = 'libp2p_kad_query_result_get_closest_peers_ok'    # histogram: _bucket/_sum/_count
M_CLOSEST_OK_COUNT = M_CLOSEST_OK + '_count'
M_CLOSEST_ERROR = 'libp2p_kad_query_result_get_closest_peers_error_total'  # {error}; absent until the first
M_SWARM_ESTABLISHED = 'libp2p_swarm_connections_established_total'          # {role, protocols}
M_BANDWIDTH = 'libp2p_bandwidth_bytes_total'
M_REQUESTS = 'ant_networking_transport_requests_total'
M_DURATION = 'ant_networking_transport_request_duration_seconds'
M_DURATION_BUCKET = M_DURATION + '_bucket'
M_DIAL_FAILURES = 'ant_networking_transport_dial_failures_total'
# iroh socket counters; IROH_GROUPS lists the accepted group prefixes, newest first.
IROH_GROUPS = ('socket', 'magicsock')
M_IROH_DIRECT = 'num_conns_direct_total'
M_IROH_RELAY = 'paths_relay_total'
M_IROH_HOLEPUNCH = 'holepunch_attempts_total'


def iroh_names(suffix):
    """The accepted full names of one iroh counter (``socket_...`` first, then ``magicsock_...``)."""
    return tuple(f'{group}_{suffix}' for group in IROH_GROUPS)


# The contract: what a dual-stack ant-node must serve. Each item: name (the family name of the
# TYPE line), type, the labels every sample carries, the path, whether the collection needs it
# (required) and where it can be absent (``absent_ok``: a counter family that appears only
# after its first event). The conformance module checks a host against this list.
CONTRACT_METRICS = (
    # name, type, labels, path, required, absent_ok
    (M_MODE, 'gauge', ('mode',), METRICS_PATH, True, False),
    (M_CONNECTED, 'gauge', (), METRICS_PATH, True, False),
    (M_TRANSPORT_CONNECTED, 'gauge', ('transport',), METRICS_PATH, True, False),
    (M_ROUTING_TABLE, 'gauge', (), METRICS_PATH, True, False),
    (M_OPEN_CONNECTIONS, 'gauge', (), METRICS_PATH, False, False),
    (M_NETWORK_SIZE, 'gauge', (), METRICS_PATH, False, False),
    (M_RECORDS, 'gauge', (), METRICS_PATH, False, False),
    (M_UPTIME, 'gauge', (), METRICS_PATH, False, False),
    (M_VERSION[:-len('_info')], 'info', ('antnode_version',), METADATA_PATH, False, False),
    (M_CLOSEST_OK, 'histogram', (), METRICS_PATH, True, False),
    (M_CLOSEST_ERROR[:-len('_total')], 'counter', ('error',), METRICS_PATH, True, True),
    (M_SWARM_ESTABLISHED[:-len('_total')], 'counter', ('role', 'protocols'), METRICS_PATH, False, False),
    (M_REQUESTS[:-len('_total')], 'counter', ('transport', 'outcome'), METRICS_PATH, True, False),
    (M_DURATION, 'histogram', ('transport',), METRICS_PATH, True, False),
    (M_DIAL_FAILURES[:-len('_total')], 'counter', ('transport', 'reason'), METRICS_PATH, False, True),
    # iroh's socket group (``magicsock`` before iroh 0.96 is accepted too); only a node running iroh has it.
    ('socket_num_conns_direct', 'counter', (), METRICS_PATH, False, True),
    ('socket_paths_relay', 'counter', (), METRICS_PATH, False, True),
    ('socket_holepunch_attempts', 'counter', (), METRICS_PATH, False, True),
)
