"""Metrics text: every contract name, consistent with the mode, parseable by the collection's reader."""

from __future__ import annotations

from simclock import make_fleet, step, switch_all

from ansible_collections.autonomi.network_migration.plugins.module_utils import _node_metrics
from ant_fleet_sim.metrics import NODE_METRIC_NAMES, render, render_sim_metrics


def text_of(fleet, node):
    return render(fleet.node_metrics(node)).decode()


def test_every_contract_metric_present():
    fleet, clock = make_fleet(hosts=2, nodes_per_host=3)
    step(fleet, clock, 2)
    text = text_of(fleet, fleet.nodes[0])
    names = {line.split('{')[0].split(' ')[0] for line in text.splitlines() if line and not line.startswith('#')}
    assert set(NODE_METRIC_NAMES) <= names
    assert '# TYPE ant_networking_transport_request_duration_seconds histogram' in text
    assert 'le="+Inf"' in text


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
