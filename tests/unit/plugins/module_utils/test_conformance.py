"""node_conformance's engine against a host whose nodes serve what a real node serves.

The pages are prometheus-client 0.23.1's for a fresh node (fixtures/metrics/openmetrics/, see its README):
OpenMetrics, integer counters, and labelled families declared with no sample.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ansible_collections.autonomi.network_migration.plugins.module_utils._common import NodeReader
from ansible_collections.autonomi.network_migration.plugins.module_utils._conformance import Conformance
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import MetricsUnreachable
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import CONTRACT_METRICS
from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import Systemd, dropin_text
from ant_fleet_sim.model import make_peer_id

PAGES = Path(__file__).resolve().parents[2] / 'fixtures' / 'metrics' / 'openmetrics'
FRESH = (PAGES / 'fresh_node_metrics.txt').read_text()
METADATA = (PAGES / 'fresh_node_metadata.txt').read_text()
OPENMETRICS_TYPE = 'application/openmetrics-text;charset=utf-8;version=1.0.0'
PEER = {n: make_peer_id(7, 'host', n) for n in range(1, 6)}


class FakeAntctl:
    def __init__(self, nodes):
        self.nodes = nodes

    def status(self):
        return [dict(n, connected_peers=None, connected_peer_ids=None, configured_mode=None) for n in self.nodes]


class ShowSystemd(Systemd):
    """Drop-ins and unit files on disk; systemctl show answers from ``loaded`` (what systemd loaded)."""

    def __init__(self, unit_dir, loaded=None):
        super().__init__(unit_dir=str(unit_dir), systemctl='systemctl-stand-in')
        self.loaded = loaded or {}

    def run(self, *args, timeout=None):
        if args == ('--version',):
            return 'systemd 252\n'
        if args[0] == 'show':
            env = self.loaded.get(args[1][:-len('.service')], '')
            return f'Environment={env}\n'
        raise AssertionError(args)


def node(n, status='Running', port=True, peer=True):
    return {'service_name': f'antnode{n}', 'status': status, 'peer_id': PEER[n] if peer else None,
            'version': '0.4.6', 'number': n, 'metrics_port': 14000 + n if port else None,
            'rpc_socket_addr': f'127.0.0.1:{13000 + n}', 'node_port': 15000 + n,
            'data_dir_path': f'/var/antctl/services/antnode{n}', 'log_dir_path': f'/var/log/antnode/antnode{n}'}


class Host:
    def __init__(self, tmp_path, nodes, pages=None, loaded=None, content_type=OPENMETRICS_TYPE):
        self.unit_dir = tmp_path / 'system'
        self.unit_dir.mkdir()
        for entry in nodes:
            if entry['status'] != 'Removed':
                (self.unit_dir / f"{entry['service_name']}.service").write_text('[Service]\nExecStart=/bin/true\n')
        self.pages = pages or {}
        self.content_type = content_type
        self.systemd = ShowSystemd(self.unit_dir, loaded)
        self.reader = NodeReader(FakeAntctl(nodes), systemd=self.systemd)

    def fetch(self, port, host='127.0.0.1', timeout=5.0, path='/metrics'):
        if path == '/metadata':
            return METADATA, self.content_type
        text = self.pages.get(port, FRESH)
        if text is None:
            raise MetricsUnreachable(f'http://127.0.0.1:{port}/metrics cannot be read: connection refused')
        return text, self.content_type

    def check(self, fail_on_optional=False):
        result = Conformance(self.reader, fetch=self.fetch).run(fail_on_optional)
        return json.loads(json.dumps(result))


def items(result):
    return {i['item']: i for i in result['items']}


def without_family(text, family):
    """The page without a family's HELP / TYPE lines and samples."""
    pattern = re.compile(r'^(# (HELP|TYPE) %s |%s(_total|_bucket|_sum|_count)?[ {])' % (family, family))
    return '\n'.join(line for line in text.split('\n') if not pattern.match(line))


