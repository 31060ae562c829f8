"""The simulator's antctl add / remove / reset behave as ant-node-manager's, and its smaller antctl behaviours:
upgrade without a needed upgrade touches nothing, --path forces, --env is not kept as the registry's
environment, RPC errors name the https:// endpoint (docs/simulator.md, "What follows which real source")."""

from __future__ import annotations

import json
import subprocess

import pytest

from ant_fleet_sim import systemd as sd
from ant_fleet_sim.testing import SimStack, wait_for

HOST = 'sim-host-01'
REWARDS = '0x' + 'ab' * 20


@pytest.fixture
def sim(tmp_path):
    with SimStack(tmp_path, hosts=1, nodes_per_host=3, ready_delay=0.3, prometheus=False) as stack:
        yield stack


def antctl(sim, *args, stdin=None):
    return subprocess.run([str(sim.state.antctl(HOST)), *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


def systemctl(sim, *args):
    return subprocess.run([str(sim.state.systemctl(HOST)), *args], capture_output=True, text=True, timeout=60)


def registry(sim):
    out = antctl(sim, 'status', '--json').stdout
    return {n['service_name']: n for n in json.loads(out)['nodes']} if out.strip() else {}


def answering_rpc(sim):
    """Every running node answers its RPC: antctl's full refresh (status without --json, and the first step
    of remove / reset) asks each one and fails on the first that does not (ant-node-manager/src/lib.rs
    refresh_node_registry). A restarted node's RPC is down for the restart time, as a real node's is."""
    return wait_for(lambda: antctl(sim, 'status').returncode == 0, timeout=30,
                    what='every running node answering its RPC')


def units(sim):
    directory = sd.unit_dir(sim.state.host_dir(HOST))
    return sorted(str(p.relative_to(directory)) for p in directory.rglob('*') if p.is_file())


def test_remove_refuses_a_running_node_then_uninstalls_the_unit_and_keeps_the_entry(sim):
    sim.set_mode(HOST, ['antnode3'], 'dual_stack')
    answering_rpc(sim)
    refused = antctl(sim, 'remove', '--service-name', 'antnode3')
    # As ant-node-manager/src/cmd/node.rs remove and summarise_any_failed_ops: the banner and each refused
    # service on stdout, the color-eyre report on stderr.
    assert refused.returncode == 1, refused.stderr
    assert 'Remove Antnode Services' in refused.stdout and 'Failed to remove 1 service(s):' in refused.stdout
    assert 'Unable to remove a running service ["antnode3"]' in refused.stdout
    assert '0: Failed to remove one or more services' in refused.stderr
    assert registry(sim)['antnode3']['status'] == 'Running'
    assert systemctl(sim, 'stop', 'antnode3.service').returncode == 0
    removed = antctl(sim, 'remove', '--service-name', 'antnode3')
    assert removed.returncode == 0, removed.stderr
    nodes = registry(sim)
    assert nodes['antnode3']['status'] == 'Removed'
    # service-manager deletes the file it wrote, not the drop-in directory.
    assert 'antnode3.service' not in units(sim) and 'antnode3.service.d/ant-transport-mode.conf' in units(sim)
    missing = systemctl(sim, 'start', 'antnode3.service')
    assert missing.returncode == 5 and 'Unit antnode3.service not found.' in missing.stderr
    # antctl numbers a new node after every entry, the Removed one included: a 4th slot would be needed.
    full = antctl(sim, 'add', '--rewards-address', REWARDS, '--path', '/bin/true', '--enable-metrics-server')
    assert full.returncode == 1 and 'has 0 free node slot(s)' in full.stderr


def test_reset_asks_then_empties_the_registry_and_add_reuses_the_names_with_the_old_drop_in(sim):
    sim.set_mode(HOST, ['antnode1'], 'dual_stack')
    old_peer = registry(sim)['antnode1']['peer_id']
    aborted = antctl(sim, 'reset', stdin='n\n')
    assert aborted.returncode == 0 and 'Reset aborted' in aborted.stdout and len(registry(sim)) == 3
    answering_rpc(sim)
    reset = antctl(sim, 'reset', '--force')
    assert reset.returncode == 0, reset.stderr
    status = antctl(sim, 'status', '--json')
    assert status.returncode == 0 and status.stdout == ''  # an empty registry prints nothing
    assert units(sim) == ['antnode1.service.d/ant-transport-mode.conf']

    offline = antctl(sim, 'add', '--rewards-address', REWARDS, '--enable-metrics-server')
    assert offline.returncode == 1 and 'Failed to download release after 3 tries.' in offline.stderr
    added = antctl(sim, 'add', '--rewards-address', REWARDS, '--path', '/bin/true', '--count', '2',
                   '--enable-metrics-server')
    assert added.returncode == 0, added.stderr
    assert '[!] Note: newly added services have not been started' in added.stdout
    nodes = registry(sim)
    assert {n: (e['status'], e['peer_id']) for n, e in nodes.items()} == {
        'antnode1': ('Added', None), 'antnode2': ('Added', None)}
    assert systemctl(sim, 'start', 'antnode1.service').returncode == 0
    wait_for(lambda: registry(sim)['antnode1']['status'] == 'Running', timeout=30, what='antnode1 running')
    new_peer = registry(sim)['antnode1']['peer_id']
    assert new_peer and new_peer != old_peer   # a new node: a new identity
    # ... that started in the old antnode1's mode, from the drop-in it inherited.
    show = systemctl(sim, 'show', 'antnode1.service', '-p', 'Environment', '--value')
    assert 'ANT_TRANSPORT_MODE=dual_stack' in show.stdout


def test_a_node_added_without_a_metrics_server_has_no_metrics_port(sim):
    assert antctl(sim, 'reset', '--force').returncode == 0
    assert antctl(sim, 'add', '--rewards-address', REWARDS, '--path', '/bin/true').returncode == 0
    assert registry(sim)['antnode1']['metrics_port'] is None
    bad = antctl(sim, 'add', '--rewards-address', 'nope', '--path', '/bin/true')
    assert bad.returncode == 2 and "for '--rewards-address <REWARDS_ADDRESS>'" in bad.stderr


def test_upgrade_touches_nothing_when_no_upgrade_is_needed_and_env_is_not_kept(sim):
    unit = sd.unit_path(sim.state.host_dir(HOST), 'antnode1')
    before = unit.read_text()
    # Without --force and at the running version: antctl returns before uninstalling anything.
    same = antctl(sim, 'upgrade', '--service-name', 'antnode1', '--path', '/bin/true', '--do-not-start',
                  '--version', '0.4.6', '--env', 'ANT_LOG=debug')
    assert same.returncode == 0, same.stderr
    # --path forces the upgrade (use_force = force || custom_bin_path): the unit is rewritten with --env ...
    assert 'ANT_LOG=debug' in unit.read_text() and unit.read_text() != before
    # ... but --env is not the registry's environment: the next upgrade without it brings add's back.
    again = antctl(sim, 'upgrade', '--service-name', 'antnode2', '--path', '/bin/true', '--do-not-start')
    assert again.returncode == 0, again.stderr
    assert 'ANT_LOG=ant_node=info' in sd.unit_path(sim.state.host_dir(HOST), 'antnode2').read_text()
    registry_file = json.loads((sim.state.host_dir(HOST) / 'node_registry.json').read_text())
    assert registry_file['environment_variables'] == [['ANT_LOG', 'ant_node=info']]


def test_upgrade_without_force_at_the_running_version_does_not_rewrite_the_unit(tmp_path):
    with SimStack(tmp_path, hosts=1, nodes_per_host=2, ready_delay=0.3, prometheus=False,
                  release_repo_online=True) as sim:
        unit = sd.unit_path(sim.state.host_dir(HOST), 'antnode1')
        unit.write_text(unit.read_text() + '# touched by the test\n')
        result = antctl(sim, 'upgrade', '--service-name', 'antnode1', '--version', '0.4.6')
        assert result.returncode == 0 and 'no upgrade required' in result.stdout
        assert unit.read_text().endswith('# touched by the test\n')


def test_a_dead_rpc_is_named_with_its_https_endpoint(sim):
    sim.fault('unresponsive', nodes=[f'{HOST}/antnode2'], rpc=True)
    addr = registry(sim)['antnode2']['rpc_socket_addr']
    stopped = antctl(sim, 'stop', '--service-name', 'antnode1')
    assert stopped.returncode == 1 and f"0: Could not connect to RPC endpoint 'https://{addr}'" in stopped.stderr
