"""Issue 22, case 7: a ledger location where no ledger exists is refused - by every playbook, every action and the
ledger library the CLI uses - unless the run initialises it explicitly (``-e migration_ledger_init=true``,
``ANT_MIGRATION_LEDGER_INIT=true``, the CLI's ``init``). ``pause`` with a mistyped path created a new, empty
ledger and said "paused" while the real one was not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import run_kinds
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.ledger import opened_ledger
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import (
    MigrationTracker,
    TrackerConfig,
)

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / 'ansible-playbook')
INVENTORY = '[fleet]\nsim-host-01 ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable
# Every playbook but those that neither read nor change the migration's state (run_kinds.LEDGER_OPTIONAL_KINDS).
EXTRA = {'pause.yml': ['-e', 'reason=maintenance'], 'promote.yml': ['-e', 'wave=10'], 'rollout.yml': ['-e', 'wave=10'],
         'resume.yml': ['-e', 'ack=true']}
REFUSING = sorted(set(p.name for p in (ROOT / 'playbooks').glob('*.yml')) - {'monitoring.yml', 'conformance.yml'})


def play(playbook, tmp_path, env, *args):
    inventory = tmp_path / 'inventory.ini'
    inventory.write_text(INVENTORY)
    return subprocess.run([PLAYBOOK, '-i', str(inventory), str(ROOT / 'playbooks' / playbook), *EXTRA.get(playbook, []),
                           *args], capture_output=True, text=True, timeout=300, cwd=str(ROOT), env=env)


@pytest.fixture
def real_ledger(tmp_path):
    """The operator's real ledger, paused by nobody; the mistyped path is its neighbour."""
    real = tmp_path / 'state' / 'ledger.sqlite3'
    ledger_lib.open_ledger(str(real), create=True).close()
    return real


@pytest.mark.parametrize('playbook', REFUSING)
def test_every_playbook_refuses_a_ledger_that_does_not_exist(playbook, tmp_path, no_init, real_ledger):
    mistyped = real_ledger.parent / 'ledgr.sqlite3'
    env = dict(no_init, ANT_MIGRATION_LEDGER=str(mistyped), ANSIBLE_NOCOLOR='1')
    proc = play(playbook, tmp_path, env)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert f'no migration ledger at {mistyped}' in output, output[-3000:]
    assert 'migration_ledger_init=true' in output and 'init' in output
    assert not mistyped.exists() and sorted(p.name for p in real_ledger.parent.iterdir()) == ['ledger.sqlite3']
    assert 'PAUSED' not in output and 'MIGRATION SUMMARY' not in output


def test_pause_pauses_the_ledger_named_and_no_other(tmp_path, no_init, real_ledger):
    """The case of the issue: a pause with a typo changes nothing; with the right path it pauses that ledger."""
    mistyped = real_ledger.parent / 'ledgr.sqlite3'
    assert play('pause.yml', tmp_path, dict(no_init, ANT_MIGRATION_LEDGER=str(mistyped))).returncode != 0
    with ledger_lib.open_ledger(str(real_ledger)) as book:
        assert book.get_flags()['paused'] is None
    proc = play('pause.yml', tmp_path, dict(no_init, ANT_MIGRATION_LEDGER=str(real_ledger)))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    with ledger_lib.open_ledger(str(real_ledger)) as book:
        assert book.get_flags()['paused']['reason'] == 'maintenance'


@pytest.mark.parametrize('how', ['extra var', 'environment'])
def test_an_explicit_initialisation_creates_it(tmp_path, no_init, how):
    new = tmp_path / 'new' / 'ledger.sqlite3'
    env = dict(no_init, ANT_MIGRATION_LEDGER=str(new))
    args = ['-e', 'migration_ledger_init=true'] if how == 'extra var' else []
    if how == 'environment':
        env['ANT_MIGRATION_LEDGER_INIT'] = 'true'
    proc = play('status.yml', tmp_path, env, *args)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    with ledger_lib.open_ledger(str(new)) as book:
        assert [Path(run['playbook']).name for run in book.runs()] == ['status.yml']


def test_a_bad_initialisation_value_is_refused(tmp_path, no_init):
    new = tmp_path / 'ledger.sqlite3'
    proc = play('status.yml', tmp_path, dict(no_init, ANT_MIGRATION_LEDGER=str(new)),
                '-e', 'migration_ledger_init=maybe')
    assert proc.returncode != 0 and 'migration_ledger_init' in proc.stdout + proc.stderr
    assert not new.exists()


def test_the_library_refuses_unless_asked_to_create(tmp_path, no_init):
    """The one function every front-end uses (the callback, the actions, the EDA source, the CLI, the dashboard)."""
    missing = tmp_path / 'x' / 'ledger.sqlite3'
    with pytest.raises(ledger_lib.LedgerNotFound, match='no migration ledger at'):
        ledger_lib.open_ledger(str(missing))
    with pytest.raises(ledger_lib.LedgerUnavailable, match='no migration ledger at'):
        with opened_ledger(str(missing)):   # what every action plugin opens
            pass
    assert not missing.parent.exists()
    empty = tmp_path / 'empty.sqlite3'
    empty.touch()
    with pytest.raises(ledger_lib.LedgerNotFound):
        ledger_lib.open_ledger(str(empty))
    ledger_lib.open_ledger(str(missing), create=True).close()
    ledger_lib.open_ledger(str(missing)).close()


def test_the_tracker_refuses_every_kind_that_needs_a_ledger(tmp_path, no_init):
    for kind in run_kinds.KINDS:
        location = tmp_path / ('%s.sqlite3' % kind)
        warnings = []
        tracker = MigrationTracker(TrackerConfig(ledger=str(location)), warn=warnings.append, environ={})
        if run_kinds.needs_ledger(kind):
            with pytest.raises(ledger_lib.LedgerNotFound):
                tracker.start_playbook('x.yml', kind=kind)
        else:
            assert tracker.start_playbook('x.yml', kind=kind) is None
            assert tracker.end_playbook({}) == [] and 'is not recorded' in warnings[0]
        assert not location.exists()
    assert not run_kinds.needs_ledger('monitoring') and run_kinds.needs_ledger('pause')


def test_a_postgresql_database_without_the_ledger_is_refused(no_init, postgres):
    """A DSN names a server that exists; a mistyped schema (search_path) or database holds no ledger tables."""
    dsn = postgres.new_schema()
    with pytest.raises(ledger_lib.LedgerNotFound) as info:
        ledger_lib.open_ledger(dsn)
    assert 'no migration ledger at postgresql://' in str(info.value)
    import psycopg
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
                            ).fetchone()[0] == 0
    ledger_lib.open_ledger(dsn, create=True).close()
    ledger_lib.open_ledger(dsn).close()

