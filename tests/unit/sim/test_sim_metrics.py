"""Metrics text: every contract name, consistent with the mode, parseable by the collection's reader, and
OpenMetrics as prometheus-client 0.23.1 encodes a real node's (the default) next to the classic text format."""

from __future__ import annotations

import re

from simclock import make_fleet, step, switch_all

from ansible_collections.autonomi.network_migration.plugins.module_utils import _node_metrics
from ansible_collections.autonomi.network_migration.plugins.module_utils._conformance import (
    PRESENT,
    Conformance,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import CONTRACT_METRICS
from ant_fleet_sim.metrics import NODE_METRIC_NAMES, render, render_metadata, render_sim_metrics


def text_of(fleet, node, exposition='openmetrics'):
    return render(fleet.node_metrics(node), exposition=exposition).decode()


def read(fleet, node):
    return _node_metrics.NodeMetrics(_node_metrics.Metrics.from_text(text_of(fleet, node)))


def test_every_contract_metric_present_in_the_classic_format():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3)
    step(fleet, clock, 2)
    text = text_of(fleet, fleet.nodes[0], exposition='text')
    names = {line.split('{')[0].split(' ')[0] for line in text.splitlines() if line and not line.startswith('#')}
    # libp2p creates the error counter with the first failed query: none yet.
    error = 'libp2p_kad_query_result_get_closest_peers_error_total'
    assert set(NODE_METRIC_NAMES) - {error} <= names and error not in names
    assert '# TYPE ant_networking_transport_request_duration_seconds histogram' in text
    assert '# TYPE libp2p_kad_query_result_get_closest_peers_ok histogram' in text
    assert 'le="+Inf"' in text
    assert 'ant_node_antnode_version_info' not in text  # on /metadata, as the real node serves it
    assert 'ant_node_antnode_version_info{antnode_version="0.4.6"} 1' in render_metadata(fleet.node_metrics(
        fleet.nodes[0])).decode()


def test_openmetrics_is_what_prometheus_client_0_23_1_prints():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3, query_rate=0.5)
    switch_all(fleet, 'dual_stack')
    step(fleet, clock, 30)
    text = text_of(fleet, fleet.nodes[0])
    assert text.endswith('\n# EOF\n')
    assert '# HELP ant_networking_connected_peers The number of peers that we are currently connected to.' in text
    assert '# TYPE ant_networking_transport_requests counter' in text      # the family, without _total
    for line in text.splitlines():
        if line.startswith('#') or '_sum' in line.split(' ')[0]:
            continue
        assert re.fullmatch(r'\S+ -?\d+', line), line   # integer counters and gauges
    ok = [line for line in text.splitlines() if line.startswith('libp2p_kad_query_result_get_closest_peers_ok')]
    assert ok[0].startswith('libp2p_kad_query_result_get_closest_peers_ok_sum ')
    assert ok[1].startswith('libp2p_kad_query_result_get_closest_peers_ok_count ')
    assert ok[2].startswith('libp2p_kad_query_result_get_closest_peers_ok_bucket{le="1.0"} ')
    # Every contract family is declared and judged present by the conformance check.
    pages = {'/metrics': text, '/metadata': render_metadata(fleet.node_metrics(fleet.nodes[0])).decode()}
    read_pages = {'pages': pages, 'samples': {k: _node_metrics.parse_text(v) for k, v in pages.items()}}
    for family, mtype, labels, path, _required, absent_ok in CONTRACT_METRICS:
        status, detail = Conformance.judge_metric(family, mtype, labels, path, absent_ok, read_pages)
        assert status == PRESENT, (family, detail)


def test_untouched_labelled_families_are_declared_without_samples():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3, restart_time=0.0)
    node = fleet.nodes[0]
    fleet.stop_node(node)
    fleet.start_node(node)         # just started: no query failed, no request sent yet
    text = text_of(fleet, node)
    error = 'libp2p_kad_query_result_get_closest_peers_error'
    assert f'# TYPE {error} counter' in text and f'{error}_total' not in text
    assert '# TYPE ant_networking_transport_requests counter' in text
    assert 'ant_networking_transport_requests_total' not in text
    assert 'socket_num_conns_direct' not in text    # a libp2p_only node runs no iroh
    metrics = read(fleet, node)
    assert metrics.closest_peers_error == 0.0 and metrics.requests('libp2p') is None


def test_a_low_query_rate_shows_whole_queries():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3, query_rate=0.1)
    node = fleet.nodes[0]
    fleet.stop_node(node)
    fleet.start_node(node)
    step(fleet, clock, 3)           # ready after 2 s; 0.1 queries/s (30 % before ready)
    assert read(fleet, node).closest_peers_ok == 0
    step(fleet, clock, 12)
    assert read(fleet, node).closest_peers_ok == 1
    counts = []
    for _ in range(6):
        step(fleet, clock, 5)
        counts.append(read(fleet, node).closest_peers_ok)
    assert counts == sorted(counts) and all(float(c).is_integer() for c in counts)


def test_error_counter_appears_with_errors_and_the_reader_counts_it():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3)
    node = fleet.nodes[0]
    step(fleet, clock, 10)
    first = _node_metrics.NodeMetrics(_node_metrics.Metrics.from_text(text_of(fleet, node)))
    assert first.closest_peers_error == 0.0 and first.closest_peers_ok > 0
    node.counters.kad_err = 3.0
    second = _node_metrics.NodeMetrics(_node_metrics.Metrics.from_text(text_of(fleet, node)))
    assert second.closest_peers_error == 3.0
    assert _node_metrics.closest_peers_window(first, second)['errors'] == 3.0


def test_a_metric_can_be_left_out():
    fleet, clock = make_fleet(hosts=1, nodes_per_host=1)
    step(fleet, clock, 2)
    for exposition in ('openmetrics', 'text'):
        text = render(fleet.node_metrics(fleet.nodes[0]), omit=['ant_networking_transport_connected_peers'],
                      exposition=exposition).decode()
        assert 'ant_networking_transport_connected_peers' not in text and 'ant_networking_connected_peers ' in text


def test_mode_gauge_and_reader_agree():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3)
    switch_all(fleet, 'dual_stack')
    step(fleet, clock, 5)
    text = text_of(fleet, fleet.nodes[0])
    assert 'ant_node_transport_mode{mode="dual_stack"} 1' in text
    assert 'ant_node_transport_mode{mode="libp2p_only"} 0' in text
    samples = _node_metrics.parse_text(text)
    assert samples


def test_sim_metrics_expose_client_requests():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3)
    step(fleet, clock, 2)
    text = render_sim_metrics(fleet).decode()
    assert 'ant_sim_client_requests_total{outcome="ok"}' in text
    assert 'ant_sim_client_requests_total{outcome="failed"}' in text


def test_iroh_socket_counters_only_grow_while_the_process_runs():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=4)
    switch_all(fleet, 'dual_stack')
    node = fleet.nodes[0]
    seen = []
    for _ in range(4):
        step(fleet, clock, 60)
        metrics = _node_metrics.NodeMetrics(_node_metrics.Metrics.from_text(text_of(fleet, node)))
        seen.append(metrics.summary()['iroh'])
    directs = [s['direct_connections'] for s in seen]
    holepunches = [s['holepunch_attempts'] for s in seen]
    assert directs == sorted(directs) and holepunches == sorted(holepunches) and holepunches[-1] > 0
