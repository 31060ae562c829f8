# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``rehearse``: the fleet's shape read from the ledger or the inventory, the planner's inputs, the recorded result.

The copy itself (SimStack + playbooks/rollback.yml) runs in tests/integration/test_rehearsal.py; here run_copy is
replaced by a stand-in that reports what it was asked for."""

from __future__ import annotations

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_mod
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import rehearsal
from ant_network_migration_cli import cmd_rehearse, fleet

HOSTS = [f'sim-host-{i:02d}' for i in range(1, 7)]     # the ledger_path fixture's fleet (conftest.py)
NODES_PER_HOST = 3


@pytest.fixture
def copies(monkeypatch):
    """run_copy's stand-in: records its arguments, answers ``seconds``."""
    asked = []

    def fake(settings, console, hosts, nodes_per_host, mode, ready_delay, forks, order, operator, workdir=None,
             load=None):
        asked.append({'hosts': hosts, 'nodes_per_host': nodes_per_host, 'mode': mode, 'ready_delay': ready_delay,
                      'forks': forks, 'order': order, **({'load': load} if load else {})})
        nodes = [{'host': f'sim-host-{h:02d}', 'service_name': f'antnode{n}', 'peer_id': None, 'mode': mode}
                 for h in range(1, hosts + 1) for n in range(1, nodes_per_host + 1)]
        figures = None if load is None else dict(asked.load, client_read_rate=load['client_read_rate'],
                                                 targets=hosts * nodes_per_host)
        return {'seconds': asked.seconds, 'copy_switch_seconds': [ready_delay + 0.4], 'start_seconds': 0.5,
                'nodes': nodes, 'load': figures}

    class Asked(list):
        seconds = 12.0
        load = {'scrape_interval': 2.0, 'targets_up_after': 18, 'reads_total': 3600.0, 'reads_failed': 7.2,
                'load_average': 1.0}

    asked = Asked()
    monkeypatch.setattr(cmd_rehearse, 'run_copy', fake)
    return asked


def latest(path):
    with ledger_mod.open_ledger(str(path)) as handle:
        return rehearsal.latest(handle)


def test_the_shape_comes_from_the_ledger(ledger_path):
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        shape = cmd_rehearse.read_shape(handle, None)
    assert (shape['hosts'], shape['nodes_per_host'], shape['mode'], shape['source']) == (
        len(HOSTS), NODES_PER_HOST, 'dual_stack', 'ledger')


def test_without_nodes_in_the_ledger_the_inventory_hosts_report_theirs(tmp_path, inventory_path, monkeypatch):
    empty = tmp_path / 'empty.sqlite3'
    ledger_mod.open_ledger(str(empty), create=True).close()
    reported = [{'host': h, 'service_name': f'antnode{n}', 'peer_id': None, 'mode': 'iroh_primary',
                 'status': 'Running'} for h in HOSTS[:-1] for n in range(1, 5)]
    seen = {}

    def discover(source, hosts):
        seen['hosts'] = list(hosts)
        return reported, {HOSTS[-1]: 'unreachable'}

    monkeypatch.setattr(fleet, 'discover_nodes', discover)
    inventory = fleet.load_inventory(str(inventory_path))
    with ledger_mod.open_ledger(str(empty)) as handle:
        shape = cmd_rehearse.read_shape(handle, inventory)
    assert seen['hosts'] == HOSTS
    # the host that did not answer still counts: it would be rolled back with the others
    assert (shape['hosts'], shape['nodes_per_host'], shape['mode'], shape['source'], shape['unreachable']) == (
        len(HOSTS), 4, 'iroh_primary', 'inventory', [HOSTS[-1]])


def test_the_measured_switches_forks_and_sla_are_the_planners_and_the_result_is_recorded(
        invoke, ledger_path, inventory_path, copies):
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        for seconds in (2.0, 3.0, 9.0):   # backward switches measured on the real fleet
            handle.record_transition('sim-host-01', 'antnode1', None, 'rolled_back', mode='libp2p_only',
                                     seconds_to_ready=seconds)
            handle.record_transition('sim-host-01', 'antnode1', None, None, mode='dual_stack')
    text = inventory_path.read_text().replace('        ansible_connection: local\n',
                                               '        ansible_connection: local\n        wave_rollback_forks: 7\n'
                                               '        wave_rollback_sla_seconds: 120\n')
    inventory_path.write_text(text)
    result = invoke('-i', inventory_path, 'rehearse', '--operator', 'carol')
    assert result.exit_code == 0, result.output
    assert copies == [{'hosts': 6, 'nodes_per_host': 3, 'mode': 'dual_stack', 'ready_delay': 9.0, 'forks': 7,
                       'order': 'readable'}]
    data = latest(ledger_path)['data']
    assert data['passed'] is True and data['measured_seconds'] == 12.0 and data['sla_seconds'] == 120.0
    assert data['operator'] == 'carol' and data['shape'] == {'hosts': 6, 'nodes_per_host': 3, 'mode': 'dual_stack',
                                                             'source': 'ledger'}
    assert data['method'] == rehearsal.METHOD_MEASURED and data['date']
    assert 'rehearsal passed' in result.output and 'SLA 120 s' in result.output