def test_a_fresh_real_node_and_a_removed_one_pass(tmp_path):
    host = Host(tmp_path, [node(1), node(2), node(3, status='Removed', port=False)])
    result = host.check()
    assert result['failed_items'] == [], result['report']
    by_item = items(result)
    # prometheus-client 0.23.1 declares the untouched error family with no sample: present, zero.
    error_family = by_item['metric libp2p_kad_query_result_get_closest_peers_error']
    assert error_family['status'] == 'present' and 'declared, no sample yet (zero)' in error_family['detail']
    assert by_item['metric ant_networking_transport_requests']['status'] == 'present'
    # The Removed node is skipped (no "no unit file"), and listed.
    assert result['skipped_nodes'] == [{'service_name': 'antnode3', 'status': 'Removed', 'reason': (
        'Removed in antctl status: no unit, no process (antctl remove keeps the entry)')}]
    assert by_item['systemd units of the node services']['status'] == 'present'
    assert 'Removed, skipped: antnode3' in by_item['antctl status --json']['detail']
    # Nothing set ANT_TRANSPORT_MODE, no node runs iroh: said so, not PRESENT.
    assert by_item['transport mode from ANT_TRANSPORT_MODE']['status'] == 'unverified'
    assert by_item['readiness counts the peers of every transport the mode runs']['status'] == 'unverified'
    assert 'OpenMetrics on 2 node(s)' in by_item['exposition format']['detail']
    assert all(i['verified_by'] for i in result['items'])
    assert any(line.startswith('SKIPPED    antnode3') for line in result['report'])
    assert not any('{' in line and '"' in line and line.lstrip().startswith('{') for line in result['report'])


REQUIRED = [(family, absent_ok) for family, _t, _l, path, required, absent_ok in CONTRACT_METRICS
            if required and path == '/metrics']


@pytest.mark.parametrize('family, absent_ok', REQUIRED, ids=[f for f, _a in REQUIRED])
def test_each_missing_required_metric_fails_naming_it(tmp_path, family, absent_ok):
    page = without_family(FRESH, family)
    assert page != FRESH
    result = Host(tmp_path, [node(1), node(2)], pages={14002: page}).check()
    item = items(result)[f'metric {family}']
    if absent_ok:  # a counter that appears with its first event may be absent
        assert item['status'] == 'absent_ok' and f'metric {family}' not in result['failed_items']
    else:
        assert item['status'] == 'missing' and item['detail'].startswith('antnode2: ')
        assert f'metric {family}' in result['failed_items']


def test_a_node_without_a_metrics_server_fails_naming_the_fix(tmp_path):
    result = Host(tmp_path, [node(1), node(2, port=False)]).check()
    item = items(result)['metrics server of every node (antctl add --enable-metrics-server)']
    assert item['status'] == 'wrong' and item['detail'].startswith('antnode2: metrics_port is null')
    assert '`antctl add --enable-metrics-server`' in item['detail']
    assert item['item'] in result['failed_items']


def test_the_mode_env_item_is_verified_where_a_drop_in_sets_it(tmp_path):
    dual = FRESH.replace('{mode="libp2p_only"} 1', '{mode="libp2p_only"} 0').replace(
        '{mode="dual_stack"} 0', '{mode="dual_stack"} 1')
    host = Host(tmp_path, [node(1), node(2)], pages={14001: dual},
                loaded={'antnode1': 'ANT_LOG=info ANT_TRANSPORT_MODE=dual_stack'})
    item = items(host.check())['transport mode from ANT_TRANSPORT_MODE']
    assert item['status'] == 'present' and 'antnode1 run(s) the mode' in item['detail']
    (tmp_path / 'b').mkdir()
    # antnode1 serves libp2p_only while systemd started it with dual_stack: the node ignores the variable.
    result = Host(tmp_path / 'b', [node(1)], loaded={'antnode1': 'ANT_TRANSPORT_MODE=dual_stack'}).check()
    item = items(result)['transport mode from ANT_TRANSPORT_MODE']
    assert item['status'] == 'wrong' and 'does not take its mode from the environment' in item['detail']
    assert item['item'] in result['failed_items']


