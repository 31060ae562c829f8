"""Issue 22, case 1 (the rules): the one redaction hides every secret form the issue names, and keeps the rest."""

from __future__ import annotations

import json

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction

R = redaction.REDACTED


@pytest.mark.parametrize('text,secrets', [
    # An unencoded @ in a URI's password: the tail must not leak either.
    ('ledger postgresql://migration:p@ss@db.internal:5432/migration, run 3, outcome ok', ['p@ss', 'ss@db']),
    ('postgres://u:a@b@c@host/db', ['a@b@c', 'b@c']),
    ('postgresql://u:sl/ash?q#x@host/db?sslmode=require', ['sl/ash', 'ash?q']),
    ('postgresql://:only-a-password@host/db', ['only-a-password']),
    # libpq key/value DSNs, quoted values with escapes, sslpassword.
    ("host=db port=5432 user=m password='se cr\\'et x' dbname=m", ['se cr', "et x"]),
    ('host=db sslpassword=k3y-pass password=pw dbname=x', ['k3y-pass', '=pw']),
    ('PGPASSWORD=hunter2 ansible-playbook ...', ['hunter2']),
    # Query parameters.
    ('postgresql://u@h/db?password=q1&sslpassword=q2&sslmode=require&access_token=q3', ['q1', 'q2', 'q3']),
    ('https://maps.example/api?key=AIzaKEY&q=x', ['AIzaKEY']),
    # Addresses whose path is the secret (webhooks).
    ('https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXX', ['T0001', 'B0002', 'XXXX']),
    ('https://discord.com/api/webhooks/123456/tok-EN_value', ['123456', 'tok-EN']),
    ('https://acme.webhook.office.com/webhookb2/abc@def/IncomingWebhook/xyz', ['abc@def', 'xyz']),
    ('https://alerts.example/notify/8f2a9c1e7b3d4a5f6e7d8c9b0a1f2e3d', ['8f2a9c1e7b3d4a5f6e7d8c9b0a1f2e3d']),
    # name: value and JSON / Python text.
    ('Authorization: Bearer abc.def.ghi', ['abc.def.ghi']),
    ('{"password": "pw-json", "routing_key": "rk-json"}', ['pw-json', 'rk-json']),
    ("{'api_token': 'tok-py'}", ['tok-py']),
])
def test_every_secret_form_is_hidden(text, secrets):
    out = redaction.redact_text(text)
    assert R in out
    for secret in secrets:
        assert secret not in out, out


@pytest.mark.parametrize('text', [
    '/var/lib/autonomi/ledger.sqlite3', 'wave=25 on sim-host-01', 'http://127.0.0.1:9090',
    'http://prometheus:9090/api/v1/query?query=up', 'http://127.0.0.1:9090/api?x=a@b',
    'postgresql://migration@db:5432/migration?sslmode=verify-full&options=-csearch_path%3Dmigration',
    'http://[::1]:5432/db', 'http://127.0.0.1:5001/alerts', 'migration_tracker: could not record',
    'slice_key=7 run 3', 'batch 1 of play \'Switch\': 1 of 2 host(s) failed'])
def test_what_is_not_secret_is_kept(text):
    assert redaction.redact_text(text) == text


def test_structures_by_key_and_by_text():
    data = {'url': 'https://hooks.slack.com/services/T/B/SECRETPATH', 'routing_key': 'rk', 'auth_password': 'ap',
            'basic_auth': {'username': 'u', 'password': 'bp'}, 'passed': True, 'author': 'me', 'slice_key': 3,
            'receivers': [{'type': 'webhook', 'url': 'https://u:wp@eda.example:5050/alerts'}],
            'http_config': {'authorization': {'credentials': 'cr'}, 'bearer_token': 'bt'}}
    out = redaction.redact(data)
    text = json.dumps(out)
    for secret in ('SECRETPATH', 'rk', '"ap"', 'bp', 'wp@', '"cr"', '"bt"'):
        assert secret not in text, text
    assert out['passed'] is True and out['author'] == 'me' and out['slice_key'] == 3
    assert out['basic_auth']['username'] == 'u'


def test_a_location_is_one_address_even_with_blanks_in_its_password():
    """In free text an address ends at the first blank; a ledger location is known whole: nothing of its password
    shows, in the location and in any message that quotes it."""
    location = 'postgresql://migration:p@ss w0rd:/?#x@db.internal:5432/migration'
    shown = redaction.redact_location(location)
    assert shown == 'postgresql://migration:%s@db.internal:5432/migration' % R
    message = 'cannot connect to %s: server closed the connection' % location
    out = redaction.redact_text(message, secrets=redaction.location_secrets(location))
    assert 'ss w0rd' not in out and 'db.internal' in out


def test_redaction_is_idempotent():
    text = 'postgresql://u:p@ss@h/db host=x password=y https://hooks.slack.com/services/a/b/c'
    once = redaction.redact_text(text)
    assert redaction.redact_text(once) == once


def test_a_key_value_dsn_is_postgresql_never_a_sqlite_file(tmp_path, monkeypatch):
    """Case 1: ``host=... password=...`` was a SQLite path: a file of that name was created in the working
    directory and its name (the password) printed."""
    monkeypatch.chdir(tmp_path)
    dsn = 'host=127.0.0.1 port=1 dbname=nope user=nobody password=kv-s3cret connect_timeout=2'
    assert ledger_lib.is_dsn(dsn) and ledger_lib.is_dsn('  sslmode=require host=x')
    assert ledger_lib.resolve_ledger_location(dsn) == dsn
    with pytest.raises(ledger_lib.LedgerError) as info:
        ledger_lib.open_ledger(dsn, create=True)
    assert 'kv-s3cret' not in str(info.value) and 'PostgreSQL' in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_dollar_in_a_dsn_password_is_not_an_environment_variable(monkeypatch):
    monkeypatch.setenv('word', 'EXPANDED')
    assert ledger_lib.resolve_ledger_location('postgresql://u:pa$word@h/db') == 'postgresql://u:pa$word@h/db'
