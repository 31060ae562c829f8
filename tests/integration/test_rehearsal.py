# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``ant-network-migration rehearse`` for real: a simulated copy of a tiny fleet's shape rolled back by
playbooks/rollback.yml, the result in the ledger, and the preflight's rollback_tested item reading it; with
``--under-load`` the copy scraped by a real Prometheus and read by clients, and the load_tested item reading it.

One simulated fleet at a time: the rehearsal's copy runs while no other fleet does, and the fleet the preflight
checks is started after it and stopped before the rehearsal forced over the SLA.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alerting_stack import inventory_dir, playbook

pytestmark = pytest.mark.integration

testing = pytest.importorskip('ant_fleet_sim.testing')

HOSTS, NODES_PER_HOST = 4, 2
CLI = str(Path(sys.executable).parent / 'ant-network-migration')
NO_ALERTMANAGER = 'this test stack has no Alertmanager'


def rehearsals(ledger):
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute("SELECT data FROM ledger_events WHERE kind = 'rehearsal' ORDER BY id").fetchall()
    return [json.loads(r[0]) for r in rows]


def cli(env, *args, timeout=600):
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def known_fleet(tmp_path, monkeypatch):
    """A ledger that knows a 4 x 2 fleet in dual_stack, whose last rollback measured 1.0-1.2 s switches, and a
    static inventory of its hosts."""
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
    from ant_fleet_sim.model import make_peer_id

    monkeypatch.delenv('ANT_MIGRATION_PREFLIGHT_WAIVER', raising=False)
    hosts = ['sim-host-%02d' % h for h in range(1, HOSTS + 1)]
    items = [{'host': h, 'service_name': 'antnode%d' % n, 'peer_id': make_peer_id(1, h, n)}
             for h in hosts for n in range(1, NODES_PER_HOST + 1)]
    ledger = tmp_path / 'ledger.sqlite3'
    handle = ledger_lib.open_ledger(str(ledger), create=True)
    try:
        handle.record_transitions([dict(i, to_state=None, mode='dual_stack') for i in items])
        handle.record_transitions([dict(i, to_state=None, mode='libp2p_only', seconds_to_ready=1.0 + 0.2 * (k % 2))
                                   for k, i in enumerate(items)])
        handle.record_transitions([dict(i, to_state=None, mode='dual_stack') for i in items])
    finally:
        handle.close()
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text('all:\n  children:\n    fleet:\n      hosts:\n'
                         + ''.join('        %s:\n' % h for h in hosts))
    env = dict(os.environ, ANT_MIGRATION_LEDGER=str(ledger), ANT_MIGRATION_INVENTORY=str(inventory),
               PATH='%s:%s' % (Path(sys.executable).parent, os.environ.get('PATH', '')))
    return {'ledger': ledger, 'env': env, 'dir': tmp_path}


def test_a_rehearsal_is_recorded_and_the_preflight_passes_rollback_tested_then_one_over_the_sla_fails(known_fleet):
    env, ledger = known_fleet['env'], known_fleet['ledger']
    with sqlite3.connect(ledger) as conn:
        nodes_before = conn.execute('SELECT * FROM ledger_nodes ORDER BY node_id').fetchall()
    before = time.time()
    ran = cli(env, 'rehearse', '--operator', 'frank')
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    [event] = rehearsals(ledger)
    assert event['passed'] is True and event['operator'] == 'frank'
    assert event['shape'] == {'hosts': HOSTS, 'nodes_per_host': NODES_PER_HOST, 'mode': 'dual_stack',
                              'source': 'ledger'}
    assert event['simulated_hosts'] == HOSTS and event['method'] == 'measured on a simulated copy of the whole fleet'
    assert event['ready_delay'] == 1.2 and event['readiness_measured'] is True     # the p95 of the 8 switches
    assert event['sla_seconds'] == 300.0 and event['forks'] >= 1
    # the copy really switched and was timed: its own switches took at least the ready delay
    assert 0 < event['measured_seconds'] < time.time() - before
    assert event['copy_switch_p95'] >= 1.2
    assert event['projected_seconds'] > 0 and event['copy_projected_seconds'] > 0
    assert 'rehearsal passed: the rehearsed fast rollback took' in ran.stdout, ran.stdout
    assert 'projection for the fleet (wave_planning.project_fast_rollback)' in ran.stdout
    # the copy is gone (its simulator stopped with it), and the fleet's ledger got no rollback of its own
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events WHERE kind IN ('rollback', 'rollback_started')"
                            ).fetchone()[0] == 0
        assert conn.execute('SELECT * FROM ledger_nodes ORDER BY node_id').fetchall() == nodes_before

    # The preflight of that fleet (started now, stopped before the next rehearsal) passes rollback_tested.
    directory = known_fleet['dir'] / 'preflight'
    with testing.SimStack(directory / 'fleet', hosts=HOSTS, nodes_per_host=NODES_PER_HOST, ready_delay=0.5) as stack:
        inv = inventory_dir(stack, directory, {'preflight_baseline_window': '5m'})
        proc = playbook(inv, 'monitoring.yml', ledger)
        assert proc.returncode == 0, proc.stdout[-3000:]
        stack.wait_targets_up()
        checked = cli(dict(env, ANT_MIGRATION_INVENTORY=str(inv)), 'preflight', '--operator', 'frank',
                      '--waive', 'monitoring=' + NO_ALERTMANAGER, '--waive', 'alert_recipients=' + NO_ALERTMANAGER,
                      '--waive', 'communication=' + NO_ALERTMANAGER,
                      '--waive', 'load_tested=the next test rehearses under load')
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    assert 'pass  rollback_tested: the fast rollback rehearsed' in checked.stdout, checked.stdout

    # Forced over its SLA: the rehearsal fails with its message and is recorded failed; rollback_tested then fails.
    over = cli(env, 'rehearse', '--sla', '1', '--operator', 'frank')
    assert over.returncode == 1, over.stdout[-3000:]
    last = rehearsals(ledger)[-1]
    assert last['passed'] is False and last['sla_seconds'] == 1.0 and last['measured_seconds'] > 1.0
    message = 'the rehearsed fast rollback took %.0f s, over the 1 s SLA' % last['measured_seconds']
    assert last['message'] == message
    assert message in over.stdout and 'docs/runbooks/rehearsal-failed.md' in over.stderr, over.stdout + over.stderr

    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import preflight, rehearsal

    with ledger_lib.open_ledger(str(ledger)) as handle:
        judged = preflight.judge_rollback_tested(rehearsal.latest(handle), time.time(), 7 * 86400, '7d')
    assert judged['result'] == 'fail'
    assert judged['problems'][0].startswith('the last rehearsal took %.0f s, over the 1 s SLA'
                                            % last['measured_seconds']), judged


