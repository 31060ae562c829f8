# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight's load_tested and communication items (services/preflight.py), the rehearsal's load verdict
(services/rehearsal.py) and the test announcement's delivery watch."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import preflight, rehearsal

DAY = 86400.0
NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC).timestamp()
LOAD = {'scrape_interval': 2.0, 'client_read_rate': 300.0, 'targets': 8, 'targets_up_after': 8,
        'reads_total': 3000.0, 'reads_failed': 3.0, 'load_average': 1.5}


# ---------------------------------------------------------------------------------------------- load verdict
def test_the_load_verdict_passes_within_the_read_loss_with_every_node_scraped_again():
    passed, message = rehearsal.load_verdict(LOAD)
    assert passed, message
    assert message == ('under load (scrapes every 2s, 300 client reads/s): 0.10 % of the reads failed during the '
                       'rollback (allowed 1.00 %), every node scraped again')


@pytest.mark.parametrize('change, expected', [
    ({'reads_failed': 31.0}, "the rollback cost 1.03 % of the clients' reads (31 of 3000; allowed 1.00 %)"),
    ({'reads_total': 0.0, 'reads_failed': 0.0}, 'no client read was served during the rollback: the load did not run'),
    ({'targets_up_after': 5}, "Prometheus did not scrape 3 of the copy's 8 nodes again after the rollback"),
])
def test_the_load_verdict_fails_naming_what_the_load_found(change, expected):
    passed, message = rehearsal.load_verdict(dict(LOAD, **change))
    assert not passed
    assert message == 'under load: ' + expected


def test_the_read_loss_limit_is_the_callers():
    assert rehearsal.load_verdict(dict(LOAD, reads_failed=31.0), max_read_loss=0.05)[0]
    assert not rehearsal.load_verdict(LOAD, max_read_loss=0.0005)[0]


def test_latest_under_load_skips_newer_rehearsals_without_load(tmp_path):
    handle = ledger_lib.open_ledger(str(tmp_path / 'ledger.sqlite3'), create=True)
    try:
        assert rehearsal.latest(handle, under_load=True) is None
        rehearsal.record(handle, {'passed': True, 'measured_seconds': 20.0, 'load': dict(LOAD, passed=True)})
        rehearsal.record(handle, {'passed': True, 'measured_seconds': 12.0})
        assert rehearsal.latest(handle)['data']['measured_seconds'] == 12.0
        assert rehearsal.latest(handle, under_load=True)['data']['measured_seconds'] == 20.0
    finally:
        handle.close()


# ---------------------------------------------------------------------------------------------- load_tested
def loaded_event(age_seconds, load=None, **data):
    at = datetime.datetime.fromtimestamp(NOW - age_seconds, datetime.UTC).isoformat()
    base = {'passed': True, 'measured_seconds': 14.0, 'sla_seconds': 300.0, 'operator': 'alice',
            'message': 'the rehearsed fast rollback took 14 s, within the 300 s SLA',
            'load': dict(LOAD, passed=True, message=rehearsal.load_verdict(LOAD)[1]) if load is None else load}
    return {'at': at, 'data': dict(base, **data)}


def judge_load(last, max_age=30 * DAY):
    return preflight.judge_load_tested(last, NOW, max_age, '30d')


def test_load_tested_passes_on_a_recent_passed_rehearsal_under_load():
    result = judge_load(loaded_event(3600))
    assert result['result'] == preflight.PASS, result['message']
    assert result['message'].startswith('load_tested: the fast rollback rehearsed under load 1h ago: the rehearsed '
                                        'fast rollback took 14 s, within the 300 s SLA; under load (scrapes every 2s')
    assert result['evidence']['load']['reads_failed'] == 3.0 and result['evidence']['passed']


def test_load_tested_fails_without_a_rehearsal_under_load():
    result = judge_load(None)
    assert result['message'] == ('load_tested: no rehearsal under load recorded: run ant-network-migration rehearse '
                                 '--under-load')


def test_load_tested_fails_when_the_load_cost_too_many_reads():
    bad = dict(LOAD, reads_failed=600.0)
    result = judge_load(loaded_event(60, load=dict(bad, passed=False, message=rehearsal.load_verdict(bad)[1])))
    assert result['result'] == preflight.FAIL
    assert result['problems'] == ["the last rehearsal under load (%s) failed under load: the rollback cost 20.00 %% "
                                  "of the clients' reads (600 of 3000; allowed 1.00 %%); see "
                                  'docs/runbooks/rehearsal-failed.md' % loaded_event(60)['at']]
    assert not result['evidence']['passed']


