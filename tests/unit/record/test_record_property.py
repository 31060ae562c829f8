# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Property: for random sequences of switches, failures and kills, every node's ledger row equals the mode it
really runs, or the ledger holds an un-ended intent that names its host.

The switches go through the collection's own write-ahead path (services/switch.py begin/finish, the path the
transport_mode action takes around the module) with a real SQLite ledger; the module is played by a fleet model,
and the failures are injected where they happen in production: the ledger refusing the intent, refusing the
result, the worker killed between the module and the record, a node that fails and is restored.
"""

from __future__ import annotations

import random

import pytest

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import control, switch

HOSTS = ('h1', 'h2', 'h3')
NODES = ('antnode1', 'antnode2', 'antnode3')
FAULTS = ('none', 'none', 'none', 'partial', 'intent_refused', 'result_refused', 'killed', 'acknowledge')


class Unwritable(ledger_lib.LedgerUnavailable):
    pass


def refuse(*_args, **_kwargs):
    raise Unwritable('no space left on device on /var/lib/ledger (injected)')


def module_result(fleet, host, target, rng, partial):
    """What transport_mode returns, playing the nodes of ``host``; updates ``fleet`` (the truth)."""
    nodes = []
    for name in NODES:
        current = fleet[host][name]
        if current == target:
            nodes.append({'service_name': name, 'previous_mode': current, 'mode': current, 'result': 'unchanged'})
        elif partial and rng.random() < 0.5:
            # The switch failed and the node was restored to where it was.
            nodes.append({'service_name': name, 'previous_mode': current, 'mode': current, 'result': 'failed',
                          'restored': True, 'error': 'not ready'})
        else:
            fleet[host][name] = target
            nodes.append({'service_name': name, 'previous_mode': current, 'mode': target, 'result': 'switched',
                          'seconds_to_ready': 1.0})
    return {'mode': target, 'nodes': nodes, 'changed': True}


def next_target(current, rng):
    index = _modes.mode_index(current)
    choices = list(_modes.MODES[:index]) + ([_modes.MODES[index + 1]] if index + 1 < len(_modes.MODES) else [])
    return rng.choice(choices)


def mismatches(location, fleet):
    with ledger_lib.open_ledger(location) as book:
        unended = {i['host'] for i in book.intents()}
        return {n['node_id']: (n['mode'], fleet[n['host']][n['service_name']]) for n in book.nodes()
                if n['mode'] != fleet[n['host']][n['service_name']] and n['host'] not in unended}


@pytest.mark.parametrize('seed', range(25))
def test_the_ledger_equals_the_fleet_or_names_the_unrecorded_switch(seed, tmp_path, monkeypatch):
    rng = random.Random(seed)
    location = str(tmp_path / 'ledger.sqlite3')
    fleet = {h: dict.fromkeys(NODES, _modes.LIBP2P_ONLY) for h in HOSTS}
    with ledger_lib.open_ledger(location) as book:
        book.record_transitions([{'host': h, 'service_name': n, 'mode': _modes.LIBP2P_ONLY}
                                 for h in HOSTS for n in NODES])
    for _step in range(40):
        host, fault = rng.choice(HOSTS), rng.choice(FAULTS)
        if fault == 'acknowledge':
            # The operator compares the ledger with the hosts and acknowledges: the ledger is the fleet again.
            with ledger_lib.open_ledger(location) as book:
                observed = {h: [{'service_name': n, 'mode': m, 'status': 'Running'} for n, m in nodes.items()]
                            for h, nodes in fleet.items()}
                control.reconcile(book, observed, [], fix=True, operator='op')
                if book.intents():
                    control.resume(book, 'op', ack=True)
            assert mismatches(location, fleet) == {}
            continue
        target = next_target(rng.choice([fleet[host][n] for n in NODES]), rng)
        if fault == 'intent_refused':
            monkeypatch.setattr(ledger_lib.Ledger, 'open_intent', refuse)
        refusal = switch.begin(location, host, target)
        monkeypatch.undo()
        if refusal:
            assert fault == 'intent_refused' and 'nothing was switched' in refusal and 'no space left' in refusal
            assert mismatches(location, fleet) == {}
            continue
        result = module_result(fleet, host, target, rng, partial=fault == 'partial')
        if fault == 'killed':
            pass                                  # the worker died between the module and the record
        else:
            if fault == 'result_refused':
                monkeypatch.setattr(ledger_lib.Ledger, 'close_intent', refuse)
            _changed, error = switch.finish(location, host, result)
            monkeypatch.undo()
            assert (error is not None) == (fault == 'result_refused')
        assert mismatches(location, fleet) == {}, f'seed {seed}: the ledger parted from the fleet after {fault}'
