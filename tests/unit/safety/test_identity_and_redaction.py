"""The one identity (operator, run id, lock holder, AWX user) and the one redaction."""

from __future__ import annotations

import socket

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import identity, redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib


def test_awx_user_wins_over_everything():
    env = {identity.ENV_OPERATOR: 'env-user'}
    assert identity.operator({'awx_user_name': 'alice', 'operator': 'bob'}, explicit='carol', environ=env) == 'alice'
    assert identity.operator({'tower_user_name': 'tina'}, environ=env) == 'tina'


def test_then_explicit_then_the_operator_var_then_env_then_os_user(monkeypatch):
    env = {identity.ENV_OPERATOR: 'env-user'}
    assert identity.operator({'operator': 'bob'}, explicit='carol', environ=env) == 'carol'
    assert identity.operator({'operator': 'bob'}, environ=env) == 'bob'
    assert identity.operator({'operator': ''}, environ=env) == 'env-user'
    monkeypatch.setattr(identity, 'os_user', lambda: 'os-user')
    assert identity.operator({}, environ={}) == 'os-user'


def test_never_a_module_name_when_nothing_is_set(monkeypatch):
    monkeypatch.setattr(identity, 'os_user', lambda: 'os-user')
    assert identity.operator(environ={}) == 'os-user'


def test_awx_job_and_run_id():
    assert identity.awx_job_id({'awx_job_id': 42}) == '42'
    assert identity.awx_job_id({'tower_job_id': '7'}) == '7'
    assert identity.run_id({identity.ENV_RUN_ID: '12'}) == 12
    assert identity.run_id({identity.ENV_RUN_ID: 'x'}) is None and identity.run_id({}) is None


def test_lock_holder_is_the_exported_one_else_this_controller():
    env = {identity.ENV_CONTROLLER_PID: '4242'}
    assert identity.lock_holder('alice', environ=env) == f'alice@{socket.gethostname()} pid 4242'
    env[identity.ENV_LOCK_HOLDER] = 'bob@box pid 1'
    assert identity.lock_holder('alice', environ=env) == 'bob@box pid 1'


def test_the_ledger_reexports_the_same_functions():
    assert ledger_lib.redact is redaction.redact
    assert ledger_lib.default_holder is identity.default_holder
    assert ledger_lib.controller_pid is identity.controller_pid
    assert ledger_lib.ENV_RUN_ID == identity.ENV_RUN_ID


@pytest.mark.parametrize('text,secret', [
    ('postgresql://migrator:hunter2@db:5432/ledger', 'hunter2'),
    ('postgres://:hunter2@db/ledger', 'hunter2'),
    ("host=db user=m password=hunter2 dbname=l", 'hunter2'),
    ("host=db password='hunter 2' dbname=l", 'hunter 2'),
    ('cannot connect to postgresql://m:hunter2@db/l: refused', 'hunter2'),
    ('https://user:hunter2@prom.example:9090', 'hunter2'),
])
def test_redact_text_removes_passwords(text, secret):
    out = redaction.redact_text(text)
    assert secret not in out and redaction.REDACTED in out


def test_redact_keeps_what_is_not_secret():
    assert redaction.redact_text('/var/lib/ledger.sqlite3') == '/var/lib/ledger.sqlite3'
    assert redaction.redact_text('wave=25 on sim-host-01') == 'wave=25 on sim-host-01'


def test_redact_structures_and_known_secrets():
    data = {'db_password': 'p', 'nested': {'api_token': 't', 'url': 'https://u:p@h'}, 'list': ['postgresql://a:b@c/d'],
            'empty_password': '', 'wave': 25}
    out = redaction.redact(data)
    assert out['db_password'] == redaction.REDACTED and out['nested']['api_token'] == redaction.REDACTED
    assert out['nested']['url'] == 'https://u:%s@h' % redaction.REDACTED
    assert out['list'] == ['postgresql://a:%s@c/d' % redaction.REDACTED]
    assert out['empty_password'] == '' and out['wave'] == 25
    assert redaction.redact_text('token abc123 failed', secrets=['abc123']) == 'token %s failed' % redaction.REDACTED


def test_the_gate_returns_a_redacted_ledger_location():
    """The gate's result carries the ledger location through the one redaction, whatever the verdict."""
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import PrometheusUnavailable
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import gating

    class Ledger:
        location, enabled, note = 'postgresql://migration:S3cret-pw@db.example/ledger', True, None

        def __init__(self):
            self.written = []

        def refusal(self, stop_on_pause=True):
            return None

        def record(self, kind, **data):
            self.written.append(kind)

        def halt(self, reason, source, cause=None, **data):
            self.written.append('halt')

        def clock(self, offset, warn=False):
            self.written.append('clock')

    class Down:
        queries = 0

        class settings:  # noqa: N801
            url = 'http://prometheus.example:9090'

        def query(self, promql):
            raise PrometheusUnavailable('connection refused')

    request = gating.GateRequest.from_options(alert_rules.load_rules(), {'evaluations': 1})
    result = gating.judge(request, Down(), Ledger())
    assert result['verdict'] == 'unavailable' and result['failed'] and result['ledger']['written'] == ['gate_verdict',
                                                                                                       'halt']
    assert 'S3cret-pw' not in repr(result) and result['ledger']['location'].endswith('@db.example/ledger')
