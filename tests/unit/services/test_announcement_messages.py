# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The communication plan: what each announced event says (what happened, what comes next), its redaction,
each event sent once, a failure that never fails the run, the tracker's opt-in, and the routing to `announce`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules import rendering
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alertmanager import AlertmanagerUnavailable
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import (
    MigrationTracker,
    TrackerConfig,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import announcements

FQ = 'autonomi.network_migration.'
WAVE = {'run_id': 7, 'kind': 'rollout', 'wave': '25'}


def event(event_kind, event_id=1, run_id=7, **data):
    return {'id': event_id, 'kind': event_kind, 'at': '2026-12-07T12:00:00+00:00', 'run_id': run_id, 'data': data}


# Each event kind announced: (event, context, announcement kind, in what happened, in what comes next).
CASES = [
    (event('run_started', playbook='/x/playbooks/canary.yml', operator='alice', kind='canary'),
     dict(WAVE, kind='canary', wave='canary'), 'canary_started', 'canary run (run 7) started by alice (canary.yml)',
     'canary verdict is announced next'),
    (event('run_started', playbook='rollout.yml', operator='alice', kind='rollout'), WAVE, 'wave_started',
     'rollout wave to 25 % (run 7) started by alice', "'wave passed' or a halt is announced next"),
    (event('run_started', playbook='rollback.yml', operator='bob', kind='rollback'), dict(WAVE, kind='rollback'),
     'rollback_started', 'rollback run (run 7) started by bob', "rollback's outcome is announced next"),
    (event('run_ended', outcome='ok'), WAVE, 'wave_passed', 'rollout wave to 25 % (run 7) passed',
     'until an operator starts the next wave'),
    (event('run_ended', outcome='ok'), dict(WAVE, kind='canary', wave='canary'), 'completion',
     'canary run (run 7) completed', 'canary verdict decides whether the first wave may start'),
    (event('run_ended', outcome='ok'), dict(WAVE, kind='rollback'), 'completion', 'rollback run (run 7) completed',
     'find the cause before the migration goes on'),
    (event('run_ended', outcome='halted'), WAVE, 'run_halted', 'rollout wave to 25 % (run 7) ended HALTED',
     'resume --ack'),
    (event('run_ended', outcome='failed'), WAVE, 'run_ended', 'ended with outcome failed',
     "'ant-network-migration status'"),
    (event('halt', reason='gate failed: high_error_rate_iroh 0.07 > 0.05', source='gate', operator='t'), WAVE, 'halt',
     'migration HALTED by gate in rollout wave to 25 % (run 7): gate failed: high_error_rate_iroh 0.07 > 0.05',
     'no batch or wave starts'),
    (event('pause', reason='maintenance window', operator='carol', run_id=9), dict(WAVE, kind='pause'), 'pause',
     'migration paused by carol: maintenance window', "no wave starts until 'ant-network-migration resume'"),
    (event('resume', operator='carol', cleared=['pause'], ack=False), dict(WAVE, kind='resume'), 'resume',
     'migration resumed by carol (cleared: pause)', 'the next one starts when an operator runs it'),
    (event('rollback', strategy='fast', trigger='halt', outcome='succeeded', seconds=12.5, reason='gate failed',
           rolled_back_hosts=['h1', 'h2'], failed_hosts=[]), dict(WAVE, kind='rollback'), 'rollback',
     'rollback (fast, trigger halt) succeeded: 2 host(s) rolled back in 12.5 s: gate failed',
     'the migration goes on only after a new canary passes'),
    (event('rollback', strategy='fast', trigger='operator', outcome='incomplete', rolled_back_hosts=['h1'],
           failed_hosts=['h2']), dict(WAVE, kind='rollback'), 'rollback', 'FAILED on 1 host(s): h2',
     'some nodes are not back'),
    (event('rollback', strategy='freeze', trigger='halt', hosts=['h3'], reason='gate could not judge'), WAVE,
     'rollback', 'halt contained by freezing the batch (1 host(s): h3 left where they are)', 'an operator decides'),
    (event('rollback', strategy='fast', trigger='halt', hosts=['h3'], reason='gate failed'), WAVE, 'rollback',
     'halt contained by rolling the batch back (fast: 1 host(s): h3): gate failed', 'the migration stays halted'),
    (event('gate_verdict', verdict='pass', scope=['h1', 'h2']), WAVE, 'batch_passed',
     'gate passed in rollout wave to 25 % (run 7) for 2 host(s): h1, h2', 'the next batch switches'),
    (event('gate_verdict', verdict='pass', scope=['h1']), dict(WAVE, kind='canary', wave='canary'), 'gate_passed',
     'gate passed in canary run (run 7) for 1 host(s): h1', 'its verdict is announced next'),
    (event('gate_verdict', verdict='fail', scope='fleet', reason='iroh errors'), WAVE, 'gate_fail',
     'gate fail in rollout wave to 25 % (run 7) for fleet: iroh errors', 'halts or pauses as the gate policy says'),
    (event('canary_verdict', verdict='passed', hosts=['h1'], reason='every rule passed'),
     dict(WAVE, kind='canary', wave='canary'), 'canary_verdict', 'canary verdict passed on 1 host(s): h1',
     'the first wave may start'),
    (event('canary_verdict', verdict='failed', hosts=['h1']), dict(WAVE, kind='canary', wave='canary'),
     'canary_verdict', 'canary verdict failed', 'no wave may start'),
]


@pytest.mark.parametrize('case', CASES, ids=[f"{c[0]['kind']}-{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_each_event_says_what_happened_and_what_comes_next(case):
    source, context, kind, what, nxt = case
    item = announcements.announcement(source, context)
    assert item['kind'] == kind
    assert what in item['summary'], item['summary']
    assert nxt in item['next'], item['next']
    assert item['event_id'] == source['id'] and item['run_id'] == source['run_id']
    labels, annotations = announcements.alert(item)
    assert labels == {'alertname': 'MigrationAnnouncement', 'severity': 'info', 'announcement': kind,
                      'run_id': str(source['run_id']), 'event_id': str(source['id'])}
    assert annotations['summary'] == item['summary'] and annotations['next'] == item['next']


def test_every_announced_kind_has_a_case():
    assert {c[0]['kind'] for c in CASES} == set(announcements.EVENT_KINDS)


@pytest.mark.parametrize('source, context', [
    (event('run_started', playbook='status.yml', operator='a', kind='status'), dict(WAVE, kind='status')),
    (event('run_ended', outcome='ok'), dict(WAVE, kind='pause')),
    (event('halt', reason='second cause', source='gate', already_halted=True), WAVE),
    (event('lock_acquired', holder='x'), WAVE),
    (event('node_failed', host='h1'), WAVE),
])
def test_what_is_not_news_is_not_announced(source, context):
    assert announcements.announcement(source, context) is None


def test_no_secret_in_an_announcement():
    reason = ('gate could not judge: Prometheus at http://admin:Pr0m-s3cret@prom.example:9090 is unreachable; '
              'ledger postgresql://migr:Ledg3r-pw@db/ledger, token=tok-123456 password: hunter2xx')
    source = event('halt', reason=reason, source='gate', operator='ops')
    item = announcements.announcement(source, WAVE, secrets=['L3dger-known'])
    labels, annotations = announcements.alert(item)
    text = json.dumps([labels, annotations])
    for secret in ('Pr0m-s3cret', 'Ledg3r-pw', 'tok-123456', 'hunter2xx'):
        assert secret not in text
    assert 'prom.example:9090' in text and '********' in text   # what happened stays readable
    known = announcements.announcement(event('pause', reason='creds L3dger-known here', operator='o'), WAVE,
                                       secrets=['L3dger-known'])
    assert 'L3dger-known' not in known['summary']


class FakeAlertmanager:
    def __init__(self, fail=False):
        self.fail = fail
        self.posted = []

    def post_alert(self, labels, annotations, ends_in=300.0):
        self.posted.append((labels, annotations, ends_in))
        if self.fail:
            raise AlertmanagerUnavailable('Alertmanager at http://u:pw-in-url@am:9093 is unreachable (refused)')


def test_each_event_is_sent_once_oldest_first():
    client = FakeAlertmanager()
    announcer = announcements.Announcer('http://am:9093', client=client)
    events = [event('gate_verdict', 3, verdict='pass', scope=['h1']),
              event('run_started', 1, playbook='rollout.yml', operator='a', kind='rollout'),
              event('lock_acquired', 2, holder='x')]
    announcer.announce(events, WAVE)
    announcer.announce(events + [event('run_ended', 4, outcome='ok')], WAVE)
    assert [p[0]['event_id'] for p in client.posted] == ['1', '3', '4']
    assert [p[0]['announcement'] for p in client.posted] == ['wave_started', 'batch_passed', 'wave_passed']
    assert all(0 < p[2] <= 600 for p in client.posted)   # ends shortly after: each is news once


def test_a_failure_warns_once_is_recorded_and_nothing_more_is_tried():
    client, warnings, recorded = FakeAlertmanager(fail=True), [], []
    announcer = announcements.Announcer('http://am:9093', client=client, warn=warnings.append,
                                        record=lambda error, kinds: recorded.append((error, kinds)))
    announcer.announce([event('run_started', 1, playbook='rollout.yml', operator='a', kind='rollout'),
                        event('halt', 2, reason='r', source='gate')], WAVE)
    announcer.announce([event('run_ended', 3, outcome='halted')], WAVE)
    assert len(client.posted) == 1 and len(warnings) == 1 and len(recorded) == 1
    assert recorded[0][1] == ['wave_started'] and 'pw-in-url' not in recorded[0][0] + warnings[0]
    assert 'the run goes on' in warnings[0]


# -- the tracker: opt-in, at the moments it handles, a real ledger, a real HTTP endpoint -------------------------

class _Capture:
    """A stand-in Alertmanager: records every POST /api/v2/alerts body."""

    def __init__(self):
        self.alerts = []
        self.requests = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
                capture.alerts.extend(json.loads(body))
                capture.requests.append((self.path, self.headers.get('Authorization')))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def capture():
    server = _Capture()
    yield server
    server.close()


def run_wave(tmp_path, warnings, **options):
    location = str(tmp_path / 'ledger.sqlite3')
    tracker = MigrationTracker(TrackerConfig(ledger=location, **options), warn=warnings.append, environ={})
    tracker.start_playbook('playbooks/rollout.yml', {'wave': 25, 'operator': 'alice'}, kind='rollout')
    tracker.start_batch('wave', ['h1'])
    tracker.result('h1', FQ + 'migration_gate', {'verdict': 'pass', 'msg': 'ok'}, task_name='judge')
    tracker.start_batch('wave', ['h2'])
    tracker.result('h2', FQ + 'migration_gate', {'verdict': 'fail', 'msg': 'errors via http://u:gate-pw@prom:9090'},
                   failed=True, task_name='judge')
    tracker.end_playbook({'h1': {'failures': 0, 'unreachable': 0}, 'h2': {'failures': 1, 'unreachable': 0}})
    return location, tracker


def test_tracker_announces_a_wave_and_its_halt(tmp_path, capture):
    warnings = []
    _location, tracker = run_wave(tmp_path, warnings, announce=True, alertmanager_url=capture.url)
    kinds = [a['labels']['announcement'] for a in capture.alerts]
    assert kinds == ['wave_started', 'batch_passed', 'gate_fail', 'halt', 'run_halted'], kinds
    assert len({a['labels']['event_id'] for a in capture.alerts}) == len(kinds)
    assert all(a['labels']['run_id'] == str(tracker.run_id) for a in capture.alerts)
    assert 'gate-pw' not in json.dumps(capture.alerts)
    assert not [w for w in warnings if 'announcement' in w]


def test_credentials_in_the_alertmanager_address_go_as_basic_auth(tmp_path, capture):
    url = capture.url.replace('http://', 'http://announcer:Am%20s3cret@')
    run_wave(tmp_path, [], announce=True, alertmanager_url=url)
    assert capture.requests and all(r == ('/api/v2/alerts', 'Basic YW5ub3VuY2VyOkFtIHMzY3JldA==')
                                    for r in capture.requests), capture.requests   # base64('announcer:Am s3cret')


def test_without_announce_nothing_is_sent(tmp_path, capture):
    run_wave(tmp_path, [], alertmanager_url=capture.url)
    assert capture.alerts == []


def test_an_unreachable_alertmanager_does_not_fail_the_run(tmp_path):
    warnings = []
    location, tracker = run_wave(tmp_path, warnings, announce=True,
                                 alertmanager_url='http://admin:am-secret@127.0.0.1:9', announce_timeout=1)
    assert tracker.outcome == 'halted'    # the gate's halt, as without announcements
    failed = [w for w in warnings if 'announcement not sent' in w]
    assert len(failed) == 1 and 'am-secret' not in failed[0]
    with ledger_lib.open_ledger(location) as book:
        recorded = book.events(kinds=announcements.FAILED_EVENT)
        assert len(recorded) == 1 and recorded[0]['data']['kinds'] == ['wave_started']
        assert 'am-secret' not in json.dumps(recorded)
        assert book.run(tracker.run_id)['outcome'] == 'halted'


def test_announce_without_an_alertmanager_warns_and_sends_nothing(tmp_path):
    warnings = []
    run_wave(tmp_path, warnings, announce=True)
    assert any('no alertmanager_url is set' in w for w in warnings)


# -- the routing --------------------------------------------------------------------------------------------------

def test_announcements_route_first_to_their_own_receiver_never_inhibited():
    ruleset = alert_rules.load_rules()
    hook = 'http://127.0.0.1:1/announce'
    config = rendering.alertmanager_config(ruleset, receivers={
        'page': [{'type': 'webhook', 'url': 'http://127.0.0.1:1/page'}],
        'announce': [{'type': 'webhook', 'url': hook}, {'type': 'slack', 'api_url': 'https://hooks.slack.com/x'}]})
    first = config['route']['routes'][0]
    assert first['receiver'] == 'announce' and first['matchers'] == ['alertname="MigrationAnnouncement"']
    assert first['continue'] is False and 'event_id' in first['group_by']
    announce = next(r for r in config['receivers'] if r['name'] == 'announce')
    assert announce['webhook_configs'][0]['url'] == hook and announce['webhook_configs'][0]['send_resolved'] is False
    assert 'Next: {{ .Annotations.next }}' in announce['slack_configs'][0]['text']
    page = next(r for r in config['receivers'] if r['name'] == 'page')
    assert page['webhook_configs'][0]['send_resolved'] is True    # the other receivers keep their behaviour
    for rule in config['inhibit_rules']:
        targets = ' '.join(rule['target_matchers'])
        assert 'info' not in targets and 'MigrationAnnouncement' not in targets
    assert rendering.check_receivers({'announce': [{'type': 'webhook', 'url': hook}]}) == []
    assert announcements.ALERTNAME == alert_rules.ANNOUNCEMENT_ALERT
