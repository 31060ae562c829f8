# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Event-driven rollback: a partition in the simulated fleet is rolled back by ansible-rulebook.

Prometheus (rules from the monitoring role) -> Alertmanager (routing from the monitoring role,
`page` receiver = the collection's event source) -> extensions/eda/rulebooks/rollback_on_alert.yml
-> playbooks/rollback.yml. Nobody runs a playbook after the fault. One small fleet (4 hosts x 2
nodes); the partition is two hosts forced to iroh_only behind the collection's back, so that
libp2p-only and iroh-only nodes cannot reach each other.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml
from alerting_stack import ROOT, RULEBOOK_BIN, ansible_env, inventory_dir, playbook, require

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

pytestmark = pytest.mark.integration

RULEBOOK = ROOT / 'extensions' / 'eda' / 'rulebooks' / 'rollback_on_alert.yml'
TOKEN = 'eda-test-token-0f3c'
PARTITIONED = ['sim-host-01', 'sim-host-02']

testing = pytest.importorskip('ant_fleet_sim.testing')
receivers = pytest.importorskip('ant_fleet_sim.receivers')


def start_rulebook(inv, directory, env, attempts=3):
    """ansible-rulebook with the event source on a free port; (process, port, log) once it listens.

    Readiness is the source's own "listening" log line (another process may hold the port we
    picked: then ansible-rulebook exits with "address already in use" and we pick again).
    """
    for attempt in range(attempts):
        port = testing.layout.free_port()
        variables = directory / ('eda-vars-%d.yml' % attempt)
        variables.write_text(yaml.safe_dump({'eda_alertmanager_port': port, 'eda_alertmanager_token': TOKEN}))
        log = directory / ('rulebook-%d.log' % attempt)
        with open(log, 'wb') as out:
            proc = subprocess.Popen(
                [str(RULEBOOK_BIN), '--rulebook', str(RULEBOOK), '-i', str(inv), '--vars', str(variables),
                 '--print-events', '-v'],
                cwd=str(ROOT), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        ready = 'event source listening on http://127.0.0.1:%d/alerts' % port
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = log.read_text(errors='replace')
            if ready in text:
                return proc, port, log
            if proc.poll() is not None:
                if 'address already in use' in text and attempt + 1 < attempts:
                    break
                raise AssertionError('ansible-rulebook exited with %s:\n%s' % (proc.returncode, text[-4000:]))
            time.sleep(0.2)
        else:
            stop(proc)
            raise AssertionError('the event source did not listen within 120 s:\n%s' % log.read_text()[-4000:])
    raise AssertionError('no free port for the event source after %d attempts' % attempts)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def modes(stack):
    return {(n['host'], n['service_name']): n['mode'] for n in stack.fleet()['nodes']}


@pytest.fixture(scope='module')
def eda(tmp_path_factory):
    require('prometheus-alertmanager')
    require('ansible-rulebook', RULEBOOK_BIN)
    require('java')
    directory = tmp_path_factory.mktemp('eda')
    ledger = directory / 'ledger.sqlite3'
    env = ansible_env(ledger)
    fleet = testing.SimStack(directory / 'fleet', hosts=4, nodes_per_host=2, ready_delay=0.5, alertmanager=True)
    with fleet as stack, receivers.WebhookReceiver() as hook:
        inv = inventory_dir(stack, directory, {})
        rulebook, port, log = start_rulebook(inv, directory, env)
        try:
            settings = inv / 'group_vars' / 'all' / 'zz_test.yml'
            extra = yaml.safe_load(settings.read_text())
            extra['monitoring_alertmanager_receivers'] = {
                'page': [{'type': 'webhook', 'url': 'http://127.0.0.1:%d/alerts' % port, 'token': TOKEN},
                         {'type': 'webhook', 'url': hook.url}]}
            settings.write_text(yaml.safe_dump(extra, sort_keys=False))
            proc = playbook(inv, 'monitoring.yml', ledger)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            stack.wait_targets_up()
            yield {'stack': stack, 'hook': hook, 'ledger': ledger, 'port': port, 'log': log,
                   'rulebook': rulebook, 'inventory': inv}
        finally:
            stop(rulebook)


def post_alert(port, alert, token=TOKEN):
    body = json.dumps({'version': '4', 'status': alert['status'], 'receiver': 'page', 'alerts': [alert],
                       'groupLabels': {}, 'commonLabels': alert['labels'], 'groupKey': 'test'}).encode()
    headers = {'Content-Type': 'application/json'}
    if token:
        headers['Authorization'] = 'Bearer %s' % token
    req = urllib.request.Request('http://127.0.0.1:%d/alerts' % port, data=body, method='POST', headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def current_lock(ledger):
    with ledger_lib.open_ledger(str(ledger)) as book:
        return book.lock()


def rollback_runs(ledger):
    with ledger_lib.open_ledger(str(ledger)) as book:
        return [e for e in book.events(kinds=['run_started'], limit=100)
                if 'rollback' in str(e['data'].get('playbook', ''))]


def test_partition_is_rolled_back_by_the_rulebook(eda):
    stack, ledger = eda['stack'], eda['ledger']
    for host in PARTITIONED:  # the fault: half the fleet on iroh_only, the other half libp2p_only
        stack.set_mode(host, [n['service_name'] for n in stack.antctl_status(host)['nodes']], 'iroh_only')

    # Firing in Prometheus (the clock starts here), then at Alertmanager, then at the webhook.
    def firing():
        return [a for a in stack.prometheus_alerts()
                if a['labels']['alertname'] == 'NetworkPartitionRisk' and a['state'] == 'firing']

    testing.wait_for(firing, timeout=90, interval=0.2, what='NetworkPartitionRisk firing in Prometheus')
    fired = time.monotonic()

    # The rollback takes the lock: a second firing now (Alertmanager's repeat, or another alert)
    # must start nothing.
    def locked():
        return current_lock(ledger)

    lock = testing.wait_for(locked, timeout=120, interval=0.1, what='the rollback to take the run lock')
    lock_seconds = time.monotonic() - fired
    assert 'rollback' in lock['playbook']
    second = dict(eda['hook'].wait_alert('NetworkPartitionRisk', timeout=30))
    second = {k: v for k, v in second.items() if not k.startswith('_')}
    assert post_alert(eda['port'], second) == {'events': 1}
    assert (locked() or {}).get('run_id') == lock['run_id'], 'the rollback ended before the second alert arrived'

    testing.wait_for(lambda: all(m == 'libp2p_only' for m in modes(stack).values()), timeout=180, interval=0.2,
                     what='every node back on libp2p_only')
    done = time.monotonic()
    print('\nevent-driven rollback: alert firing -> run lock taken %.1f s, firing -> all %d nodes libp2p_only %.1f s'
          % (lock_seconds, len(modes(stack)), done - fired))

    testing.wait_for(lambda: not locked(), timeout=120, what='the rollback to release the lock')
    with ledger_lib.open_ledger(str(ledger)) as book:
        rollbacks = book.events(kinds=['rollback'], limit=10)
    assert len(rollbacks) == 1, rollbacks
    data = rollbacks[0]['data']
    assert data['trigger'] == 'alert:NetworkPartitionRisk'
    assert data['strategy'] == 'fast'
    assert data['outcome'] == 'succeeded'
    assert sorted(data['hosts']) == PARTITIONED
    reason = rollbacks[0]['data'].get('reason') or rollbacks[0].get('reason')
    assert reason and reason.startswith('alert NetworkPartitionRisk firing since'), rollbacks[0]
    assert 'docs/runbooks/network_partition_risk.md' in reason

    # The second alert was seen and refused: one rollback run only, and the rulebook says why.
    assert len(rollback_runs(ledger)) == 1
    assert 'nothing started' in eda['log'].read_text()


def test_a_notification_without_the_token_is_refused(eda):
    """Anyone who can reach the listener could otherwise roll the fleet back: no token, 401, no event."""
    forged = {'status': 'firing', 'startsAt': '2026-12-01T00:00:00Z', 'fingerprint': 'forged',
              'labels': {'alertname': 'NetworkPartitionRisk', 'severity': 'critical',
                         'rule_id': 'network_partition_risk', 'figure': 'partition_risk'}}
    for token in (None, 'wrong-token'):
        with pytest.raises(urllib.error.HTTPError) as refused:
            post_alert(eda['port'], forged, token=token)
        assert refused.value.code == 401
    assert 'refused a notification' in eda['log'].read_text()
    with ledger_lib.open_ledger(str(eda['ledger'])) as book:
        assert not [e for e in book.events(kinds=['alert_fired'], limit=50) if e['data'].get('fingerprint') == 'forged']


def test_alert_text_is_never_templated(eda, tmp_path):
    """An alert whose text is a Jinja expression is recorded verbatim (base64 through the rulebook)."""
    evil = "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % (tmp_path / 'pwned')
    text = 'alert X firing since now | %s' % evil
    inv = eda['inventory']
    proc = playbook(inv, 'rollback.yml', eda['ledger'], '-e', json.dumps(
        {'strategy': 'fast', 'trigger': 'alert:X', 'reason_b64': base64.b64encode(text.encode()).decode()}))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / 'pwned').exists()
    with ledger_lib.open_ledger(str(eda['ledger'])) as book:
        event = book.events(kinds=['rollback'], limit=1)[0]
    assert (event['data'].get('reason') or event.get('reason')) == text


def test_an_error_rate_alert_rolls_back_gradually(eda):
    """The rulebook's other rule: a critical error-rate alert (no rollout, no rollback running) -> gradual."""
    testing.wait_for(lambda: not current_lock(eda['ledger']), timeout=120, what='no lock')
    alert = {'status': 'firing', 'startsAt': '2026-11-29T21:00:00Z', 'fingerprint': 'f00d',
             'labels': {'alertname': 'HighErrorRateIroh', 'severity': 'critical', 'transport': 'iroh',
                        'rule_id': 'high_error_rate_iroh', 'figure': 'error_rate', 'scope': 'fleet'},
             'annotations': {'summary': 'iroh request error rate above threshold', 'description': 'is 50%',
                             'runbook_url': 'https://x/docs/runbooks/high_error_rate_iroh.md'}}
    assert post_alert(eda['port'], alert) == {'events': 1}

    def gradual():
        with ledger_lib.open_ledger(str(eda['ledger'])) as book:
            return [e for e in book.events(kinds=['rollback'], limit=20)
                    if e['data'].get('trigger') == 'alert:HighErrorRateIroh']

    event = testing.wait_for(gradual, timeout=180, what='the gradual rollback of HighErrorRateIroh')[0]
    assert event['data']['strategy'] == 'gradual'
    assert (event['data'].get('reason') or event.get('reason')).startswith('alert HighErrorRateIroh firing since')
