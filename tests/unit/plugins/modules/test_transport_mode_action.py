"""The transport_mode action plugin's ledger guard: pause, halt, rollback, missing and broken ledgers."""

from __future__ import annotations

import importlib

import pytest

from ansible_collections.autonomi.network_migration.plugins.action import transport_mode as action_plugin
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import switch as action

PAUSE = {'reason': 'looking at latency', 'operator': 'alice', 'at': '2026-11-27T05:00:00Z'}
HALT = {'reason': 'high_error_rate_iroh fired', 'operator': 'migration_tracker', 'at': '2026-11-27T05:01:00Z',
        'source': 'callback'}


def flags(paused=None, halted=None, modes=None):
    def read(_location, with_modes=False):
        return '/tmp/ledger.sqlite3', {'paused': paused, 'halted': halted}, (modes if with_modes else None)
    return read


def test_no_flags_allows():
    guard = action.may_touch(read_ledger=flags())
    assert guard.allowed and guard.reason is None and guard.note is None


def test_pause_refuses_and_says_who_and_why():
    guard = action.may_touch(read_ledger=flags(paused=PAUSE))
    assert not guard.allowed
    assert guard.reason.startswith('the migration is paused (looking at latency; by alice at 2026-11-27T05:00:00Z)')
    assert 'Resume the migration first' in guard.reason


def test_pause_ignored_on_request():
    guard = action.may_touch(ignore_pause=True, read_ledger=flags(paused=PAUSE))
    assert guard.allowed and 'ignored' in guard.note


@pytest.mark.parametrize('ignore_pause,allow_rollback,allowed', [
    (False, False, False), (True, False, False), (False, True, False), (True, True, True)])
def test_halt_is_ignored_only_by_a_rollback(ignore_pause, allow_rollback, allowed):
    guard = action.may_touch(ignore_pause=ignore_pause, allow_rollback=allow_rollback,
                             read_ledger=flags(paused=PAUSE, halted=HALT))
    assert guard.allowed is allowed
    if not allowed:
        assert 'halted (high_error_rate_iroh fired; by migration_tracker' in guard.reason
        assert 'source callback' in guard.reason


def test_missing_ledger_code_runs_unguarded_with_a_note():
    def missing(_location, with_modes=False):
        raise ImportError('No module named ledger')
    guard = action.may_touch(read_ledger=missing)
    assert guard.allowed and 'pause/halt not checked' in guard.note


@pytest.mark.parametrize('error', [OSError('disk I/O error'), ValueError('bad schema'), RuntimeError('locked')])
def test_unreadable_ledger_fails_closed(error):
    def broken(_location, with_modes=False):
        raise error
    guard = action.may_touch(read_ledger=broken)
    assert not guard.allowed and 'cannot read the migration ledger' in guard.reason and str(error) in guard.reason


def test_explicit_location_is_passed_through():
    seen = []
    action.may_touch('/srv/ledger.sqlite3', read_ledger=lambda loc, with_modes: seen.append(loc) or ('x', {}, None))
    assert seen == ['/srv/ledger.sqlite3']


def test_with_the_real_ledger(tmp_path):
    try:
        ledger_mod = importlib.import_module(
            'ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger')
    except ImportError:
        pytest.skip('the ledger is not in this checkout yet')
    path = str(tmp_path / 'ledger.sqlite3')
    assert action.may_touch(path).allowed
    ledger = ledger_mod.open_ledger(path)
    try:
        ledger.set_pause('operator pause for the test', 'tester')
    finally:
        ledger.close()
    guard = action.may_touch(path)
    assert not guard.allowed and 'operator pause for the test; by tester' in guard.reason
    assert action.may_touch(path, ignore_pause=True).allowed


def test_partition_rule_with_the_real_ledger(tmp_path):
    try:
        ledger_mod = importlib.import_module(
            'ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger')
    except ImportError:
        pytest.skip('the ledger is not in this checkout yet')
    path = str(tmp_path / 'ledger.sqlite3')
    ledger = ledger_mod.open_ledger(path)
    try:
        ledger.record_observation('h1', 'antnode1', mode='iroh_primary')
        ledger.record_observation('h2', 'antnode1', mode='libp2p_only')
    finally:
        ledger.close()
    refused = action.may_touch(path, mode='iroh_only', host='h1')
    assert not refused.allowed and 'h2/antnode1' in refused.reason
    assert action.may_touch(path, mode='iroh_only', host='h2').allowed


def test_controller_options_never_reach_the_host():
    assert set(action_plugin.CONTROLLER_OPTIONS) == {'ignore_pause', 'ledger'}


FLEET = {'h1/antnode1': 'iroh_primary', 'h1/antnode2': 'libp2p_only', 'h2/antnode1': 'iroh_primary',
         'h3/antnode1': 'libp2p_only'}


def test_iroh_only_refused_while_the_fleet_has_libp2p_only_nodes():
    guard = action.may_touch(mode='iroh_only', host='h1', read_ledger=flags(modes=FLEET))
    assert not guard.allowed
    assert 'while 1 node(s) of the fleet still run libp2p_only according to the ledger (h3/antnode1)' in guard.reason
    # the host's own nodes are the module's business (it reads them live)
    assert action.may_touch(mode='iroh_only', host='h3',
                            read_ledger=flags(modes={k: v for k, v in FLEET.items() if k != 'h1/antnode2'})).allowed


def test_fleet_modes_are_read_only_for_iroh_only():
    asked = []

    def read(_location, with_modes=False):
        asked.append(with_modes)
        return 'x', {}, FLEET if with_modes else None
    assert action.may_touch(mode='iroh_primary', host='h1', read_ledger=read).allowed
    assert asked == [False]


def test_rollback_is_never_blocked_by_the_partition_rule():
    guard = action.may_touch(mode='libp2p_only', host='h1', allow_rollback=True, read_ledger=flags(modes=FLEET))
    assert guard.allowed