def test_load_tested_fails_when_the_rollback_under_load_missed_the_sla_and_is_old():
    result = judge_load(loaded_event(31 * DAY, passed=False,
                                     message='the rehearsed fast rollback took 320 s, over the 300 s SLA'))
    assert result['result'] == preflight.FAIL
    assert result['problems'][0].endswith('failed: the rehearsed fast rollback took 320 s, over the 300 s SLA; see '
                                          'docs/runbooks/rehearsal-failed.md')
    assert result['problems'][1] == ('the last rehearsal under load is 31d old (allowed: 30d): run '
                                     'ant-network-migration rehearse --under-load')
    assert judge_load(loaded_event(30 * DAY))['result'] == preflight.PASS     # the allowed age itself passes


# ---------------------------------------------------------------------------------------------- communication
ON = {'tracker_enabled': True, 'announce': True, 'alertmanager_url': 'http://127.0.0.1:9093'}
MANAGER = {'url': 'http://127.0.0.1:9093', 'version': '0.25.0', 'routes': ['log', 'announce', 'page', 'notify']}
RECEIVERS = {'page': ['webhook'], 'notify': ['webhook'], 'log': [], 'announce': ['webhook', 'slack']}


def judge_comm(settings=None, manager=None, receivers=None, delivery=None):
    delivered = {'webhook': 'delivered', 'slack': 'delivered'}
    return preflight.judge_communication(ON if settings is None else settings, MANAGER if manager is None else manager,
                                         RECEIVERS if receivers is None else receivers,
                                         delivered if delivery is None else delivery)


def test_communication_passes_when_announcements_are_on_routed_and_delivered():
    result = judge_comm()
    assert result['result'] == preflight.PASS, result['message']
    assert result['message'] == ('communication: migration events are announced through receiver announce (webhook, '
                                 'slack); a test announcement reached it')


def test_communication_never_shows_the_announcers_credentials():
    result = judge_comm(settings=dict(ON, alertmanager_url='http://announcer:S3cretPw@am.example:9093'))
    assert result['result'] == preflight.PASS
    assert 'S3cretPw' not in repr(result) and result['evidence']['alertmanager_url'].startswith('http://announcer:')


@pytest.mark.parametrize('settings, expected', [
    (dict(ON, tracker_enabled=False), 'the migration_tracker callback is not enabled'),
    (dict(ON, announce=False), 'announcements are off: set announce = true under [autonomi_network_migration]'),
    (dict(ON, alertmanager_url=None), 'announcements have no Alertmanager: set alertmanager_url'),
])
def test_communication_fails_when_the_controller_would_not_announce(settings, expected):
    result = judge_comm(settings=settings)
    assert result['result'] == preflight.FAIL
    assert result['problems'][0].startswith(expected), result['problems']


@pytest.mark.parametrize('manager, receivers, delivery, expected', [
    (dict(MANAGER, error='Alertmanager: connection refused'), {}, {},
     "the announcements' Alertmanager: connection refused"),
    (dict(MANAGER, routes=['page', 'notify']), dict(RECEIVERS), None,
     'Alertmanager does not route MigrationAnnouncement to receiver announce'),
    (MANAGER, dict(RECEIVERS, announce=[]), {},
     'receiver announce has no integration: announcements would reach nobody'),
    (MANAGER, {k: v for k, v in RECEIVERS.items() if k != 'announce'}, {}, 'no receiver announce in Alertmanager'),
    (MANAGER, RECEIVERS, {'webhook': 'delivered', 'slack': 'failed (2 request(s) refused or unanswered)'},
     'receiver announce did not accept the test announcement through slack: failed (2 request(s)'),
])
def test_communication_fails_naming_the_broken_link(manager, receivers, delivery, expected):
    result = judge_comm(manager=manager, receivers=receivers, delivery=delivery)
    assert result['result'] == preflight.FAIL
    assert any(p.startswith(expected) for p in result['problems']), result['problems']


def test_both_items_are_in_the_checklist_and_waivable():
    assert preflight.ITEMS[-2:] == ('load_tested', 'communication')
    waivers = preflight.parse_waivers({'communication': 'no channel yet: on-call told by phone'}, 'bob')
    [waived] = preflight.apply_waivers([judge_comm(settings=dict(ON, announce=False))], waivers)
    assert waived['result'] == preflight.WAIVED and 'waived by bob' in waived['message']


