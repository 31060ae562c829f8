"""The ledger's behaviour, identical on SQLite and PostgreSQL (every test runs on both)."""

from __future__ import annotations

import datetime
import os
import pathlib
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger import core as ledger_core
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger import schema as _ledger_schema
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.controller import controller_processes

HERE = os.path.dirname(os.path.abspath(__file__))
WRITER = os.path.join(HERE, 'ledger_writer.py')


# -- schema ----------------------------------------------------------------------------------


def test_new_ledger_has_current_schema(ledger):
    assert ledger.schema_version() == _ledger_schema.SCHEMA_VERSION
    assert ledger.nodes() == []
    assert ledger.get_flags() == {'paused': None, 'halted': None}
    assert ledger.lock() is None


def test_reopen_keeps_data(ledger, open_ledger):
    ledger.record_transition('h1', 'antnode1', '12D3KooWa', 'dual_stack_testing')
    again = open_ledger()
    assert again.node_states() == {'h1/antnode1': 'dual_stack_testing'}


def test_older_schema_is_migrated_forward(ledger_location, monkeypatch):
    # Create a version-1 ledger, as an older collection would have left it.
    monkeypatch.setattr(ledger_core, 'SCHEMA_VERSION', 1)
    old = ledger_lib.open_ledger(ledger_location)
    old.set_pause('before upgrade', 'alice')
    assert old.schema_version() == 1
    old.close()
    monkeypatch.setattr(ledger_core, 'SCHEMA_VERSION', _ledger_schema.SCHEMA_VERSION)
    new = ledger_lib.open_ledger(ledger_location)
    try:
        assert new.schema_version() == _ledger_schema.SCHEMA_VERSION
        assert new.get_flags()['paused']['reason'] == 'before upgrade'
        migrated = new.events(kinds='schema_migrated')
        assert migrated and migrated[0]['data'] == {'from': 1, 'to': _ledger_schema.SCHEMA_VERSION}
        new.record_transition('h1', 'antnode1', None, 'dual_stack_testing', seconds_to_ready=2.5)
        assert new.switch_times() == [2.5]
    finally:
        new.close()


def test_schema_from_the_future_is_refused(ledger, ledger_location):
    with ledger._db.transaction() as tx:
        tx.execute("UPDATE ledger_meta SET value = '99' WHERE key = 'schema_version'")
    ledger.close()
    with pytest.raises(ledger_lib.LedgerSchemaTooNew, match=r'schema version 99, newer than the \d+'):
        ledger_lib.open_ledger(ledger_location)


def test_foreign_ledger_meta_is_refused(ledger, ledger_location):
    with ledger._db.transaction() as tx:
        tx.execute("UPDATE ledger_meta SET value = 'something.else' WHERE key = 'application'")
    with pytest.raises(ledger_lib.LedgerForeignDatabase, match='does not belong to a migration ledger'):
        ledger_lib.open_ledger(ledger_location)


# -- bad input (backend specific) ---------------------------------------------------------------


def test_garbage_file_is_refused_untouched(tmp_path):
    path = tmp_path / 'ledger.sqlite3'
    path.write_bytes(b'this is a text file, not a database\n' * 10)
    before = path.read_bytes()
    with pytest.raises(ledger_lib.LedgerForeignDatabase, match='is not a SQLite database'):
        ledger_lib.open_ledger(str(path))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ['ledger.sqlite3']


def test_foreign_sqlite_database_is_refused_untouched(tmp_path):
    path = tmp_path / 'app.db'
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)')
    conn.commit()
    conn.close()
    with pytest.raises(ledger_lib.LedgerForeignDatabase, match=r'not a migration ledger \(it has the tables users'):
        ledger_lib.open_ledger(str(path))
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    conn.close()
    assert tables == ['users']


def test_sqlite_of_another_application_is_refused(tmp_path):
    path = tmp_path / 'other.db'
    conn = sqlite3.connect(path)
    conn.execute('PRAGMA application_id = 1234')
    conn.commit()
    conn.close()
    with pytest.raises(ledger_lib.LedgerForeignDatabase, match='another application'):
        ledger_lib.open_ledger(str(path))


def test_truncated_sqlite_file_is_refused(tmp_path, clock):
    path = tmp_path / 'ledger.sqlite3'
    ledger = ledger_lib.open_ledger(str(path), clock=clock)
    ledger.record_transition('h1', 'antnode1', None, 'dual_stack_testing')
    ledger.close()
    for suffix in ('-wal', '-shm'):
        if os.path.exists(str(path) + suffix):
            os.unlink(str(path) + suffix)
    data = path.read_bytes()
    path.write_bytes(data[:100] + b'\xff' * (len(data) - 100))
    with pytest.raises(ledger_lib.LedgerError):
        ledger_lib.open_ledger(str(path))


def test_directory_as_path_is_refused(tmp_path):
    with pytest.raises(ledger_lib.LedgerUnavailable, match='is a directory'):
        ledger_lib.open_ledger(str(tmp_path))


