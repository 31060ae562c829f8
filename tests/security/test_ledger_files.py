"""Issue 22, case 6: the SQLite ledger is its owner's only, from the moment it exists, and no row stores a secret;
and the SQLite backend says "no space left on device" when the disk is full (not "disk I/O error")."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_ledger_is_0600_in_0700_directories_whatever_the_umask(tmp_path):
    """Created with those modes (not chmod-ed afterwards): under umask 0 the old code made 0644 / 0755 ones
    (0666 / 0777 here), readable by every user of the machine in the moment before any chmod."""
    location = tmp_path / 'a' / 'b' / 'ledger.sqlite3'
    code = ('import os, sys; os.umask(0); sys.path.insert(0, %r); '
            'from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger; '
            'book = ledger.open_ledger(%r, create=True); book.record_event("pause", reason="x"); '
            'import time; print("open", flush=True); time.sleep(30)') % (os.path.join(ROOT, 'collections'),
                                                                          str(location))
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'open'
        # While it is open: the database, its WAL and the WAL index (SQLite gives them the database's mode).
        for name in ('ledger.sqlite3', 'ledger.sqlite3-wal', 'ledger.sqlite3-shm'):
            assert mode(location.parent / name) == 0o600, name
        assert mode(location.parent) == 0o700 and mode(location.parent.parent) == 0o700
    finally:
        proc.kill()
        proc.wait()


def test_an_existing_directory_keeps_its_mode(tmp_path):
    os.chmod(tmp_path, 0o755)
    ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3'), create=True).close()
    assert mode(tmp_path) == 0o755 and mode(tmp_path / 'ledger.sqlite3') == 0o600


def test_ledger_rows_store_no_secret(tmp_path):
    """Extra vars, events and summaries go through the one redaction; key names are not enough (``url``)."""
    secrets = {'slack': 'T0SLACK/B0SLACK/sl4ckT0ken', 'dsn_pw': 'dsn-p@ss', 'token': 'tok3n-value',
               'routing': 'rk-123', 'smtp': 'smtp-pw'}
    extra_vars = {
        'migration_ledger': f"postgresql://migration:{secrets['dsn_pw']}@db/migration",
        'dashboard_token': secrets['token'],
        'monitoring_alertmanager_receivers': {
            'page': [{'type': 'pagerduty', 'routing_key': secrets['routing']},
                     {'type': 'webhook', 'url': f"https://hooks.slack.com/services/{secrets['slack']}"}],
            'notify': [{'type': 'email', 'auth_password': secrets['smtp']}]},
        'reason': 'rotate password=' + secrets['smtp'],
    }
    with ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3'), create=True) as book:
        run = book.start_run('rollout.yml', 'alice', extra_vars)
        book.record_event('alert_fired', run_id=run, receiver={'url': f"https://hooks.slack.com/services/{secrets['slack']}"},
                          note=f"ledger postgresql://migration:{secrets['dsn_pw']}@db/migration")
        book.end_run(run, 'ok', {'hosts': {}, 'detail': f"token={secrets['token']}"})
    dump = subprocess.run(['sqlite3', str(tmp_path / 'ledger.sqlite3'), '.dump'], capture_output=True, text=True,
                          check=True).stdout if _has_sqlite3() else _dump(tmp_path / 'ledger.sqlite3')
    for name, secret in secrets.items():
        assert secret not in dump, name
    assert 'hooks.slack.com/services/' + ledger_lib.REDACTED in dump


def _has_sqlite3():
    return any(os.access(os.path.join(d, 'sqlite3'), os.X_OK) for d in os.environ.get('PATH', '').split(os.pathsep))


def _dump(path):
    import sqlite3
    with sqlite3.connect(str(path)) as conn:
        return '\n'.join(conn.iterdump())


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs under the test's directory (the tests run as root)."""
    if os.geteuid() != 0:
        if os.environ.get('CI'):
            pytest.fail('mounting a tmpfs needs root; CI runs as root')
        pytest.skip('mounting a tmpfs needs root')
    mount = tmp_path / 'small'
    mount.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(['umount', '-l', str(mount)], check=False)


def _fill(directory):
    try:
        with open(directory / 'filler', 'wb') as handle:
            while True:
                handle.write(b'\0' * 4096)
                handle.flush()
    except OSError:
        pass


@pytest.mark.parametrize('when', ['write', 'open', 'create'])
def test_a_full_disk_says_no_space_left_on_device(small_disk, when):
    location = small_disk / 'ledger' / 'ledger.sqlite3'
    if when != 'create':
        ledger_lib.open_ledger(str(location), create=True).close()
    book = ledger_lib.open_ledger(str(location)) if when == 'write' else None
    try:
        _fill(small_disk)
        with pytest.raises(ledger_lib.LedgerUnavailable) as info:
            if when == 'write':
                for _ in range(200):
                    book.record_event('pause', reason='x' * 4000)
            else:
                ledger_lib.open_ledger(str(location if when == 'open' else small_disk / 'new' / 'l.sqlite3'),
                                       create=True).record_event('pause', reason='x' * 4000)
        message = str(info.value)
        assert message.startswith('no space left on device on %s' % (
            location if when != 'create' else small_disk / 'new' / 'l.sqlite3')), message
        assert 'disk I/O error' not in message.split('(SQLite: ')[0]
    finally:
        if book is not None:
            book.close()
    # Room again: the ledger works and holds what was committed before.
    (small_disk / 'filler').unlink()
    if when != 'create':
        with ledger_lib.open_ledger(str(location)) as again:
            again.record_event('resume', reason='space is back')
            assert json.dumps(again.events(kinds='resume', limit=1))
