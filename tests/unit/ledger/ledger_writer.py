"""Subprocess workers for the ledger's crash and concurrency tests (run as a script).

crash LOCATION HOSTS NODES: forever, move every node of one host to the next state in ONE
    transaction (record_transitions), alternating hosts; after each commit print
    "committed <round> <host> <state>" and flush. The test SIGKILLs it at a random moment.
write LOCATION WORKER COUNT: record COUNT transitions for nodes of host "w<WORKER>", one
    transaction each, then print "done".
lock LOCATION HOLDER SECONDS: take the run lock as HOLDER, print "locked", hold it SECONDS.
"""

from __future__ import annotations

import sys
import time

from ansible.plugins.loader import init_plugin_loader

# The collection through Ansible's collection finder, as in the test that starts this script
# (ANSIBLE_CONFIG, set by tests/conftest.py, names ./collections).
init_plugin_loader()

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

CYCLE = ('dual_stack_testing', 'dual_stack_stable', 'iroh_primary', 'rolled_back')


def crash(location, hosts, nodes):
    ledger = ledger_lib.open_ledger(location)
    run = ledger.start_run('crash-test.yml', 'tester', {})
    round_no = 0
    while True:
        host = 'host-%02d' % (round_no % hosts)
        state = CYCLE[(round_no // hosts) % len(CYCLE)]
        items = [{'host': host, 'service_name': 'antnode%d' % i, 'peer_id': '12D3KooW%s%d' % (host, i),
                  'to_state': state, 'reason': 'round %d' % round_no, 'seconds_to_ready': 0.5}
                 for i in range(1, nodes + 1)]
        ledger.record_transitions(items, run_id=run)
        ledger.record_event('gate_verdict', run_id=run, round=round_no, host=host, verdict='pass')
        print('committed %d %s %s' % (round_no, host, state), flush=True)
        round_no += 1


def write(location, worker, count):
    ledger = ledger_lib.open_ledger(location)
    for i in range(count):
        ledger.record_transition('w%s' % worker, 'antnode%d' % (i % 10), None, CYCLE[i % len(CYCLE)],
                                 reason='worker %s step %d' % (worker, i))
        ledger.record_event('alert_fired', worker=worker, step=i)
    ledger.close()
    print('done', flush=True)


def lock(location, holder, seconds):
    ledger = ledger_lib.open_ledger(location)
    ledger.acquire_lock(holder, 'rollout.yml')
    print('locked', flush=True)
    time.sleep(float(seconds))


if __name__ == '__main__':
    command, location = sys.argv[1], sys.argv[2]
    if command == 'crash':
        crash(location, int(sys.argv[3]), int(sys.argv[4]))
    elif command == 'write':
        write(location, sys.argv[3], int(sys.argv[4]))
    elif command == 'lock':
        lock(location, sys.argv[3], sys.argv[4])
    else:
        raise SystemExit('unknown command %s' % command)
