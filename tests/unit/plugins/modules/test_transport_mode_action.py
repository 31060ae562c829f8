"""The transport_mode action plugin's ledger guard: pause, halt, rollback, missing and broken ledgers."""

from __future__ import annotations

import importlib

import pytest

from ansible_collections.autonomi.network_migration.plugins.action import transport_mode as action

PAUSE = {'reason': 'looking at latency', 'operator': 'alice', 'at': '2026-11-27T05:00:00Z'}
HALT = {'reason': 'high_error_rate_iroh fired', 'operator': 'migration_tracker', 'at': '2026-11-27T05:01:00Z',
        'source': 'callback'}


def flags(paused=None, halted=None):
    return lambda _location: ('/tmp/ledger.sqlite3', {'paused': paused, 'halted': halted})


def test_no_flags_allows():
    guard = action.check_ledger(read_flags=flags())
    assert guard.allowed and guard.reason is None and guard.note is None


def test_pause_refuses_and_says_who_and_why():
    guard = action.check_ledger(read_flags=flags(paused=PAUSE))
    assert not guard.allowed
    assert guard.reason.startswith('the migration is paused (looking at latency; by alice at 2026-11-27T05:00:00Z)')
    assert 'Resume the migration first' in guard.reason


def test_pause_ignored_on_request():
    guard = action.check_ledger(ignore_pause=True, read_flags=flags(paused=PAUSE))
    assert guard.allowed and 'ignored' in guard.note


@pytest.mark.parametrize('ignore_pause,allow_rollback,allowed', [
    (False, False, False), (True, False, False), (False, True, False), (True, True, True)])
def test_halt_is_ignored_only_by_a_rollback(ignore_pause, allow_rollback, allowed):
    guard = action.check_ledger(ignore_pause=ignore_pause, allow_rollback=allow_rollback,
                                read_flags=flags(paused=PAUSE, halted=HALT))
    assert guard.allowed is allowed
    if not allowed:
        assert 'halted (high_error_rate_iroh fired; by migration_tracker' in guard.reason
        assert 'source callback' in guard.reason


def test_missing_ledger_code_runs_unguarded_with_a_note():
    def missing(_location):
        raise ImportError('No module named ledger')
    guard = action.check_ledger(read_flags=missing)
    assert guard.allowed and 'pause/halt not checked' in guard.note


@pytest.mark.parametrize('error', [OSError('disk I/O error'), ValueError('bad schema'), RuntimeError('locked')])
def test_unreadable_ledger_fails_closed(error):
    def broken(_location):
        raise error
    guard = action.check_ledger(read_flags=broken)
    assert not guard.allowed and 'cannot read the migration ledger' in guard.reason and str(error) in guard.reason


def test_explicit_location_is_passed_through():
    seen = []
    action.check_ledger('/srv/ledger.sqlite3', read_flags=lambda loc: seen.append(loc) or ('x', {}))
    assert seen == ['/srv/ledger.sqlite3']


def test_with_the_real_ledger(tmp_path):
    try:
        ledger_mod = importlib.import_module(
            'ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger')
    except ImportError:
        pytest.skip('the ledger is not in this checkout yet')
    path = str(tmp_path / 'ledger.sqlite3')
    assert action.check_ledger(path).allowed
    ledger = ledger_mod.open_ledger(path)
    try:
        ledger.set_pause('operator pause for the test', 'tester')
    finally:
        ledger.close()
    guard = action.check_ledger(path)
    assert not guard.allowed and 'operator pause for the test; by tester' in guard.reason
    assert action.check_ledger(path, ignore_pause=True).allowed


def test_controller_options_never_reach_the_host():
    assert set(action.CONTROLLER_OPTIONS) == {'ignore_pause', 'ledger'}