def test_a_rehearsal_under_load_is_scraped_and_read_and_one_that_costs_reads_fails_load_tested(known_fleet):
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import preflight, rehearsal

    env, ledger = known_fleet['env'], known_fleet['ledger']
    ran = cli(env, 'rehearse', '--under-load', '--client-reads', '400', '--operator', 'grace')
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    [event] = rehearsals(ledger)
    load = event['load']
    assert event['passed'] is True and load['passed'] is True, event
    # the clients read throughout the rollback, and Prometheus scraped every node of the copy again after it
    assert load['client_read_rate'] == 400.0 and load['reads_total'] >= 400.0 * 0.5 * event['measured_seconds']
    assert load['reads_failed'] <= 0.01 * load['reads_total']
    assert load['targets'] == HOSTS * NODES_PER_HOST and load['targets_up_after'] == load['targets']
    assert load['scrape_interval'] == 2.0 and load['max_read_loss'] == 0.01
    shown = ' '.join(ran.stdout.split())     # the console wraps long lines
    assert 'client reads failed during the rollback' in shown and 'rehearsal passed' in shown, ran.stdout
    with ledger_lib.open_ledger(str(ledger)) as handle:
        judged = preflight.judge_load_tested(rehearsal.latest(handle, under_load=True), time.time(), 86400, '1d')
    assert judged['result'] == 'pass', judged['message']

    # All at once, every node restarts together: the clients' reads fail meanwhile, over a 0.01 % allowance.
    costly = cli(env, 'rehearse', '--under-load', '--order', 'all_at_once', '--max-read-loss', '0.01',
                 '--operator', 'grace')
    assert costly.returncode == 1, costly.stdout[-3000:]
    last = rehearsals(ledger)[-1]
    assert last['passed'] is True, last            # the SLA was kept: rollback_tested is not failed by the load
    assert last['load']['passed'] is False and last['load']['reads_failed'] > 0.0001 * last['load']['reads_total']
    assert last['load']['message'].startswith("under load: the rollback cost "), last['load']
    assert "the rollback cost" in ' '.join(costly.stdout.split()), costly.stdout
    assert 'rehearsal failed' in costly.stdout
    assert 'docs/runbooks/rehearsal-failed.md' in ' '.join(costly.stderr.split())
    with ledger_lib.open_ledger(str(ledger)) as handle:
        newest = rehearsal.latest(handle, under_load=True)
        judged = preflight.judge_load_tested(newest, time.time(), 86400, '1d')
        tested = preflight.judge_rollback_tested(rehearsal.latest(handle), time.time(), 86400, '1d')
    assert judged['result'] == 'fail'
    assert judged['problems'][0].startswith('the last rehearsal under load (%s) failed under load: the rollback '
                                            'cost ' % newest['at']), judged['problems']
    assert tested['result'] == 'pass', tested['message']