# ---------------------------------------------------------------------------------------------- delivery watch
class FakeAlertmanager:
    """Counts notification requests per integration type: ``script`` says what each poll adds."""

    def __init__(self, script, refuse_silences=False):
        self.script, self.counts, self.posted = list(script), {}, []
        self.calls, self.refuse_silences = [], refuse_silences

    def notification_requests(self):
        if self.script:
            for kind, (sent, failed) in self.script.pop(0).items():
                total = self.counts.get(kind, (0, 0))
                self.counts[kind] = (total[0] + sent, total[1] + failed)
        return dict(self.counts)

    def post_alert(self, labels, annotations, ends_in=300):
        self.posted.append((labels, annotations, ends_in))
        self.calls.append(('resolve' if ends_in == 0 else 'fire', labels))

    def silence(self, labels, duration, comment, created_by='ant-network-migration'):
        if self.refuse_silences:
            raise preflight.am.AlertmanagerUnavailable('Alertmanager at http://am is unreachable (403)')
        self.calls.append(('silence', labels))
        assert duration >= 3600 and 'preflight' in comment and 'preflight' in created_by
        return 'silence-id'


@pytest.fixture
def fake(monkeypatch):
    box = {}

    def make(script, **kwargs):
        box['am'] = FakeAlertmanager(script, **kwargs)
        monkeypatch.setattr(preflight.am, 'Alertmanager', lambda url: box['am'])
        return box['am']
    return make


def clock_of(step=1.0):
    state = {'t': 0.0}

    def clock():
        state['t'] += step
        return state['t']
    return clock


def test_the_test_announcement_is_the_callbacks_alert_and_is_resolved(fake):
    am = fake([{}, {'webhook': (1, 0)}])
    outcome = preflight.deliver_test_announcement('http://am', ['webhook'], 30, sleep=lambda s: None, clock=clock_of())
    assert outcome == {'webhook': 'delivered'}
    (labels, annotations, ends_in), (resolved, _annotations, ends_resolved) = am.posted
    assert labels['alertname'] == 'MigrationAnnouncement' and labels['severity'] == 'info'
    assert labels['announcement'] == 'preflight_test' and labels['event_id'].startswith('preflight-')
    assert 'Test announcement from the migration preflight' in annotations['summary']
    assert resolved == labels and ends_in > 0 and ends_resolved == 0


def test_a_test_alert_is_silenced_before_it_is_resolved_so_no_resolved_notification_counts_later(fake):
    """Requests are counted per integration type: a resolved notification of the preflight's own test alert, a
    group_interval later, would count as the next window's delivery and hide a receiver that is down."""
    am = fake([{}, {'webhook': (1, 0)}, {}, {'webhook': (1, 0)}, {}, {'webhook': (1, 0)}])
    alerts = preflight.deliver_test_alerts('http://am', {'page': ['webhook'], 'notify': ['webhook']}, 30,
                                           sleep=lambda s: None, clock=clock_of())
    assert alerts == {'warning': {'webhook': 'delivered'}, 'critical': {'webhook': 'delivered'}}
    preflight.deliver_test_announcement('http://am', ['webhook'], 30, sleep=lambda s: None, clock=clock_of())
    kinds = [kind for kind, _labels in am.calls]
    assert kinds == ['fire', 'fire', 'silence', 'resolve', 'silence', 'resolve', 'fire', 'silence', 'resolve']
    for (kind, silenced), (_next, resolved) in zip(am.calls, am.calls[1:], strict=False):
        if kind == 'silence':   # exactly the alert resolved next, by the labels no other alert has
            assert silenced.items() <= resolved.items() and len(silenced) == 2
            assert set(silenced) in ({'alertname', 'preflight'}, {'alertname', 'event_id'})


