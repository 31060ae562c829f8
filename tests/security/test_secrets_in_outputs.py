"""Issue 22, case 1 (end to end): the secrets of a run are in no output, no file and no ledger row.

A real PostgreSQL server whose ledger role logs in with a password (scram-sha-256) that holds an ``@``, a blank,
``:``, ``/``, ``?`` and ``#``; the ledger given as a URI (percent-encoded) and as a libpq key/value DSN; Alertmanager
receivers with a Slack webhook, a PagerDuty routing key, a webhook whose path is its token and an SMTP password; a
Prometheus URL with a password and a bearer token. Playbooks run through the migration_tracker callback (its
summary and warnings), then every output, every file the run wrote (but the Alertmanager configuration, whose job
is to hold them, mode 0640) and every row of every ledger table are searched for each secret.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import (
    MigrationTracker,
    TrackerConfig,
)

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / 'ansible-playbook')
PASSWORD = 'p@ss w0rd:/?#x'
SECRETS = {
    'ledger password': PASSWORD,
    'ledger password, encoded': urllib.parse.quote(PASSWORD, safe=''),
    'password tail': 'ss w0rd',
    'slack webhook': 'T0SLACK1/B0SLACK2/sl4ckW3bhookT0ken',
    'webhook token path': 'eda-7f3c9a1b2d4e6f8091a2b3c4d5e6f7a8',
    'pagerduty routing key': 'pd-routing-0123456789',
    'smtp password': 'smtp-s3cret-pw',
    'prometheus password': 'prom-s3cret',
    'prometheus token': 'prom-bearer-t0ken',
}


@pytest.fixture(scope='module')
def server(postgres):
    """The module's PostgreSQL server, on which the role ``migration`` logs in over TCP with PASSWORD only."""
    import psycopg
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute('CREATE ROLE migration LOGIN PASSWORD %s' % _literal(PASSWORD))
        conn.execute('CREATE SCHEMA mig AUTHORIZATION migration')
        conn.execute('CREATE SCHEMA mig_kv AUTHORIZATION migration')
    hba = Path(postgres.data) / 'pg_hba.conf'
    hba.write_text('local all all trust\nhost all migration 127.0.0.1/32 scram-sha-256\n'
                   'host all all 127.0.0.1/32 trust\n' + hba.read_text())
    postgres._run('pg_ctl', '-D', postgres.data, 'reload')
    return postgres


def _literal(text):
    return "'" + text.replace("'", "''") + "'"


def uri(server, schema='mig', password=None):
    password = urllib.parse.quote(PASSWORD if password is None else password, safe='')
    return (f'postgresql://migration:{password}@127.0.0.1:{server.port}/postgres'
            f'?options=-csearch_path%3D{schema}&connect_timeout=5')


def key_value(server, schema='mig_kv'):
    return (f"host=127.0.0.1 port={server.port} dbname=postgres user=migration password='{PASSWORD}' "
            f"options='-csearch_path={schema}' connect_timeout=5")


def receivers(tmp_path):
    return {
        'monitoring_alertmanager_config_path': str(tmp_path / 'alertmanager' / 'alertmanager.yml'),
        'monitoring_rules_dir': str(tmp_path / 'rules'),
        'monitoring_reload': False, 'monitoring_verify_loaded': False,
        'migration_prometheus_url': 'http://prom:%s@127.0.0.1:9/' % SECRETS['prometheus password'],
        'monitoring_prometheus_token': SECRETS['prometheus token'],
        'monitoring_alertmanager_receivers': {
            'page': [{'type': 'pagerduty', 'routing_key': SECRETS['pagerduty routing key']},
                     {'type': 'webhook', 'url': 'https://eda.example:5050/hooks/%s' % SECRETS['webhook token path']}],
            'notify': [{'type': 'slack', 'api_url': 'https://hooks.slack.com/services/%s' % SECRETS['slack webhook'],
                        'channel': '#ant-fleet'},
                       {'type': 'email', 'to': 'ops@example.org', 'from': 'am@example.org',
                        'smarthost': 'smtp.example.org:587', 'auth_username': 'am',
                        'auth_password': SECRETS['smtp password']},
                       # A receiver of Alertmanager's own form: the secret is its url (redaction by key misses it).
                       {'type': 'webhook', 'url': 'https://hooks.slack.com/services/%s' % SECRETS['slack webhook']}],
            'log': []},
    }