def test_over_the_sla_the_rehearsal_fails_and_is_recorded_failed(invoke, ledger_path, copies):
    copies.seconds = 412.0
    result = invoke('rehearse', '--sla', '300', '--forks', '5', '--ready-delay', '1')
    assert result.exit_code == 1
    assert 'the rehearsed fast rollback took 412 s, over the 300 s SLA' in result.output
    data = latest(ledger_path)['data']
    assert data['passed'] is False and data['measured_seconds'] == 412.0 and data['forks'] == 5
    assert copies[0]['ready_delay'] == 1.0


def test_a_larger_fleet_is_rehearsed_scaled_and_projected_with_the_method(invoke, ledger_path, copies):
    result = invoke('rehearse', '--max-simulated-hosts', '3', '--forks', '1', '--ready-delay', '1')
    assert result.exit_code == 0, result.output
    assert copies[0]['hosts'] == 3
    data = latest(ledger_path)['data']
    assert data['simulated_hosts'] == 3 and data['shape']['hosts'] == 6
    assert data['method'] == rehearsal.METHOD_SCALED % (3, 6)
    # calibrated on the copy's 12 s for 3 rounds of 1 fork: the 6 rounds of the fleet take longer
    assert data['projected_seconds'] > 12.0
    assert 'method: projected' in result.output


def test_a_copy_that_fails_is_a_failed_rehearsal_in_the_ledger(invoke, ledger_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('the simulator could not start: port clash')

    monkeypatch.setattr(cmd_rehearse, 'run_copy', broken)
    result = invoke('rehearse', '--ready-delay', '1')
    assert result.exit_code == 1
    assert 'the rehearsal failed: the simulator could not start: port clash' in result.output
    data = latest(ledger_path)['data']
    assert data['passed'] is False and data['measured_seconds'] is None


def test_a_fleet_too_small_for_a_copy_is_bad_input_and_nothing_is_recorded(tmp_path, cli_runner, copies):
    from ant_network_migration_cli.main import cli

    path = tmp_path / 'small.sqlite3'
    with ledger_mod.open_ledger(str(path), create=True) as handle:
        handle.record_transitions([{'host': 'h1', 'service_name': f'antnode{n}', 'peer_id': None,
                                    'to_state': 'dual_stack_testing'} for n in range(1, 4)])
    result = cli_runner.invoke(cli, ['--ledger', str(path), 'rehearse'])
    assert result.exit_code == 2 and 'at least 7 nodes' in result.output
    assert copies == [] and latest(path) is None


def test_under_load_the_copy_is_loaded_and_the_reads_it_cost_are_judged_and_recorded(
        invoke, ledger_path, inventory_path, copies):
    result = invoke('-i', inventory_path, 'rehearse', '--operator', 'carol', '--ready-delay', '1',
                    '--under-load', '--client-reads', '500')
    assert result.exit_code == 0, result.output
    assert copies[-1]['load'] == {'client_read_rate': 500.0}
    event = latest(ledger_path)['data']
    assert event['passed'] is True and event['load']['passed'] is True
    assert event['load']['reads_failed'] == 7.2 and event['load']['max_read_loss'] == 0.01
    assert '7.2 of 3600 client reads failed during the rollback' in ' '.join(result.output.split())

    # 0.2 % of the reads lost is over a 0.1 % allowance: exit 1 and recorded failed under load, SLA kept.
    result = invoke('-i', inventory_path, 'rehearse', '--operator', 'carol', '--ready-delay', '1',
                    '--under-load', '--max-read-loss', '0.1')
    assert result.exit_code == 1, result.output
    event = latest(ledger_path)['data']
    assert event['passed'] is True and event['load']['passed'] is False
    assert event['load']['message'] == ("under load: the rollback cost 0.20 % of the clients' reads (7 of 3600; "
                                        'allowed 0.10 %)')
    assert 'rehearsal failed' in result.output


def test_without_under_load_nothing_is_loaded_and_no_load_is_recorded(invoke, ledger_path, inventory_path, copies):
    result = invoke('-i', inventory_path, 'rehearse', '--operator', 'carol', '--ready-delay', '1')
    assert result.exit_code == 0, result.output
    assert 'load' not in copies[-1] and 'load' not in latest(ledger_path)['data']
