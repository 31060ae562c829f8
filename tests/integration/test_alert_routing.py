# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""From a fault to people: Prometheus -> Alertmanager -> a webhook receiver and an SMTP sink.

One fleet for the module (4 hosts x 2 nodes, sim-host-01..02 on dual_stack), a real Prometheus and
a real Alertmanager, both configured by playbooks/monitoring.yml with the simulated inventory's
short windows; the `page` receiver is a local webhook receiver plus e-mail to a local SMTP sink,
`notify` another webhook receiver; `page` also posts to a Slack-compatible webhook and to a
PagerDuty Events API v2 URL, both local webhook receivers here. HighErrorRateIroh's cooldown is
6 s here so that its repeat is observable.
"""

from __future__ import annotations

import time

import pytest
import yaml
from alerting_stack import ROOT, inventory_dir, playbook, require

pytestmark = pytest.mark.integration

testing = pytest.importorskip('ant_fleet_sim.testing')
receivers = pytest.importorskip('ant_fleet_sim.receivers')

DUAL = ['sim-host-01', 'sim-host-02']
REPEAT_SECONDS = 6
RUNBOOKS = 'https://github.com/autonomi/network_migration/blob/main/docs/runbooks/'


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    require('prometheus-alertmanager')
    directory = tmp_path_factory.mktemp('alert-routing')
    alerts = yaml.safe_load((ROOT / 'inventories' / 'sim' / 'group_vars' / 'all' / 'alerts.yml').read_text())
    overrides = alerts['migration_alert_overrides']
    overrides['high_error_rate_iroh'] = dict(overrides['high_error_rate_iroh'], cooldown='%ds' % REPEAT_SECONDS)
    sim = testing.SimStack(directory / 'fleet', hosts=4, nodes_per_host=2, ready_delay=0.5, alertmanager=True)
    with sim as stack, receivers.WebhookReceiver() as page, receivers.WebhookReceiver() as notify, \
            receivers.WebhookReceiver() as slack, receivers.WebhookReceiver() as pagerduty, \
            receivers.SmtpSink() as smtp:
        inv = inventory_dir(stack, directory, {
            'migration_alert_overrides': overrides,
            'monitoring_alertmanager_receivers': {
                'page': [{'type': 'webhook', 'url': page.url},
                         {'type': 'email', 'to': 'oncall@example.org', 'from': 'alertmanager@example.org',
                          'smarthost': smtp.smarthost, 'require_tls': False},
                         # Slack-compatible incoming webhook and PagerDuty Events API v2, both local here.
                         {'type': 'slack', 'api_url': slack.url, 'channel': '#ant-fleet'},
                         {'type': 'pagerduty', 'routing_key': 'test-routing-key', 'url': pagerduty.url}],
                'notify': [{'type': 'webhook', 'url': notify.url}],
            },
        })
        proc = playbook(inv, 'monitoring.yml', directory / 'ledger.sqlite3')
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for host in DUAL:
            stack.set_mode(host, [n['service_name'] for n in stack.antctl_status(host)['nodes']], 'dual_stack')
        stack.wait_ready()
        stack.wait_targets_up()
        yield {'stack': stack, 'page': page, 'notify': notify, 'smtp': smtp, 'slack': slack, 'pagerduty': pagerduty}


def firing(stack, alertname):
    return [a for a in stack.prometheus_alerts() if a['labels']['alertname'] == alertname and a['state'] == 'firing']


def test_fault_reaches_webhook_and_email_with_runbook_and_value(fleet):
    stack, page, smtp = fleet['stack'], fleet['page'], fleet['smtp']
    stack.fault('transport', transport='iroh', error_rate=0.5, mode='dual_stack')
    testing.wait_for(lambda: firing(stack, 'HighErrorRateIroh'), timeout=90, what='HighErrorRateIroh firing')
    fired = time.monotonic()

    alert = page.wait_alert('HighErrorRateIroh', timeout=60)
    print('\nHighErrorRateIroh: firing in Prometheus -> webhook %.1f s; description: %s'
          % (alert['_received_at'] - fired, alert['annotations']['description']))
    assert alert['_receiver'] == 'page'
    assert alert['labels']['severity'] == 'critical' and alert['labels']['transport'] == 'iroh'
    notes = alert['annotations']
    assert notes['runbook_url'] == RUNBOOKS + 'high_error_rate_iroh.md'
    assert float(notes['value']) > 0.05
    assert notes['threshold'] == '> 0.05'
    description = notes['description']
    assert description.startswith('high_error_rate_iroh: error_rate (iroh) is ')
    assert 'threshold > 5 % for 10s' in description
    assert any(host in description for host in DUAL), description
    assert 'sim-host-03' not in description and 'sim-host-04' not in description

    mail = smtp.wait_for(lambda m: 'HighErrorRateIroh' in m['subject'], timeout=60,
                         what='the HighErrorRateIroh e-mail')
    print('HighErrorRateIroh: firing in Prometheus -> e-mail %.1f s' % (mail['_received_at'] - fired))
    assert mail['to'] == ['oncall@example.org']
    assert mail['subject'].startswith('[FIRING:1] HighErrorRateIroh (critical, transport iroh)')
    assert RUNBOOKS + 'high_error_rate_iroh.md' in mail['body']
    assert 'Value: ' in mail['body'] and 'threshold > 0.05' in mail['body']
    assert not fleet['notify'].alerts('HighErrorRateIroh'), 'a critical alert went to notify'

    slack = fleet['slack'].wait_for(lambda m: 'HighErrorRateIroh' in m.get('attachments', [{}])[0].get('title', ''),
                                    timeout=60, what='the Slack message')
    attachment = slack['attachments'][0]
    assert slack['channel'] == '#ant-fleet'
    assert RUNBOOKS + 'high_error_rate_iroh.md' in attachment['text'] and 'Value: ' in attachment['text']
    event = fleet['pagerduty'].wait_for(lambda m: 'HighErrorRateIroh' in m.get('payload', {}).get('summary', ''),
                                        timeout=60, what='the PagerDuty event')
    assert event['routing_key'] == 'test-routing-key' and event['event_action'] == 'trigger'
    assert event['links'] == [{'href': RUNBOOKS + 'high_error_rate_iroh.md', 'text': 'runbook'}]
    assert 'Value: ' in event['payload']['custom_details']['alerts']


def test_repeat_interval_is_the_rules_cooldown(fleet):
    page = fleet['page']
    page.wait_alert('HighErrorRateIroh', timeout=90)

    def repeated():
        return len(page.alerts('HighErrorRateIroh', status='firing')) >= 3

    testing.wait_for(repeated, timeout=60, what='three HighErrorRateIroh notifications (cooldown %ds)' % REPEAT_SECONDS)
    times = [a['_received_at'] for a in page.alerts('HighErrorRateIroh', status='firing')]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    print('\nHighErrorRateIroh repeats (cooldown %d s): gaps %s s'
          % (REPEAT_SECONDS, ', '.join('%.1f' % g for g in gaps)))
    # Never sooner than the cooldown (1 s of slack for the group_interval tick and delivery).
    assert min(gaps) >= REPEAT_SECONDS - 1, gaps


def test_partition_alert_inhibits_the_error_alert(fleet):
    stack, page = fleet['stack'], fleet['page']
    testing.wait_for(lambda: firing(stack, 'HighErrorRateIroh'), timeout=90, what='HighErrorRateIroh firing')
    stack.fault('partition', hosts=['sim-host-01', 'sim-host-02'])
    try:
        page.wait_alert('NetworkPartitionRisk', timeout=90)

        def inhibited():
            return [a for a in stack.am_alerts(inhibited=True)
                    if a['labels']['alertname'] == 'HighErrorRateIroh' and a['status']['inhibitedBy']]

        alert = testing.wait_for(inhibited, timeout=30, what='HighErrorRateIroh inhibited in Alertmanager')[0]
        assert alert['status']['state'] == 'suppressed'
        partition = [a for a in stack.am_alerts() if a['labels']['alertname'] == 'NetworkPartitionRisk']
        assert alert['status']['inhibitedBy'] == [partition[0]['fingerprint']]
        # While inhibited, the cooldown's repeat does not reach anyone.
        since = time.monotonic()
        testing.wait_for(lambda: time.monotonic() - since > 2 * REPEAT_SECONDS + 2, timeout=30, what='two cooldowns')
        late = [a for a in page.alerts('HighErrorRateIroh', status='firing') if a['_received_at'] > since]
        assert late == [], 'an inhibited alert was delivered'
    finally:
        stack.clear_faults()
