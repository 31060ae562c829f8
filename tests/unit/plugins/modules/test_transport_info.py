"""transport_info: registry plus metrics, nodes that cannot be read, mode counts."""

from __future__ import annotations

from node_fakes import FakeHost, dumps

from ansible_collections.autonomi.network_migration.plugins.modules import transport_info


def test_every_node_with_its_figures():
    host = FakeHost('libp2p_only', 'dual_stack', 'dual_stack')
    host.nodes[2].status = 'Stopped'
    result = dumps(transport_info.gather(host.reader(), []))
    assert result['changed'] is False
    assert result['modes'] == {'libp2p_only': 1, 'dual_stack': 1, 'iroh_primary': 0, 'iroh_only': 0, 'unknown': 1}
    first, second, stopped = result['nodes']
    assert first['service_name'] == 'antnode1' and first['mode'] == 'libp2p_only'
    assert first['connected_peers_by_transport'] == {'libp2p': 20, 'iroh': 0}
    assert first['metrics_port'] == 14001 and first['rpc_socket_addr'] == '127.0.0.1:13001'
    assert first['configured_mode'] == 'libp2p_only' and first['metrics_error'] is None
    assert second['connected_peers_by_transport'] == {'libp2p': 20, 'iroh': 20}
    assert stopped['mode'] is None and stopped['metrics_error'] == 'node is Stopped'
    assert stopped['configured_mode'] == 'dual_stack'  # what it will run once started


def test_without_metrics_nothing_is_scraped():
    host = FakeHost('libp2p_only')
    host.scrape = None  # would fail if called
    result = transport_info.gather(host.reader(), [], gather_metrics=False)
    assert result['nodes'][0]['mode'] is None and result['modes']['unknown'] == 1


def test_selection():
    host = FakeHost('libp2p_only', 'dual_stack')
    result = transport_info.gather(host.reader(), ['12D3KooWFake0002'])
    assert [n['service_name'] for n in result['nodes']] == ['antnode2']
