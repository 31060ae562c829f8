"""The fast rollback keeps the network readable (issue 26, item 8).

A fleet whose every node runs dual_stack (switched the collection's way, then recorded by reconcile, as an
operator's ledger would know it) is rolled back twice with client reads running: the default, readable order
restarts the hosts in rounds that keep a member of every close group up; the emergency order, all at once,
restarts whole close groups together. The reads the simulator's clients lost in each window are compared:
that is the promise (reads keep working), not the plan's shape.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

from scenario_harness import ANSIBLE_PLAYBOOK, ROOT, wait_for

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

LIBP2P, DUAL = 'libp2p_only', 'dual_stack'


def everything_dual_stack_and_recorded(fleet):
    for host in sorted({n['host'] for n in fleet.stack.fleet()['nodes']}):
        fleet.stack.set_mode(host, [n['service_name'] for n in fleet.stack.antctl_status(host)['nodes']], DUAL)
    wait_for(lambda: all(n['mode'] == DUAL and n['ready'] for n in fleet.stack.fleet()['nodes']), timeout=120,
             what='every node dual_stack and ready')
    run = fleet.play('reconcile.yml', 'fix=true')
    assert run.rc == 0, run.tail()
    assert set(fleet.ledger_states().values()) <= {'dual_stack_testing', 'dual_stack_stable'}, fleet.ledger_states()


def rollback_losing(fleet, *extra):
    """Run a fast rollback; returns (its run, the client reads failed while it ran)."""
    before = fleet.stack.client_reads()
    run = fleet.play('rollback.yml', 'reason=readable rollback test', *extra)
    after = fleet.stack.client_reads()
    assert run.rc == 0, run.tail()
    assert set(fleet.modes().values()) == {LIBP2P}
    return run, after['failed'] - before['failed'], after['total'] - before['total']


def test_the_default_fast_rollback_keeps_reads_working_and_all_at_once_is_the_emergency(fleet_factory):
    # Slow restarts (3 s to ready) so that a close group down together shows in the clients' reads.
    fleet = fleet_factory(hosts=8, nodes_per_host=5, ready_delay=3.0)

    everything_dual_stack_and_recorded(fleet)
    readable, lost_readable, reads_readable = rollback_losing(fleet)
    rounds = re.search(r'in (\d+) round\(s\), readable', readable.output)
    assert rounds and int(rounds.group(1)) > 1, readable.tail()

    everything_dual_stack_and_recorded(fleet)
    emergency, lost_all, reads_all = rollback_losing(fleet, 'rollback_order=all_at_once')
    assert 'all at once (emergency' in emergency.output, emergency.tail()

    # All at once: every close group down together for a restart (3 s), the clients' reads fail meanwhile.
    assert lost_all > 0.5 * 3 * 300 * 0.5, (lost_all, reads_all)
    # Readable: a member of every close group stays up; what little is lost is a record whose holders are not
    # one node's close group (the planner keeps node-centred groups), far below the emergency's.
    assert lost_readable < 0.02 * reads_readable and lost_readable < 0.1 * lost_all, (
        lost_readable, reads_readable, lost_all)
    # Both recorded as rollbacks that succeeded.
    with fleet.ledger() as book:
        outcomes = [e['data']['outcome'] for e in book.events(kinds=['rollback'])]
    assert outcomes == ['succeeded', 'succeeded'], outcomes


def test_a_round_whose_every_host_is_unreachable_still_ends_in_a_recorded_conclusion(tmp_path):
    """ansible-playbook ends every later play once a whole batch failed: the rollback's conclusion must still
    run, record the outcome and name the host (before, a fleet of one unreachable host left no record)."""
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(json.dumps({'all': {'hosts': {'localhost': {'ansible_connection': 'local'}}, 'children': {
        'fleet': {'hosts': {'ghost-host': {'ansible_connection': 'ssh', 'ansible_host': '127.0.0.1',
                                           'ansible_port': 9, 'ansible_user': 'nobody'}}}}}}))
    ledger = tmp_path / 'ledger.sqlite3'
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANT_MIGRATION_LEDGER=str(ledger),
               ANT_MIGRATION_LEDGER_INIT='true', ANSIBLE_NOCOLOR='1', ANT_MIGRATION_OPERATOR='scenario-test')
    proc = subprocess.run([ANSIBLE_PLAYBOOK, str(ROOT / 'playbooks' / 'rollback.yml'), '-i', str(inventory),
                           '-e', 'rollback_order=all_at_once', '-e', 'reason=unreachable round'],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-3000:]
    assert 'TASK [autonomi.network_migration.rollback : Conclude the rollback]' in output, output[-3000:]
    with ledger_lib.open_ledger(str(ledger)) as book:
        event = book.events(kinds=['rollback'])[0]['data']
        assert event['outcome'] == 'failed' and event['failed_hosts'] == ['ghost-host'], event
        assert book.lock() is None