def test_stale_drop_ins_fail_and_are_listed(tmp_path):
    host = Host(tmp_path, [node(1), node(2, status='Added', port=True, peer=False), node(3, status='Removed')])
    for service, peer in (('antnode2', PEER[4]), ('antnode3', PEER[3]), ('antnode9', PEER[5])):
        host.systemd.write_dropin(service, dropin_text('iroh_only', service=service, peer_id=peer))
    host.systemd.write_dropin('antnode1', dropin_text('dual_stack', service='antnode1', peer_id=PEER[1]))
    result = host.check()
    item = items(result)['transport-mode drop-ins belong to their nodes']
    assert item['status'] == 'wrong' and item['item'] in result['failed_items']
    kinds = {f['service_name']: f['kind'] for f in result['stale_dropins']}
    assert kinds == {'antnode2': 'inherited', 'antnode3': 'orphaned', 'antnode9': 'orphaned'}
    assert 'reconcile.yml -e remove_stale_dropins=true' in item['detail']


def test_an_iroh_only_node_whose_readiness_counts_libp2p_only_fails(tmp_path):
    iroh_only = (FRESH.replace('{mode="libp2p_only"} 1', '{mode="libp2p_only"} 0')
                 .replace('{mode="iroh_only"} 0', '{mode="iroh_only"} 1')
                 .replace('{transport="libp2p"} 7', '{transport="libp2p"} 0')
                 .replace('{transport="iroh"} 0', '{transport="iroh"} 9'))
    libp2p_count = iroh_only.replace('ant_networking_connected_peers 7', 'ant_networking_connected_peers 0')
    loaded = {'antnode1': 'ANT_TRANSPORT_MODE=iroh_only'}
    result = Host(tmp_path, [node(1)], pages={14001: libp2p_count}, loaded=loaded).check()
    item = items(result)['readiness counts the peers of every transport the mode runs']
    assert item['status'] == 'wrong' and 'would never be ready' in item['detail']
    (tmp_path / 'ok').mkdir()
    counted = iroh_only.replace('ant_networking_connected_peers 7', 'ant_networking_connected_peers 9')
    result = Host(tmp_path / 'ok', [node(1)], pages={14001: counted}, loaded=loaded).check()
    assert items(result)['readiness counts the peers of every transport the mode runs']['status'] == 'present'
    assert result['failed_items'] == []


def classic(text):
    """The same figures in the classic text format 0.0.4 (a Go / Python client's way: TYPE on the _total name)."""
    out = []
    for line in text.split('\n'):
        if line == '# EOF':
            continue
        match = re.match(r'# (HELP|TYPE) (\S+) (counter)$', line)
        if match:
            line = f'# TYPE {match.group(2)}_total counter'
        out.append(line)
    return '\n'.join(out)


def test_the_classic_text_format_is_read_too(tmp_path):
    host = Host(tmp_path, [node(1)], pages={14001: classic(FRESH)}, content_type='text/plain; version=0.0.4')
    result = host.check()
    assert result['failed_items'] == [], result['report']
    assert 'Prometheus text 0.0.4 on 1 node(s)' in items(result)['exposition format']['detail']
    assert items(result)['metric libp2p_kad_query_result_get_closest_peers_error']['status'] == 'present'


def test_iroh_counters_under_the_old_magicsock_prefix_are_accepted_and_named(tmp_path):
    old_group = ('# HELP magicsock_num_conns_direct Direct.\n# TYPE magicsock_num_conns_direct counter\n'
                 'magicsock_num_conns_direct_total 3\n# EOF')
    page = FRESH.replace('# EOF', old_group)
    result = Host(tmp_path, [node(1)], pages={14001: page}).check()
    item = items(result)['metric socket_num_conns_direct']
    assert item['status'] == 'present' and 'the group of iroh before 0.96, magicsock_' in item['detail']


def test_an_unreadable_node_is_named_and_metrics_of_no_node_are_unverified(tmp_path):
    result = Host(tmp_path, [node(1), node(2)], pages={14002: None}).check()
    endpoint = items(result)['metrics endpoint of every running node']
    assert endpoint['status'] == 'wrong' and endpoint['detail'].startswith('antnode2: ')
    (tmp_path / 'stopped').mkdir()
    result = Host(tmp_path / 'stopped', [node(1, status='Stopped')]).check()
    assert items(result)['metric ant_node_transport_mode']['status'] == 'unverified'
    assert result['failed_items'] == []