def run(tmp_path, playbook, location, *args, verbose=False):
    inventory = tmp_path / 'inventory.ini'
    inventory.write_text('[fleet]\n')
    env = dict(os.environ, ANT_MIGRATION_LEDGER=location, ANSIBLE_NOCOLOR='1',
               ANT_MIGRATION_METRICS_TEXTFILE=str(tmp_path / 'metrics' / 'migration.prom'))
    argv = [PLAYBOOK, '-i', str(inventory), str(ROOT / 'playbooks' / playbook), *args] + (['-v'] if verbose else [])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=str(tmp_path), env=env)
    return proc.stdout + proc.stderr, proc.returncode


def leaks(text):
    return sorted(name for name, secret in SECRETS.items() if secret in text)


def ledger_rows(server, schema):
    import psycopg
    rows = []
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        tables = [r[0] for r in conn.execute('SELECT table_name FROM information_schema.tables WHERE table_schema = %s',
                                             (schema,)).fetchall()]
        assert 'ledger_runs' in tables and 'ledger_events' in tables
        for table in tables:
            rows += ['%s %r' % (table, row) for row in conn.execute(f'SELECT * FROM {schema}.{table}').fetchall()]
    return '\n'.join(rows)


@pytest.mark.parametrize('form', ['uri', 'key/value'])
def test_no_secret_in_any_output_file_or_ledger_row(server, tmp_path, form):
    schema = 'mig' if form == 'uri' else 'mig_kv'
    location = uri(server) if form == 'uri' else key_value(server)
    extra = tmp_path / 'receivers.json'
    extra.write_text(json.dumps(receivers(tmp_path)))
    (tmp_path / 'alertmanager').mkdir()
    outputs = []
    for playbook, args in [('status.yml', ['-e', 'migration_ledger_init=true']),
                           ('pause.yml', ['-e', json.dumps({'reason': 'rotating the ledger password'})]),
                           ('resume.yml', ['-e', 'ack=true']),
                           ('monitoring.yml', ['-e', '@%s' % extra]),
                           ('status.yml', ['-e', '@%s' % extra])]:
        output, rc = run(tmp_path, playbook, location, *args, verbose=playbook == 'monitoring.yml')
        assert rc == 0 or playbook == 'status.yml' and '@' in args[-1], output[-3000:]
        outputs.append(output)
    text = '\n'.join(outputs)
    assert 'ledger postgresql://migration:%s@127.0.0.1' % ledger_lib.REDACTED in text or \
        "password='%s'" % ledger_lib.REDACTED in text, text[-2000:]
    assert leaks(text) == [], leaks(text)
    # Every file the runs wrote but the Alertmanager configuration (which holds the receivers, 0640).
    config = tmp_path / 'alertmanager' / 'alertmanager.yml'
    assert SECRETS['pagerduty routing key'] in config.read_text() and stat.S_IMODE(config.stat().st_mode) == 0o640
    for path in tmp_path.rglob('*'):
        if path.is_file() and path not in (config, extra):
            assert leaks(path.read_text(errors='replace')) == [], path
    assert leaks(ledger_rows(server, schema)) == [], schema


def test_a_dsn_that_fails_leaks_nothing_either(server, tmp_path):
    """The error paths: an unencoded @ in the password (libpq cannot read it; the message shows the DSN), a wrong
    password (the server refuses), and the tracker's warnings when the ledger fails in the middle of a run."""
    broken = f'postgresql://migration:{PASSWORD}@127.0.0.1:{server.port}/postgres?connect_timeout=5'
    wrong = uri(server, password='wr@ng ' + SECRETS['ledger password, encoded'])
    for location in (broken, wrong):
        output, rc = run(tmp_path, 'status.yml', location)
        assert rc != 0 and 'PostgreSQL ledger postgresql://migration:%s@127.0.0.1' % ledger_lib.REDACTED in output, \
            output[-2000:]
        assert leaks(output) == [] and 'wr@ng' not in output, output[-2000:]
    # Warnings: a ledger that fails after the run started (server gone, statement refused).
    warnings = []
    tracker = MigrationTracker(TrackerConfig(ledger=uri(server)), warn=warnings.append, environ={})
    tracker.start_playbook('status.yml', kind='status')

    def failing(*args, **kwargs):   # the worst case: a message that quotes the ledger's location as it is
        raise ledger_lib.LedgerUnavailable('the PostgreSQL ledger %s failed: server closed the connection'
                                           % tracker.location)

    tracker.ledger.get_flags = tracker.ledger.progress = failing
    tracker.halt('test halt')
    tracker.ledger.set_halt = failing
    lines = tracker.end_playbook({})
    assert warnings and leaks('\n'.join(warnings + lines)) == [], warnings