def test_unwritable_location_is_refused(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(ledger_lib.LedgerUnavailable, match='cannot create the directory'):
        ledger_lib.open_ledger(str(blocker / 'sub' / 'ledger.sqlite3'))


def test_wrong_dsn_port_is_refused(postgres_server):
    dsn = f'postgresql://ledger:s3cret@127.0.0.1:{postgres_server.port + 1}/postgres'
    with pytest.raises(ledger_lib.LedgerUnavailable) as info:
        ledger_lib.open_ledger(dsn)
    assert 'cannot connect to the PostgreSQL ledger' in str(info.value)
    assert 's3cret' not in str(info.value)


def test_wrong_dsn_database_is_refused(postgres_server):
    with pytest.raises(ledger_lib.LedgerUnavailable, match='does not exist'):
        ledger_lib.open_ledger(postgres_server.dsn(dbname='no_such_db'))


def test_malformed_dsn_is_refused():
    with pytest.raises(ledger_lib.LedgerUnavailable, match='cannot connect'):
        ledger_lib.open_ledger('postgresql://user@/db?sslmode=bogus')


def test_missing_psycopg_is_explained(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == 'psycopg' or name.startswith('psycopg.'):
            raise ImportError('No module named psycopg')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', fake_import)
    with pytest.raises(ledger_lib.LedgerUnavailable, match='psycopg 3 is not installed'):
        ledger_lib.open_ledger('postgresql://u:pw@127.0.0.1:1/db')


def test_sqlite_ledger_does_not_import_psycopg(tmp_path):
    code = ('import sys\n'
            'from ansible.plugins.loader import init_plugin_loader\n'
            'init_plugin_loader()\n'
            'from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger\n'
            f'ledger.open_ledger({str(tmp_path / "l.sqlite3")!r}).progress()\n'
            'assert "psycopg" not in sys.modules, "psycopg imported"\n')
    subprocess.run([sys.executable, '-c', code], check=True)


def test_sqlite_uses_wal_and_busy_timeout(tmp_path):
    with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as ledger:
        conn = ledger._db._conn
        assert conn.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
        assert conn.execute('PRAGMA busy_timeout').fetchone()[0] == 30000
        assert conn.execute('PRAGMA application_id').fetchone()[0] == 0x414E4D4C


def test_sqlite_writer_waiting_too_long_is_a_ledger_error(tmp_path):
    path = str(tmp_path / 'l.sqlite3')
    with ledger_lib.open_ledger(path) as ledger:
        ledger._db._conn.execute('PRAGMA busy_timeout = 100')
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute('BEGIN IMMEDIATE')
        try:
            with pytest.raises(ledger_lib.LedgerUnavailable, match='locked'):
                ledger.record_event('alert_fired')
        finally:
            blocker.execute('ROLLBACK')
            blocker.close()
        ledger.record_event('alert_fired')
        assert len(ledger.events()) == 1


def test_postgresql_dropped_connection_is_replaced(postgres_server, monkeypatch):
    import psycopg

    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.backends import (
        postgres as _ledger_postgres,
    )

    dsn = postgres_server.new_schema()
    with ledger_lib.open_ledger(dsn) as ledger:
        ledger.record_event('alert_fired')
        with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'autonomi.network_migration'")
        monkeypatch.setattr(_ledger_postgres, 'IDLE_CHECK_AFTER', 0.0)
        ledger.record_event('alert_resolved')
        assert [e['kind'] for e in ledger.events()] == ['alert_resolved', 'alert_fired']


def test_postgresql_schema_missing_is_a_ledger_error(postgres_server):
    with pytest.raises(ledger_lib.LedgerError, match='refused a statement'):
        ledger_lib.open_ledger(postgres_server.dsn(schema='no_such_schema'))


# -- location --------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv('ANT_MIGRATION_LEDGER', raising=False)
    monkeypatch.delenv('ANSIBLE_CONFIG', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    work = tmp_path / 'work'
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def test_location_default(clean_env):
    location, source = ledger_lib.resolve_ledger_location(with_source=True)
    assert location == str(clean_env / 'home/.local/state/autonomi-network-migration/ledger.sqlite3')
    assert source == 'default'


def test_location_from_cwd_ansible_cfg_is_relative_to_the_file(clean_env):
    (clean_env / 'work/ansible.cfg').write_text('[autonomi_network_migration]\nledger = .state/l.sqlite3 ; note\n')
    assert ledger_lib.resolve_ledger_location() == str(clean_env / 'work/.state/l.sqlite3')


def test_location_from_ansible_config_env(clean_env, monkeypatch):
    cfgdir = clean_env / 'cfg'
    cfgdir.mkdir()
    (cfgdir / 'my.cfg').write_text('[defaults]\nforks = 5\n[autonomi_network_migration]\nledger = ../db/x.sqlite3\n')
    (clean_env / 'work/ansible.cfg').write_text('[autonomi_network_migration]\nledger = ignored.sqlite3\n')
    monkeypatch.setenv('ANSIBLE_CONFIG', str(cfgdir / 'my.cfg'))
    location, source = ledger_lib.resolve_ledger_location(with_source=True)
    assert location == str(clean_env / 'db/x.sqlite3')
    assert 'my.cfg' in source


def test_location_from_home_cfg(clean_env):
    (clean_env / 'home').mkdir()
    (clean_env / 'home/.ansible.cfg').write_text('[autonomi_network_migration]\nledger = postgresql://a@b/c\n')
    assert ledger_lib.resolve_ledger_location() == 'postgresql://a@b/c'


def test_location_env_beats_cfg_and_explicit_beats_env(clean_env, monkeypatch):
    (clean_env / 'work/ansible.cfg').write_text('[autonomi_network_migration]\nledger = cfg.sqlite3\n')
    monkeypatch.setenv('ANT_MIGRATION_LEDGER', 'postgres://u@db/ledger')
    assert ledger_lib.resolve_ledger_location() == 'postgres://u@db/ledger'
    assert ledger_lib.resolve_ledger_location('x/y.sqlite3') == str(clean_env / 'work/x/y.sqlite3')
    assert ledger_lib.is_dsn('postgresql://x') and ledger_lib.is_dsn('postgres://x')
    assert not ledger_lib.is_dsn('/tmp/postgresql.sqlite3')


def test_open_default_location_creates_directories(clean_env):
    with ledger_lib.open_ledger() as ledger:
        assert ledger.location.endswith('.local/state/autonomi-network-migration/ledger.sqlite3')
    assert (clean_env / 'home/.local/state/autonomi-network-migration/ledger.sqlite3').exists()


# -- runs and events -------------------------------------------------------------------------------


def test_runs_redact_secrets(ledger):
    run = ledger.start_run('playbooks/rollout.yml', 'alice', {
        'wave': 25, 'vault_password': 'x', 'prometheus': {'url': 'https://u:pw@prom', 'api_token': 'tok'},
        'ledger': 'postgresql://ledger:hunter2@db/ledger'})
    ledger.end_run(run, 'ok', summary={'progress_percent': 10.0})
    row = ledger.run(run)
    assert row['extra_vars']['wave'] == 25
    assert row['extra_vars']['vault_password'] == '********'
    assert row['extra_vars']['prometheus'] == {'url': 'https://u:********@prom', 'api_token': '********'}
    assert 'hunter2' not in str(row)
    assert row['outcome'] == 'ok' and row['ended_at'] and row['summary'] == {'progress_percent': 10.0}
    assert ledger.runs()[0]['id'] == run
    assert [e['kind'] for e in ledger.events(run_id=run)] == ['run_ended', 'run_started']


def test_events_filter_and_order(ledger, clock):
    ledger.record_event('alert_fired', alert='high_error_rate_iroh', value=0.07)
    clock.advance(1)
    ledger.record_event('gate_verdict', run_id='3', verdict='fail', metric='error_rate', value=0.07, threshold=0.05)
    clock.advance(1)
    ledger.record_event('alert_resolved', alert='high_error_rate_iroh')
    assert [e['kind'] for e in ledger.events()] == ['alert_resolved', 'gate_verdict', 'alert_fired']
    gate = ledger.events(kinds=['gate_verdict'])
    assert gate[0]['data'] == {'verdict': 'fail', 'metric': 'error_rate', 'value': 0.07, 'threshold': 0.05}
    assert gate[0]['run_id'] == 3
    assert len(ledger.events(limit=1)) == 1
    assert ledger.events(kinds='alert_fired', since=clock.now) == []


# -- nodes and transitions -----------------------------------------------------------------------------


def test_transition_writes_node_and_history(ledger):
    out = ledger.record_transition('h1', 'antnode1', '12D3KooWa', 'dual_stack_testing', version='0.4.6',
                                   reason='wave 25', run_id=7, wave='25', seconds_to_ready=3.2)
    assert out == {'node_id': 'h1/antnode1', 'from_state': None, 'to_state': 'dual_stack_testing',
                   'mode': 'dual_stack', 'changed': True}
    node = ledger.node('h1', 'antnode1')
    assert node['state'] == 'dual_stack_testing' and node['mode'] == 'dual_stack'
    assert node['peer_id'] == '12D3KooWa' and node['version'] == '0.4.6' and node['run_id'] == 7
    assert node['wave'] == '25'
    history = ledger.history('h1/antnode1')
    assert len(history) == 1 and history[0]['reason'] == 'wave 25' and history[0]['seconds_to_ready'] == 3.2


def test_same_state_again_adds_no_history(ledger):
    ledger.record_transition('h1', 'antnode1', 'p', 'dual_stack_testing')
    again = ledger.record_transition('h1', 'antnode1', 'p', 'dual_stack_testing')
    assert again['changed'] is False
    assert len(ledger.history()) == 1


@pytest.mark.parametrize('before, mode, expected', [
    (None, 'libp2p_only', 'libp2p_only'),
    (None, 'dual_stack', 'dual_stack_testing'),
    ('libp2p_only', 'dual_stack', 'dual_stack_testing'),
    ('rolled_back', 'dual_stack', 'dual_stack_testing'),
    ('dual_stack_stable', 'dual_stack', 'dual_stack_stable'),
    ('dual_stack_stable', 'iroh_primary', 'iroh_primary'),
    ('iroh_primary', 'dual_stack', 'dual_stack_stable'),
    ('dual_stack_testing', 'libp2p_only', 'rolled_back'),
    ('iroh_only', 'libp2p_only', 'rolled_back'),
    ('iroh_primary', 'iroh_only', 'iroh_only'),
])
def test_state_follows_mode(ledger, before, mode, expected):
    if before:
        ledger.record_transition('h1', 'antnode1', None, before)
    assert ledger.record_transition('h1', 'antnode1', None, None, mode=mode)['to_state'] == expected


def test_unknown_state_is_refused(ledger):
    with pytest.raises(ledger_lib.LedgerError, match='unknown migration state'):
        ledger.record_transition('h1', 'antnode1', None, 'half_migrated')
    with pytest.raises(ledger_lib.LedgerError, match='unknown transport mode'):
        ledger.record_transition('h1', 'antnode1', None, None, mode='quic')
    assert ledger.nodes() == []


def test_batch_of_transitions_is_atomic(ledger):
    items = [{'host': 'h1', 'service_name': f'antnode{i}', 'to_state': 'dual_stack_testing'} for i in range(3)]
    items.append({'host': 'h1', 'service_name': 'antnode9', 'to_state': 'bogus'})
    with pytest.raises(ledger_lib.LedgerError):
        ledger.record_transitions(items)
    assert ledger.nodes() == [] and ledger.history() == []


def test_nodes_filters_and_modes(ledger):
    ledger.record_transition('h1', 'antnode1', None, 'dual_stack_testing')
    ledger.record_transition('h1', 'antnode2', None, 'libp2p_only')
    ledger.record_transition('h2', 'antnode1', None, 'iroh_primary')
    assert [n['node_id'] for n in ledger.nodes(states=['libp2p_only', 'iroh_primary'])] == ['h1/antnode2',
                                                                                            'h2/antnode1']
    assert [n['node_id'] for n in ledger.nodes(hosts='h2')] == ['h2/antnode1']
    assert ledger.node_modes() == {'h1/antnode1': 'dual_stack', 'h1/antnode2': 'libp2p_only',
                                   'h2/antnode1': 'iroh_primary'}


def test_observations_register_unknown_nodes_without_changing_known_ones(ledger):
    ledger.record_transition('h1', 'antnode1', 'pa', 'dual_stack_testing')
    out = ledger.record_observations([
        {'host': 'h1', 'service_name': 'antnode1', 'mode': 'libp2p_only', 'healthy': False,
         'data': {'failed_checks': ['connectivity']}},
        {'host': 'h1', 'service_name': 'antnode2', 'peer_id': 'pb', 'mode': 'libp2p_only', 'healthy': True},
    ])
    assert out == {'observed': 2, 'registered': 1}
    one = ledger.node('h1', 'antnode1')
    assert one['state'] == 'dual_stack_testing' and one['health'] == 'unhealthy'
    assert one['health_data'] == {'failed_checks': ['connectivity']}
    assert ledger.node('h1', 'antnode2')['state'] == 'libp2p_only'


# -- progress ----------------------------------------------------------------------------------------


def test_progress_velocity_and_eta(ledger, clock):
    for i in range(10):
        ledger.record_transition('h1', f'antnode{i}', None, 'libp2p_only')
    clock.advance(7200)  # the registrations are out of the window
    for i in range(4):
        ledger.record_transition('h1', f'antnode{i}', None, 'iroh_primary')
    ledger.record_transition('h1', 'antnode9', None, 'dual_stack_testing')
    prog = ledger.progress(window_hours=1)
    # Both transports: 4 iroh_primary and 1 dual_stack (coverage and count agree).
    assert prog['total'] == 10 and prog['migrated'] == 4 and prog['dual_stack'] == 5
    assert prog['progress_percent'] == 40.0 and prog['phase'] == 'MajorityMigration'
    assert prog['dual_stack_coverage_percent'] == 50.0
    assert prog['by_state']['libp2p_only'] == 5
    # Moved in one instant: over the shortest span (60 s), not over the hour.
    assert prog['velocity_nodes_per_hour'] == 240.0
    assert prog['dual_stack_velocity_nodes_per_hour'] == 300.0   # 5 nodes came to run both transports
    assert prog['eta'] == datetime.datetime.fromtimestamp(clock.now + 6 / 240 * 3600, tz=datetime.UTC)
    clock.advance(120)   # nothing moved since: the rate decays with the time since the first move
    assert ledger.progress(window_hours=1)['velocity_nodes_per_hour'] == 120.0   # 4 nodes over 120 s
    clock.advance(3 * 3600)
    later = ledger.progress(window_hours=1)
    assert later['velocity_nodes_per_hour'] == 0.0 and later['eta'] is None


def test_progress_counts_rollbacks_against_velocity(ledger):
    ledger.record_transition('h1', 'antnode1', None, 'iroh_primary')
    ledger.record_transition('h1', 'antnode2', None, 'iroh_primary')
    ledger.record_transition('h1', 'antnode2', None, 'rolled_back')
    prog = ledger.progress()
    assert prog['rolled_back'] == 1 and prog['velocity_nodes_per_hour'] == 60.0   # (2 in - 1 out) over 60 s


def test_progress_of_empty_ledger(ledger):
    prog = ledger.progress()
    assert prog['total'] == 0 and prog['progress_percent'] == 0.0 and prog['eta'] is None
    assert prog['phase'] == 'Initialization'


# -- failures budget ----------------------------------------------------------------------------------


def test_failures_total_counts_distinct_nodes_until_an_explicit_reset(ledger, clock):
    ledger.record_failure('h1', 'antnode1', reason='not ready', run_id=1)
    ledger.record_failure('h1', 'antnode1', reason='again', run_id=2)
    ledger.record_failure('h2', reason='unreachable', run_id=2)
    assert ledger.failures_total() == 2
    assert ledger.failures(run_ids=[2]) == ['h1/antnode1', 'h2/*']
    assert ledger.failures_total(run_ids=[1]) == 1
    assert ledger.events(kinds='node_failed')[0]['data']['reason'] == 'unreachable'
    ledger.set_halt('budget', 'tracker', 'migration_tracker')
    clock.advance(1)
    ledger.resume('alice', ack=True)
    # Acknowledging a halt does not reset the budget: failures accumulate across waves.
    assert ledger.failures_total() == 2
    with pytest.raises(ledger_lib.LedgerError, match='needs a reason'):
        ledger.reset_budget('alice', '')
    assert ledger.reset_budget('alice', 'causes understood') == 2
    assert ledger.events(kinds='budget_reset')[0]['data']['operator'] == 'alice'
    assert ledger.failures_total() == 0
    clock.advance(1)
    ledger.record_failure('h3', 'antnode2')
    assert ledger.failures_total() == 1
    assert ledger.failures_total(since=0) == 3
    ledger.set_failure_budget(5)
    assert ledger.failure_budget()['used'] == 1 and ledger.failure_budget()['budget'] == 5


# -- pause, halt, resume --------------------------------------------------------------------------------


def test_pause_and_resume(ledger):
    paused = ledger.set_pause('looking at dashboards', 'alice')
    assert paused['reason'] == 'looking at dashboards' and paused['operator'] == 'alice' and paused['at']
    assert ledger.get_flags()['halted'] is None
    with pytest.raises(ledger_lib.LedgerPaused, match=r'the migration is paused \(looking at dashboards; by alice at '):
        ledger.assert_can_proceed()
    assert ledger.resume('bob', reason='all green') == {'cleared': ['paused']}
    assert ledger.get_flags() == {'paused': None, 'halted': None}
    kinds = [e['kind'] for e in ledger.events()]
    assert kinds[:2] == ['resume', 'pause']


def test_halt_needs_acknowledgement(ledger):
    ledger.set_pause('maintenance', 'alice')
    halted = ledger.set_halt('iroh error rate 7% > 5%', 'migration_tracker', 'gate')
    assert halted == {'reason': 'iroh error rate 7% > 5%', 'operator': 'migration_tracker',
                      'at': halted['at'], 'source': 'gate', 'cause': None}
    with pytest.raises(ledger_lib.HaltNeedsAcknowledgement, match='needs an explicit acknowledgement') as info:
        ledger.resume('bob')
    assert isinstance(info.value, ledger_lib.LedgerError)
    assert 'iroh error rate 7% > 5%' in str(info.value)
    # Nothing was cleared by the refused resume.
    assert ledger.get_flags()['paused'] and ledger.get_flags()['halted']
    with pytest.raises(ledger_lib.LedgerHalted):
        ledger.assert_can_proceed()
    assert ledger.resume('bob', ack=True, reason='bad dashboard query') == {'cleared': ['halted', 'paused']}
    assert ledger.get_flags() == {'paused': None, 'halted': None}
    ack = ledger.events(kinds='halt_ack')[0]['data']
    assert ack['operator'] == 'bob' and ack['halt_reason'] == 'iroh error rate 7% > 5%'


def test_second_halt_keeps_the_first_cause(ledger):
    ledger.set_halt('first cause', 'tracker', 'migration_tracker')
    ledger.set_halt('consequence', 'gate', 'gate')
    assert ledger.get_flags()['halted']['reason'] == 'first cause'
    events = ledger.events(kinds='halt')
    assert [e['data']['already_halted'] for e in events] == [True, False]


def test_resume_without_flags_is_a_no_op(ledger):
    assert ledger.resume('bob') == {'cleared': []}
    assert ledger.events(kinds='resume') == []


# -- the run lock ----------------------------------------------------------------------------------


def test_second_holder_is_refused_naming_the_first(ledger, open_ledger):
    lock = ledger.acquire_lock('alice@ctl-1 pid 100', 'rollout.yml', run_id=5)
    assert lock['holder'] == 'alice@ctl-1 pid 100' and lock['playbook'] == 'rollout.yml' and lock['run_id'] == 5
    other = open_ledger()
    with pytest.raises(ledger_lib.LedgerLocked) as info:
        other.acquire_lock('bob@ctl-2 pid 200', 'rollback.yml')
    message = str(info.value)
    assert 'alice@ctl-1 pid 100' in message and 'rollout.yml' in message and lock['started_at'] in message
    assert info.value.holder == 'alice@ctl-1 pid 100' and info.value.playbook == 'rollout.yml'
    with pytest.raises(ledger_lib.LedgerLocked):
        other.assert_can_proceed(holder='bob@ctl-2 pid 200')
    ledger.assert_can_proceed(holder='alice@ctl-1 pid 100')
    # Re-entrant for the holder; release by someone else does nothing.
    assert ledger.acquire_lock('alice@ctl-1 pid 100', 'rollout.yml')['started_at'] == lock['started_at']
    assert other.release_lock('bob@ctl-2 pid 200') is False
    assert ledger.release_lock('alice@ctl-1 pid 100') is True
    assert other.acquire_lock('bob@ctl-2 pid 200', 'rollback.yml')['holder'] == 'bob@ctl-2 pid 200'


def test_stale_lock_is_recovered_with_an_event(ledger, clock, monkeypatch):
    monkeypatch.setattr(socket, 'gethostname', lambda: 'ctl-1')
    ledger.acquire_lock('alice@ctl-1 pid 100', 'rollout.yml')
    monkeypatch.setattr(socket, 'gethostname', lambda: 'ctl-2')
    clock.advance(60)
    assert ledger.heartbeat('alice@ctl-1 pid 100') is True
    # A controller that beats (its migration_tracker thread, every HEARTBEAT_EVERY s) is alive for HEARTBEAT_DEAD s
    # after its last beat, whatever stale_after says.
    clock.advance(ledger_lib.HEARTBEAT_DEAD - 10)
    with pytest.raises(ledger_lib.LedgerLocked):
        ledger.acquire_lock('bob@ctl-2 pid 200', 'rollback.yml', stale_after=300)
    clock.advance(11)
    lock = ledger.acquire_lock('bob@ctl-2 pid 200', 'rollback.yml', stale_after=300)
    assert lock['holder'] == 'bob@ctl-2 pid 200'
    recovered = ledger.events(kinds='lock_recovered')[0]['data']
    assert recovered['previous_holder'] == 'alice@ctl-1 pid 100'
    assert 'its controller on ctl-1 stopped its heartbeat 91 s ago' in recovered['reason']
    assert ledger.heartbeat('alice@ctl-1 pid 100') is False


def test_a_lock_that_never_beat_is_stale_after_its_timeout(ledger, clock, monkeypatch):
    monkeypatch.setattr(socket, 'gethostname', lambda: 'ctl-1')
    ledger.acquire_lock('alice@ctl-1 pid 100', 'rollout.yml')
    monkeypatch.setattr(socket, 'gethostname', lambda: 'ctl-2')
    clock.advance(200)
    with pytest.raises(ledger_lib.LedgerLocked):
        ledger.acquire_lock('bob@ctl-2 pid 200', 'rollback.yml', stale_after=300)
    clock.advance(201)
    ledger.acquire_lock('bob@ctl-2 pid 200', 'rollback.yml', stale_after=300)
    assert 'no heartbeat for 401 s' in ledger.events(kinds='lock_recovered')[0]['data']['reason']


def test_lock_of_a_dead_process_on_this_host_is_recovered(ledger_location):
    # The writer must be its own controller: no run or controller pid inherited from other tests.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('ANT_MIGRATION_') or k == 'ANT_MIGRATION_LEDGER_INIT'}
    holder = subprocess.Popen([sys.executable, WRITER, 'lock', ledger_location, 'ghost@here pid x', '60'],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        with ledger_lib.open_ledger(ledger_location) as ledger:
            with pytest.raises(ledger_lib.LedgerLocked, match='ghost@here'):
                ledger.acquire_lock('me', 'rollout.yml')
            holder.kill()
            holder.wait()
            assert ledger.acquire_lock('me', 'rollout.yml')['holder'] == 'me'
            assert 'is gone' in ledger.events(kinds='lock_recovered')[0]['data']['reason']
    finally:
        holder.kill()
        holder.wait()


def test_force_unlock_is_logged(ledger):
    ledger.acquire_lock('alice@ctl-1 pid 100', 'rollout.yml')
    with pytest.raises(ledger_lib.LedgerError, match='needs a reason'):
        ledger.force_unlock('bob', '')
    previous = ledger.force_unlock('bob', 'ctl-1 was decommissioned mid-run')
    assert previous['holder'] == 'alice@ctl-1 pid 100'
    assert ledger.lock() is None
    data = ledger.events(kinds='lock_override')[0]['data']
    assert data['operator'] == 'bob' and data['previous_holder'] == 'alice@ctl-1 pid 100'


def test_controller_lock_heartbeat_and_release(ledger, monkeypatch):
    monkeypatch.setenv(ledger_lib.ENV_CONTROLLER_PID, '4242')
    ledger.acquire_lock('alice (run 3)', 'rollout.yml')
    assert ledger.lock()['pid'] == 4242
    assert ledger.heartbeat(pid=4242) is True
    assert ledger.release_controller_lock(pid=1) is None
    assert ledger.release_controller_lock(pid=4242)['holder'] == 'alice (run 3)'
    assert ledger.lock() is None


# -- canary ------------------------------------------------------------------------------------------


def test_canary_verdict(ledger):
    assert ledger.canary_verdict() is None
    ledger.set_canary_verdict('failed', run_id=2, reason='p95 worse', hosts=['h1'])
    ledger.set_canary_verdict('passed', run_id=3, reason='iroh faster', hosts=['h1', 'h2'], p_value=0.01)
    verdict = ledger.canary_verdict()
    assert verdict['verdict'] == 'passed' and verdict['run_id'] == 3 and verdict['reason'] == 'iroh faster'
    assert verdict['data'] == {'reason': 'iroh faster', 'hosts': ['h1', 'h2'], 'p_value': 0.01}
    assert [e['data']['verdict'] for e in ledger.events(kinds='canary_verdict')] == ['passed', 'failed']


# -- reconciliation --------------------------------------------------------------------------------


def test_reconcile_reports_and_fixes_drift(ledger):
    ledger.record_transition('h1', 'antnode1', 'pa', 'dual_stack_stable')
    ledger.record_transition('h1', 'antnode2', 'pb', 'dual_stack_testing')
    ledger.record_transition('h1', 'antnode4', 'pd', 'libp2p_only')
    ledger.record_transition('h2', 'antnode1', 'px', 'iroh_primary')
    observed = {'h1': [
        {'service_name': 'antnode1', 'peer_id': 'pa', 'mode': 'dual_stack', 'status': 'Running'},
        {'service_name': 'antnode2', 'peer_id': 'pb', 'mode': 'libp2p_only', 'status': 'Running'},  # by hand
        {'service_name': 'antnode3', 'peer_id': 'pc', 'mode': 'libp2p_only', 'status': 'Running'},  # new
    ]}
    report = ledger.reconcile(observed)
    kinds = {d['node_id']: d['kind'] for d in report['drift']}
    assert kinds == {'h1/antnode2': 'mode_mismatch', 'h1/antnode3': 'not_in_ledger', 'h1/antnode4': 'not_on_host'}
    assert report['checked'] == 3 and report['in_sync'] is False and report['fixed'] == 0
    assert ledger.node('h1', 'antnode2')['state'] == 'dual_stack_testing'  # report only
    fixed = ledger.reconcile(observed, fix=True, operator='alice')
    assert fixed['fixed'] == 2
    assert ledger.node('h1', 'antnode2')['state'] == 'rolled_back'
    assert ledger.node('h1', 'antnode3')['state'] == 'libp2p_only'
    assert ledger.node('h2', 'antnode1')['state'] == 'iroh_primary'  # host not observed: untouched
    assert 'host reports libp2p_only' in ledger.history('h1/antnode2')[0]['reason']
    assert ledger.events(kinds='reconcile')[0]['data']['operator'] == 'alice'
    after = ledger.reconcile(observed)
    assert [d['kind'] for d in after['drift']] == ['not_on_host']


def test_reconcile_accepts_transport_info_shapes(ledger):
    ledger.record_transition('h1', 'antnode1', 'pa', 'iroh_primary')
    per_host_results = [{'host': 'h1',
                         'nodes': [{'service_name': 'antnode1', 'peer_id': 'pz', 'mode': 'iroh_primary'}]}]
    report = ledger.reconcile(per_host_results, fix=True)
    assert [d['kind'] for d in report['drift']] == ['peer_id_changed']
    assert ledger.node('h1', 'antnode1')['peer_id'] == 'pz'
    flat = [{'host': 'h1', 'service_name': 'antnode1', 'peer_id': 'pz', 'mode': 'iroh_primary'}]
    assert ledger.reconcile(flat)['in_sync'] is True


# -- metrics export ----------------------------------------------------------------------------------


def test_write_textfile_is_valid_prometheus_text(ledger, tmp_path):
    for i in range(4):
        ledger.record_transition('h1', f'antnode{i}', None, 'libp2p_only')
    ledger.record_transition('h1', 'antnode0', None, 'iroh_primary')
    ledger.record_transition('h1', 'antnode1', None, 'dual_stack_testing')
    path = tmp_path / 'textfile' / 'autonomi_migration.prom'
    assert ledger.write_textfile(str(path)) == str(path)
    text = path.read_text()
    samples = dict(line.rsplit(' ', 1) for line in text.splitlines() if not line.startswith('#'))
    assert samples['autonomi_migration_nodes_total'] == '4'
    assert samples['autonomi_migration_nodes_migrated'] == '1'
    assert samples['autonomi_migration_nodes_dual_stack'] == '2'   # both transports: dual_stack, iroh_primary
    assert samples['autonomi_migration_nodes_rollback'] == '0'
    assert samples['autonomi_migration_progress_percent'] == '25.0'
    assert samples['autonomi_migration_velocity_nodes_per_hour'] == '60.0'   # 1 node over the shortest span (60 s)
    assert float(samples['autonomi_migration_estimated_completion_timestamp_seconds']) > 0
    assert samples['autonomi_migration_nodes{state="iroh_primary"}'] == '1'
    assert os.listdir(path.parent) == ['autonomi_migration.prom']  # no temp file left
    promtool = subprocess.run(['promtool', 'check', 'metrics'], input=text, capture_output=True, text=True,
                              check=False)
    # The lint objects to a gauge named *_total; the name is the dashboard's contract, so only that is allowed.
    problems = [line for line in (promtool.stdout + promtool.stderr).splitlines()
                if line.strip() and 'autonomi_migration_nodes_total non-counter' not in line]
    assert problems == [], problems


def test_textfile_without_eta_has_no_sample(ledger, tmp_path):
    text = ledger.metrics_text()
    assert '# TYPE autonomi_migration_estimated_completion_timestamp_seconds gauge' in text
    assert '\nautonomi_migration_estimated_completion_timestamp_seconds ' not in text


# -- concurrency and crashes -------------------------------------------------------------------------


def test_threads_share_one_handle(ledger):
    errors = []

    def work(n):
        try:
            for i in range(20):
                ledger.record_transition(f't{n}', f'antnode{i}', None, 'dual_stack_testing')
                ledger.progress()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ledger.nodes()) == 80


def test_concurrent_writer_processes(ledger, ledger_location):
    workers, count = 4, 40
    procs = [subprocess.Popen([sys.executable, WRITER, 'write', ledger_location, str(w), str(count)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(workers)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == 'done'
    assert len(ledger.history(limit=10000)) == workers * count
    assert len(ledger.events(kinds='alert_fired', limit=10000)) == workers * count
    assert len(ledger.nodes()) == workers * 10


@pytest.mark.parametrize('attempt', range(4))
def test_sigkill_mid_write_loses_nothing_committed(ledger_location, attempt):
    import random
    import signal
    import time

    hosts, nodes = 3, 8
    ledger_lib.open_ledger(ledger_location).close()  # schema in place before the clock starts
    proc = subprocess.Popen([sys.executable, WRITER, 'crash', ledger_location, str(hosts), str(nodes)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    committed = []
    try:
        deadline = time.monotonic() + random.uniform(0.3, 1.5) + attempt * 0.2
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            committed.append(line.split())
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # Read through the same buffered reader as readline() above (communicate() would skip what
        # it already buffered); the writer is dead, so both reads end.
        rest, err = proc.stdout.read(), proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    committed += [line.split() for line in rest.splitlines() if line.startswith('committed')]
    assert committed, 'the writer committed nothing before the kill: ' + err
    with ledger_lib.open_ledger(ledger_location) as ledger:
        states = {}
        for node in ledger.nodes():
            states.setdefault(node['host'], set()).add(node['state'])
        # No half-written host: every node of a host has the state of one committed round.
        for host, seen in states.items():
            assert len(seen) == 1, f'{host} is half written: {seen}'
        # Everything the writer reported as committed is there (it may have committed one more).
        last_round, last_host, last_state = committed[-1][1:]
        history_rounds = {int(h['reason'].split()[1]) for h in ledger.history(limit=100000)}
        assert set(range(int(last_round) + 1)) <= history_rounds
        assert max(history_rounds) <= int(last_round) + 1
        assert states[last_host] == {last_state}
        gate_rounds = {e['data']['round'] for e in ledger.events(kinds='gate_verdict', limit=100000)}
        assert set(range(int(last_round) + 1)) <= gate_rounds
        # And the ledger still takes writes.
        ledger.record_transition('after', 'antnode1', None, 'dual_stack_testing')


def test_lock_of_a_dead_controller_is_not_taken_over_while_its_workers_live(tmp_path):
    """Finding 3: a killed controller's worker (it carries the controller's pid in its environment)
    keeps the lock; once it is gone too, the lock is recovered."""

    path = str(tmp_path / 'l.sqlite3')
    dead_controller = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead_controller.wait()
    env = dict(os.environ, **{ledger_lib.ENV_CONTROLLER_PID: str(dead_controller.pid)})
    worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], env=env)
    try:
        with ledger_lib.open_ledger(path) as ledger:
            with ledger._db.transaction() as tx:
                tx.execute('UPDATE ledger_lock SET holder = ?, holder_host = ?, holder_pid = ?, playbook = ?, '
                           'started_at = ?, heartbeat_at = ? WHERE id = 1',
                           ('alice@here pid %d' % dead_controller.pid, socket.gethostname(), dead_controller.pid,
                            'rollout.yml', time.time(), time.time()))
            with pytest.raises(ledger_lib.LedgerLocked, match=r'is gone but 1 process\(es\) it started still run '
                                                              r'\(pids %d\)' % worker.pid):
                ledger.acquire_lock('bob@here pid 1', 'rollout.yml')
            worker.kill()
            worker.wait()
            assert ledger.acquire_lock('bob@here pid 1', 'rollout.yml')['holder'] == 'bob@here pid 1'
            assert ledger.events(kinds='lock_recovered')[0]['data']['reason'].endswith('is gone')
    finally:
        worker.kill()
        worker.wait()


_CONTROLLER = """
import multiprocessing, os, sys, time
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger
ledger.hold_controller_mark()                        # what the migration_tracker callback does at start
os.environ[ledger.ENV_CONTROLLER_PID] = str(os.getpid())


def work():                                          # an Ansible worker: forked, its own session, no exec
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 300)


worker = multiprocessing.get_context('fork').Process(target=work)
worker.start()
print(os.getpid(), worker.pid, flush=True)
os._exit(0)                                          # killed: the worker is not waited for
"""


def _dead_controller(script, *args):
    """Run ``script`` as a controller that forks and dies; its printed pids (the controller's first)."""
    collections = pathlib.Path(ledger_lib.__file__).parents[6]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(collections), os.environ.get('PYTHONPATH', '')]))
    env.pop(ledger_lib.ENV_CONTROLLER_PID, None)
    controller = subprocess.run([sys.executable, '-c', script, *args], env=env, capture_output=True, text=True,
                                timeout=60, check=True)
    return [int(pid) for pid in controller.stdout.split()]


def _lock_held_by(ledger, pid, playbook):
    with ledger._db.transaction() as tx:
        tx.execute('UPDATE ledger_lock SET holder = ?, holder_host = ?, holder_pid = ?, playbook = ?, '
                   'started_at = ?, heartbeat_at = ? WHERE id = 1',
                   ('alice@here', socket.gethostname(), pid, playbook, time.time(), time.time()))


def _kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_forked_worker_of_a_dead_controller_keeps_its_lock(tmp_path):
    """Ansible's workers are forked, not executed: their /proc environ does not name the controller
    (it exports the variable after it started). The flaky killed-canary scenario was refused by a module
    such a worker started after the lock check had found nothing. The mark they inherit names them."""
    dead, worker = _dead_controller(_CONTROLLER)
    try:
        with open(f'/proc/{worker}/environ', 'rb') as handle:
            assert ledger_lib.ENV_CONTROLLER_PID.encode() not in handle.read()   # what made it invisible
        # The controller is gone (subprocess.run reaped it); its worker lives on.
        assert controller_processes(dead) == [worker]
        with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as ledger:
            _lock_held_by(ledger, dead, 'canary.yml')
            held = ledger.live_lock()
            assert held['holder'] == 'alice@here' and held['gone_controller_processes'] == [worker]
            assert 'its controller process %d is gone but 1 process(es) it started still run (pids %d)' % (
                dead, worker) in guard.describe_lock(held)
            with pytest.raises(ledger_lib.LedgerLocked, match=r'still run \(pids %d\)' % worker):
                ledger.acquire_lock('bob@here pid 1', 'rollout.yml')
            os.kill(worker, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while controller_processes(dead) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ledger.live_lock() is None
            assert ledger.acquire_lock('bob@here pid 1', 'rollout.yml')['holder'] == 'bob@here pid 1'
    finally:
        _kill_all([worker])


def test_a_run_started_after_a_crash_waits_for_the_dead_runs_workers(tmp_path):
    """Refusing ("try again in a moment") made the operator's re-run of an emergency rollback fail
    right after a crash; it waits for the workers instead, saying what for, within a bound."""
    dead, worker = _dead_controller(_CONTROLLER, '3')
    said = []
    try:
        with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as ledger:
            assert ledger.wait_for_gone_controller(progress=said.append) == []    # no lock: nothing to wait for
            _lock_held_by(ledger, dead, 'rollback.yml')
            # A bound shorter than the worker's task: still there, and said so.
            assert ledger.wait_for_gone_controller(timeout=0.2, progress=said.append) == [worker]
            assert said == [f"the run lock's holder alice@here (playbook rollback.yml, run None) is gone but 1 "
                            f"process(es) it started still run (pids {worker}): waiting up to 0 s for them to end"]
            assert ledger.wait_for_gone_controller(timeout=60) == []    # the worker's task ends after 3 s
            assert ledger.acquire_lock('bob@here pid 1', 'rollback.yml')['holder'] == 'bob@here pid 1'
    finally:
        _kill_all([worker])


_CONTROLLER_OF_MANY = """
import multiprocessing, os, sys, time
from ansible.executor.task_queue_manager import FinalQueue
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger
ledger.hold_controller_mark()
results = FinalQueue()                               # the queue Ansible's workers hand their results to
done = sys.argv[1]


def work(n):
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if n == 0:                                       # still in its task when the controller dies
        time.sleep(3)
        open(done, 'w').close()                      # the task's last step ran
    results.put(b'r' * 40000)                        # a result: 40 KB, the pipe holds 64 KiB
    results.put(b'd' * 40000)


workers = [multiprocessing.get_context('fork').Process(target=work, args=(n,)) for n in range(4)]
for worker in workers:
    worker.start()
print(os.getpid(), *[w.pid for w in workers], flush=True)
time.sleep(0.5)
os._exit(0)                                          # killed, never reads the queue
"""


def test_orphan_workers_end_once_their_task_is_done_instead_of_blocking_for_ever(tmp_path):
    """A killed controller's workers hand their results to a pipe nobody reads: once it is full they
    would block for ever and, holding the mark, keep the lock for ever (a re-run of an emergency
    rollback refused until someone kills them). They end when blocked there; one still in its task
    finishes it first."""
    done = tmp_path / 'task-finished'
    dead, *workers = _dead_controller(_CONTROLLER_OF_MANY, str(done))
    try:
        deadline = time.monotonic() + 60
        while controller_processes(dead) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert controller_processes(dead) == []
        assert done.exists(), 'the worker still in its task was ended before it finished it'
    finally:
        _kill_all(workers)


# -- switched without a verdict (issue 11: a re-run gates every host switched without a verdict) ------------


@pytest.mark.parametrize('stage', ['dual_stack', 'iroh_primary', 'iroh_only'])
def test_a_forward_switch_at_any_stage_is_unjudged_until_a_gate_passes(ledger, clock, stage):
    before = {'dual_stack': 'libp2p_only', 'iroh_primary': 'dual_stack_stable', 'iroh_only': 'iroh_primary'}[stage]
    ledger.record_transition('h1', 'antnode1', None, before)
    ledger.mark_judged(['h1'], 'earlier stage judged')
    ledger.record_transition('h2', 'antnode1', None, before)
    ledger.mark_judged(['h2'], 'earlier stage judged')
    assert ledger.unjudged_nodes() == []
    clock.advance(5)
    ledger.record_transition('h1', 'antnode1', None, None, mode=stage)
    ledger.record_transition('h2', 'antnode1', None, None, mode=stage)
    unjudged = ledger.unjudged_nodes()
    assert [n['node_id'] for n in unjudged] == ['h1/antnode1', 'h2/antnode1']
    since = unjudged[0]['unjudged_since']
    # Recording the same mode again (a re-run, an observation) keeps the clock; it does not judge.
    clock.advance(5)
    ledger.record_transition('h1', 'antnode1', None, None, mode=stage)
    ledger.record_observation('h1', 'antnode1', mode=stage, healthy=True)
    assert ledger.unjudged_nodes(hosts=['h1'])[0]['unjudged_since'] == since
    # A gate passed h1: judged; dual_stack_testing becomes stable, a promote's state stays.
    assert ledger.mark_judged(['h1'], 'passed the gate', run_id=None) == ['h1/antnode1']
    assert [n['node_id'] for n in ledger.unjudged_nodes()] == ['h2/antnode1']
    expected = 'dual_stack_stable' if stage == 'dual_stack' else stage
    assert ledger.node_states()['h1/antnode1'] == expected
    judged = ledger.events(kinds='nodes_judged')[0]['data']
    assert judged['nodes'] == ['h1/antnode1'] and judged['reason'] == 'passed the gate'
    # Judging again changes nothing.
    assert ledger.mark_judged(['h1'], 'again') == []


def test_a_node_that_goes_back_is_no_longer_unjudged(ledger):
    ledger.record_transition('h1', 'antnode1', None, 'dual_stack_stable')
    ledger.record_transition('h1', 'antnode1', None, None, mode='iroh_primary')
    ledger.record_transition('h2', 'antnode1', None, None, mode='dual_stack')
    assert len(ledger.unjudged_nodes()) == 2
    ledger.record_transition('h1', 'antnode1', None, None, mode='dual_stack')   # back from iroh_primary
    ledger.record_transition('h2', 'antnode1', None, None, mode='libp2p_only')  # rolled back
    assert ledger.unjudged_nodes() == []
    assert ledger.node_states() == {'h1/antnode1': 'dual_stack_stable', 'h2/antnode1': 'rolled_back'}


def test_reconcile_records_an_unrecorded_promote_as_unjudged(ledger):
    """A worker that switched a node after its controller died: the hosts report iroh_primary."""
    ledger.record_transition('h1', 'antnode1', None, 'dual_stack_stable')
    ledger.reconcile({'h1': [{'service_name': 'antnode1', 'mode': 'iroh_primary'},
                             {'service_name': 'antnode2', 'mode': 'iroh_primary'}]}, fix=True)
    assert [n['node_id'] for n in ledger.unjudged_nodes()] == ['h1/antnode1', 'h1/antnode2']


def test_v3_ledger_keeps_its_testing_nodes_unjudged_after_the_upgrade(ledger_location, monkeypatch):
    monkeypatch.setattr(ledger_core, 'SCHEMA_VERSION', 3)
    old = ledger_lib.open_ledger(ledger_location)
    with old._db.transaction() as tx:  # pylint: disable=protected-access  # rows as a v3 collection wrote them
        for service, state in (('antnode1', 'dual_stack_testing'), ('antnode2', 'dual_stack_stable')):
            tx.execute('INSERT INTO ledger_nodes (node_id, host, service_name, state, mode, updated_at) '
                       'VALUES (?, ?, ?, ?, ?, ?)', ('h1/' + service, 'h1', service, state, 'dual_stack', 1.0e9))
    old.close()
    monkeypatch.setattr(ledger_core, 'SCHEMA_VERSION', _ledger_schema.SCHEMA_VERSION)
    new = ledger_lib.open_ledger(ledger_location)
    try:
        assert [n['node_id'] for n in new.unjudged_nodes()] == ['h1/antnode1']
    finally:
        new.close()


def test_lock_whose_pid_now_belongs_to_a_newer_process_is_recovered(ledger_location, request):
    # A killed controller's pid can be reused on a busy host (pid_max 32768): a process that started after
    # the lock was taken is not its holder, so the lock is recovered instead of refused until it goes stale.
    # A live process of its own (not this test process: an earlier test may have made this process a
    # "controller" whose forked children still run, and those would count as the lock holder's workers).
    holder = subprocess.Popen(['sleep', '120'])
    request.addfinalizer(holder.kill)
    with ledger_lib.open_ledger(ledger_location) as ledger:
        with ledger._db.transaction() as tx:
            tx.execute('UPDATE ledger_lock SET holder = ?, holder_host = ?, holder_pid = ?, playbook = ?, '
                       'run_id = ?, started_at = ?, heartbeat_at = ? WHERE id = 1',
                       ('ghost@here pid x', socket.gethostname(), holder.pid, 'canary.yml', None,
                        time.time() + 3600, time.time()))
        # the lock says it was taken in an hour: this (live) process started before it, so it is its holder
        with pytest.raises(ledger_lib.LedgerLocked, match='ghost@here'):
            ledger.acquire_lock('me', 'rollout.yml')
        with ledger._db.transaction() as tx:
            tx.execute('UPDATE ledger_lock SET started_at = ? WHERE id = 1', (time.time() - 3600 * 24 * 365,))
        # taken a year ago, long before this process started: the pid was reused
        assert ledger.live_lock() is None
        assert ledger.acquire_lock('me', 'rollout.yml')['holder'] == 'me'
        assert 'is gone' in ledger.events(kinds='lock_recovered')[0]['data']['reason']