def test_a_receiver_down_does_not_fail_the_next_receiver_of_its_type_by_its_retries(fake):
    """notify (webhook) refuses the warning test; Alertmanager keeps retrying it while the critical test goes to
    page (webhook too): those failures are notify's, so page's window waits for its success (counted per type)."""
    retry = {'webhook': (1, 1)}
    fake([{}, retry, retry,                       # warning: notify refuses twice
          {}, retry, retry, retry, {'webhook': (1, 0)},   # critical: notify's retries, then page accepts
          {}, retry, retry, {'webhook': (1, 0)}])          # the announcement: the same
    failed = set()
    out = preflight.deliver_test_alerts('http://am', {'page': ['webhook'], 'notify': ['webhook']}, 30,
                                        sleep=lambda s: None, clock=clock_of(), failed_types=failed)
    assert out == {'warning': {'webhook': 'failed (2 request(s) refused or unanswered)'},
                   'critical': {'webhook': 'delivered'}}
    assert failed == {'webhook'}
    assert preflight.deliver_test_announcement('http://am', ['webhook'], 30, sleep=lambda s: None, clock=clock_of(),
                                               patient=failed) == {'webhook': 'delivered'}


def test_a_patient_watch_still_fails_at_its_timeout(fake):
    retry = {'webhook': (1, 1)}
    fake([{}] + [retry] * 40)
    assert preflight.deliver_test_announcement('http://am', ['webhook'], 10, sleep=lambda s: None, clock=clock_of(),
                                               patient={'webhook'})['webhook'].startswith('failed (')


def test_a_refused_silence_still_resolves_the_test_alert(fake):
    am = fake([{}, {'webhook': (1, 0)}], refuse_silences=True)
    assert preflight.deliver_test_announcement('http://am', ['webhook'], 30, sleep=lambda s: None,
                                               clock=clock_of()) == {'webhook': 'delivered'}
    assert [kind for kind, _labels in am.calls] == ['fire', 'resolve']


def test_a_refusing_or_silent_announce_receiver_is_reported(fake):
    fake([{}, {'webhook': (1, 1)}, {'webhook': (1, 1)}])
    assert preflight.deliver_test_announcement('http://am', ['webhook'], 30, sleep=lambda s: None,
                                               clock=clock_of()) == {'webhook': 'failed (2 request(s) refused or '
                                                                                'unanswered)'}
    fake([{}])
    assert preflight.deliver_test_announcement('http://am', ['webhook'], 5, sleep=lambda s: None,
                                               clock=clock_of()) == {'webhook': 'no attempt within 5 s'}
    assert preflight.deliver_test_announcement('http://am', [], 5) == {}


# ---------------------------------------------------------------------------------------------- a grown fleet
@pytest.mark.parametrize('shape, grown', [
    ({'hosts': 4, 'nodes_per_host': 2}, False),      # the rehearsed shape
    ({'hosts': 3, 'nodes_per_host': 2}, False),      # smaller rolls back faster
    ({'hosts': 4, 'nodes_per_host': 3}, True),       # more nodes per host: slower hosts
    ({'hosts': 5, 'nodes_per_host': 2}, True),       # 25 % more hosts
    (None, False),                                   # nothing read: nothing to compare
])
def test_a_rehearsal_of_a_fleet_this_one_has_outgrown_does_not_count(shape, grown):
    rehearsed = {'shape': {'hosts': 4, 'nodes_per_host': 2, 'mode': 'dual_stack'}}
    tested = preflight.judge_rollback_tested(loaded_event(60, **rehearsed), NOW, DAY, '1d', shape=shape)
    loaded = preflight.judge_load_tested(loaded_event(60, **rehearsed), NOW, DAY, '1d', shape=shape)
    assert (tested['result'], loaded['result']) == ((preflight.FAIL,) * 2 if grown else (preflight.PASS,) * 2)
    if grown:
        assert tested['problems'] == ['the last rehearsal was of a fleet of 4 hosts x 2 nodes; this fleet has %d x %d '
                                      'now: run ant-network-migration rehearse'
                                      % (shape['hosts'], shape['nodes_per_host'])]
        assert loaded['problems'][0].endswith('now: run ant-network-migration rehearse --under-load')


def test_ten_percent_more_hosts_is_still_the_rehearsed_fleet():
    rehearsed = {'shape': {'hosts': 50, 'nodes_per_host': 20}}
    assert preflight.judge_rollback_tested(loaded_event(60, **rehearsed), NOW, DAY, '1d',
                                           shape={'hosts': 55, 'nodes_per_host': 20})['result'] == preflight.PASS
    assert preflight.judge_rollback_tested(loaded_event(60, **rehearsed), NOW, DAY, '1d',
                                           shape={'hosts': 56, 'nodes_per_host': 20})['result'] == preflight.FAIL
