"""The antctl shim's command line (no daemon needed): flags, usage errors, offline status."""

from __future__ import annotations

import json

import pytest

from ant_fleet_sim import antctl


@pytest.fixture
def host_dir(tmp_path):
    directory = tmp_path / 'hosts' / 'sim-host-01'
    directory.mkdir(parents=True)
    registry = {'nodes': [
        {'service_name': 'antnode1', 'status': 'Running', 'peer_id': '12D3KooWx', 'version': '0.4.6',
         'metrics_port': 14000, 'connected_peers': ['12D3KooWy'], 'connected_peers_count': 1, 'pid': 4},
        {'service_name': 'antnode2', 'status': 'Stopped', 'peer_id': '12D3KooWz', 'version': '0.4.6',
         'metrics_port': 14001, 'connected_peers': None, 'connected_peers_count': 0, 'pid': None},
    ], 'daemon': None}
    (directory / 'node_registry.json').write_text(json.dumps(registry))
    return directory


def run(host_dir, *args):
    return antctl.run(['--host-dir', str(host_dir), *args])


def test_parse_env_pairs():
    assert antctl.parse_env('ANT_TRANSPORT_MODE=dual_stack,ANT_LOG=all') == [
        ['ANT_TRANSPORT_MODE', 'dual_stack'], ['ANT_LOG', 'all']]
    assert antctl.parse_env('RUST_LOG=libp2p=debug') == [['RUST_LOG', 'libp2p=debug']]
    with pytest.raises(Exception, match='KEY=VALUE'):
        antctl.parse_env('NOVALUE')


def test_status_json_when_the_simulator_is_down(host_dir, capsys):
    assert run(host_dir, 'status', '--json') == 0
    doc = json.loads(capsys.readouterr().out)
    assert [n['status'] for n in doc['nodes']] == ['Stopped', 'Stopped']
    assert doc['nodes'][0]['connected_peers'] is None


def test_status_fail_when_not_running(host_dir, capsys):
    assert run(host_dir, 'status', '--fail') == 1
    assert 'not in a running state' in capsys.readouterr().err


def test_operations_fail_cleanly_when_the_simulator_is_down(host_dir, capsys):
    assert run(host_dir, 'start', '--service-name', 'antnode1') == 1
    assert capsys.readouterr().err.startswith('Error: ')


@pytest.mark.parametrize('args', [
    ('upgrade', '--env', 'BROKEN'),
    ('upgrade', '--interval', '10', '--connection-timeout', '5'),
    ('stop', '--service-name', 'antnode1', '--peer-id', '12D3KooWx'),
    ('status', '--bogus'),
    ('launch',),
    (),
])
def test_usage_errors_exit_2(host_dir, args, capsys):
    assert run(host_dir, *args) == 2


def test_empty_registry_prints_nothing(tmp_path, capsys):
    host_dir = tmp_path / 'hosts' / 'sim-host-01'
    host_dir.mkdir(parents=True)
    (host_dir / 'node_registry.json').write_text('{"nodes": [], "environment_variables": null}')
    for args in (['status'], ['status', '--json'], ['status', '--details']):
        assert antctl.run(['--host-dir', str(host_dir), *args]) == 0
        assert capsys.readouterr() == ('', '')


def test_errors_are_color_eyre_reports(capsys):
    assert antctl.fail("No service named 'antnode9'") == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: \n   0: No service named 'antnode9'\n\nLocation:\n")
    assert 'Backtrace omitted. Run with RUST_BACKTRACE=1' in err


def test_not_root_antctl_sees_the_users_own_empty_registry(host_dir, capsys, monkeypatch):
    # ant-node-manager config.rs: not root, antctl is in user mode on ~/.local/share/autonomi/node.
    monkeypatch.setattr(antctl.os, 'geteuid', lambda: 1000)
    assert run(host_dir, 'status', '--json') == 0
    assert capsys.readouterr() == ('', '')
    assert run(host_dir, 'start', '--service-name', 'antnode2') == 0
    assert capsys.readouterr().out == 'No services were eligible to be started\n'


def test_not_root_systemctl_is_denied_changes(host_dir, capsys, monkeypatch):
    from ant_fleet_sim import systemctl

    monkeypatch.setattr(systemctl.os, 'geteuid', lambda: 1000)
    assert systemctl.run(['--host-dir', str(host_dir), 'daemon-reload']) == 1
    assert capsys.readouterr().err == 'Failed to reload daemon: Access denied\n'
    assert systemctl.run(['--host-dir', str(host_dir), 'restart', 'antnode1.service', 'antnode2']) == 1
    assert capsys.readouterr().err == ('Failed to restart antnode1.service: Access denied\n'
                                       'Failed to restart antnode2.service: Access denied\n')
