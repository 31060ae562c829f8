# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight (playbooks/preflight.yml) against a simulated fleet with a real Prometheus and Alertmanager.

One fleet for the module (4 hosts x 2 nodes); playbooks/monitoring.yml installs the collection's rules and
routing, with local webhook receivers for page and notify. Each test runs the preflight as an operator does
and reads the item it is about from the ledger's ``preflight`` event and from the operator-facing output;
a broken part is made for one test and repaired after it.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import sqlite3
import threading
import urllib.request

import pytest
import yaml
from alerting_stack import ROOT, inventory_dir, playbook, record_rehearsal, require

pytestmark = pytest.mark.integration

testing = pytest.importorskip('ant_fleet_sim.testing')
receivers = pytest.importorskip('ant_fleet_sim.receivers')
sim_prometheus = pytest.importorskip('ant_fleet_sim.prometheus')

WAIVER_ENV = 'ANT_MIGRATION_PREFLIGHT_WAIVER'


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    require('prometheus-alertmanager')
    directory = tmp_path_factory.mktemp('preflight')
    sim = testing.SimStack(directory / 'fleet', hosts=4, nodes_per_host=2, ready_delay=0.5, alertmanager=True)
    with sim as stack, receivers.WebhookReceiver() as page, receivers.WebhookReceiver() as notify, \
            receivers.WebhookReceiver() as announce:
        settings = {'monitoring_alertmanager_receivers': {'page': [{'type': 'webhook', 'url': page.url}],
                                                          'notify': [{'type': 'webhook', 'url': notify.url}],
                                                          'announce': [{'type': 'webhook', 'url': announce.url}]},
                    'preflight_alertmanager_url': stack.alertmanager_url,
                    # The simulated fleet has minutes of history: its baseline is what there is.
                    'preflight_baseline_window': '10m', 'preflight_delivery_timeout': '30s',
                    'preflight_scrape_max_age': '30s'}
        inv = inventory_dir(stack, directory, settings)
        ledger = directory / 'ledger.sqlite3'
        proc = playbook(inv, 'monitoring.yml', ledger)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        record_rehearsal(ledger)     # a ready fleet's rollback was rehearsed, under load (rollback/load_tested)
        stack.wait_targets_up()
        yield {'stack': stack, 'page': page, 'notify': notify, 'announce': announce, 'inv': inv, 'ledger': ledger,
               'dir': directory, 'settings': settings}


def preflight(fleet, *args, ledger=None, announce=True):
    """The preflight playbook, on a controller that announces through the stack's Alertmanager (ansible.cfg's
    [autonomi_network_migration] announce, here by its environment variables) unless ``announce`` is false."""
    env_free = {k: v for k, v in os.environ.items() if k != WAIVER_ENV and not k.startswith('ANT_MIGRATION_ANNOUNCE')
                and k != 'ANT_MIGRATION_ALERTMANAGER_URL'}
    if announce:
        env_free.update(ANT_MIGRATION_ANNOUNCE='true', ANT_MIGRATION_ALERTMANAGER_URL=fleet['stack'].alertmanager_url)
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env_free)
    try:
        return playbook(fleet['inv'], 'preflight.yml', ledger or fleet['ledger'], *args)
    finally:
        os.environ.clear()
        os.environ.update(old)


def last_preflight(ledger):
    with sqlite3.connect(ledger) as conn:
        row = conn.execute("SELECT data FROM ledger_events WHERE kind = 'preflight' "
                           'ORDER BY id DESC LIMIT 1').fetchone()
    return json.loads(row[0]) if row else None


def item_of(data, name):
    return next(i for i in data['items'] if i['item'] == name)


def test_every_item_passes_on_a_ready_fleet(fleet):
    fleet['page'].clear()
    fleet['notify'].clear()
    fleet['announce'].clear()
    proc = preflight(fleet)
    data = last_preflight(fleet['ledger'])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert data['result'] == 'passed', data
    assert [i['result'] for i in data['items']] == ['pass'] * 9, [i['message'] for i in data['items']]
    assert item_of(data, 'rollback_tested')['message'].startswith('rollback_tested: the fast rollback rehearsed ')
    assert item_of(data, 'load_tested')['message'].startswith('load_tested: the fast rollback rehearsed under load ')
    assert item_of(data, 'communication')['message'] == ('communication: migration events are announced through '
                                                         'receiver announce (webhook); a test announcement reached it')
    # The test announcement really reached the announce webhook, and only it.
    [announced] = fleet['announce'].alerts('MigrationAnnouncement')
    assert announced['labels']['announcement'] == 'preflight_test'
    assert not fleet['page'].alerts('MigrationAnnouncement') and not fleet['notify'].alerts('MigrationAnnouncement')
    # The synthetic alerts really reached the webhooks, each at its severity's receiver.
    critical = fleet['page'].alerts('MigrationPreflightTest')
    warning = fleet['notify'].alerts('MigrationPreflightTest')
    assert critical and all(a['labels']['severity'] == 'critical' for a in critical)
    assert warning and all(a['labels']['severity'] == 'warning' for a in warning)
    print('\n' + '\n'.join(i['message'] for i in data['items']))
    # Resolved but silenced first: no "resolved" notification follows a group_interval (2 s here) later, which
    # Alertmanager 0.25 would count as a webhook delivery in the next test's window and hide a receiver down.
    def resolved_test(note):
        return any(a.get('status') == 'resolved' and a['labels'].get('alertname') in (
            'MigrationPreflightTest', 'MigrationAnnouncement') for a in note.get('alerts', []))
    with urllib.request.urlopen(fleet['stack'].alertmanager_url + '/api/v2/alerts', timeout=10) as resp:
        active = json.loads(resp.read())
    assert not [a['labels'] for a in active if a['labels']['alertname'] in (
        'MigrationPreflightTest', 'MigrationAnnouncement')], 'the test alerts are still active in Alertmanager'
    with pytest.raises(receivers.ReceiverTimeout):
        fleet['page'].wait_for(resolved_test, timeout=10, what='a resolved test alert')
    assert not [n for r in ('notify', 'announce') for n in fleet[r].notifications if resolved_test(n)]


def failed_item(fleet, name, proc):
    """The named item of the last recorded preflight, which must have failed the run."""
    data = last_preflight(fleet['ledger'])
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert data['result'] == 'failed' and name in data['failed_items'], data['failed_items']
    entry = item_of(data, name)
    assert entry['result'] == 'fail'
    # The operator reads the same message in the playbook's output.
    assert entry['message'].split(';')[0] in proc.stdout.replace('\\n', '\n'), proc.stdout[-3000:]
    return entry


def test_a_rule_missing_from_prometheus_fails_monitoring(fleet):
    stack = fleet['stack']
    rules = stack.state.prometheus_dir / 'rules' / 'autonomi-migration-alerts.yml'
    original = rules.read_text()
    doc = yaml.safe_load(original)
    doc['groups'][0]['rules'] = [r for r in doc['groups'][0]['rules'] if r['alert'] != 'IrohLatencySpike']
    rules.write_text(yaml.safe_dump(doc))
    try:
        sim_prometheus.reload(stack.prometheus_url)
        testing.wait_for(lambda: 'IrohLatencySpike' not in json.dumps(stack._prom_get('/api/v1/rules')),
                         timeout=30, what='IrohLatencySpike unloaded')
        entry = failed_item(fleet, 'monitoring', preflight(fleet))
        assert 'rule IrohLatencySpike is missing from group' in entry['message']
        assert item_of(last_preflight(fleet['ledger']), 'alert_recipients')['result'] == 'pass'
    finally:
        rules.write_text(original)
        sim_prometheus.reload(stack.prometheus_url)


def test_a_node_not_scraped_fails_monitoring(fleet):
    stack = fleet['stack']
    file_sd = stack.state.file_sd
    original = file_sd.read_text()
    targets = [t for t in json.loads(original) if not (t['labels']['host'] == 'sim-host-03'
                                                       and t['labels']['service_name'] == 'antnode2')]
    file_sd.write_text(json.dumps(targets))
    try:
        testing.wait_for(lambda: not stack.query('up{host="sim-host-03",service_name="antnode2"}'), timeout=60,
                         what='sim-host-03/antnode2 dropped from the targets')
        entry = failed_item(fleet, 'monitoring', preflight(fleet))
        assert 'node sim-host-03/antnode2 is not a scrape target of Prometheus' in entry['message']
        assert 'sim-host-03/antnode1' not in entry['message']
    finally:
        file_sd.write_text(original)
        stack.wait_targets_up()


def test_a_receiver_that_does_not_answer_fails_alert_recipients(fleet):
    notify = fleet['notify']
    notify.stop()
    try:
        entry = failed_item(fleet, 'alert_recipients', preflight(fleet, '-e', 'preflight_delivery_timeout=15s'))
        assert ('receiver notify (warning) did not accept the test notification through webhook: failed'
                in entry['message']), entry['message']
        assert 'receiver page' not in entry['message']
    finally:
        notify.start()


def test_an_announce_receiver_that_does_not_answer_fails_communication(fleet):
    announce = fleet['announce']
    announce.stop()
    try:
        entry = failed_item(fleet, 'communication', preflight(fleet, '-e', 'preflight_delivery_timeout=15s'))
        assert ('receiver announce did not accept the test announcement through webhook: failed'
                in entry['message']), entry['message']
        assert item_of(last_preflight(fleet['ledger']), 'alert_recipients')['result'] == 'pass'
    finally:
        announce.start()


def test_a_controller_that_does_not_announce_fails_communication(fleet):
    entry = failed_item(fleet, 'communication', preflight(fleet, announce=False))
    assert entry['problems'][0].startswith('announcements are off: set announce = true under '
                                           '[autonomi_network_migration] in ansible.cfg'), entry['problems']


def test_a_broken_runbook_link_fails_runbooks(fleet, tmp_path):
    """Runbooks served over HTTP, one of them missing: the loaded alert's link answers 404."""
    site = tmp_path / 'site' / 'runbooks'
    site.mkdir(parents=True)
    for path in (ROOT / 'docs' / 'runbooks').glob('*.md'):
        if path.name != 'iroh_latency_spike.md':
            (site / path.name).write_text(path.read_text())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site.parent))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = 'http://127.0.0.1:%d/runbooks' % server.server_address[1]
    try:
        proc = playbook(fleet['inv'], 'monitoring.yml', fleet['ledger'], '-e', 'monitoring_runbook_base_url=' + base)
        assert proc.returncode == 0, proc.stdout[-3000:]
        entry = failed_item(fleet, 'runbooks', preflight(fleet, '-e', 'preflight_runbook_base_url=' + base))
        assert entry['message'] == ('runbooks: alert IrohLatencySpike: runbook %s/iroh_latency_spike.md answered '
                                    'HTTP 404' % base)
        assert entry['evidence']['HighErrorRateIroh']['ok'] is True
    finally:
        server.shutdown()
        proc = playbook(fleet['inv'], 'monitoring.yml', fleet['ledger'])
        assert proc.returncode == 0, proc.stdout[-3000:]


def test_no_canary_host_fails_canary(fleet, tmp_path):
    inv = tmp_path / 'inventory'
    shutil.copytree(fleet['inv'], inv)
    (inv / 'exclude.yml').write_text(yaml.safe_dump({'migration_exclude': {'hosts': {
        h: None for h in fleet['stack'].host_names}}}))
    ledger = tmp_path / 'ledger.sqlite3'
    proc = playbook(inv, 'preflight.yml', ledger)
    entry = failed_item({'ledger': ledger}, 'canary', proc)
    assert entry['message'] == ('canary: no canary host: no fleet host outside the excluded ones has all its nodes '
                                'on libp2p_only')


def test_an_unreachable_canary_host_fails_canary(fleet, tmp_path):
    inv = tmp_path / 'inventory'
    shutil.copytree(fleet['inv'], inv)
    (inv / 'canary.yml').write_text(yaml.safe_dump({'canary': {'hosts': {'sim-host-02': None}}}))
    (inv / 'host_vars').mkdir()
    (inv / 'host_vars' / 'sim-host-02.yml').write_text(yaml.safe_dump({'ant_antctl_path': '/nonexistent/antctl'}))
    ledger = tmp_path / 'ledger.sqlite3'
    entry = failed_item({'ledger': ledger}, 'canary', playbook(inv, 'preflight.yml', ledger))
    assert 'canary host sim-host-02 is unreachable (transport_info did not answer)' in entry['message']


def test_a_corrupt_backup_fails_its_restore_check(tmp_path):
    """The backup is taken from a real ledger, then damaged before its restore: the item fails and says so."""
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger import backup
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import preflight as service

    location = str(tmp_path / 'ledger.sqlite3')
    with ledger_lib.open_ledger(location) as handle:
        for i in range(200):
            handle.record_event('gate_verdict', verdict='pass', n=i, padding='x' * 200)

    def corrupt(path):
        with open(path, 'r+b') as handle:
            handle.seek(4096 * 3)
            handle.write(b'\xff' * 4096 * 4)

    good = service.judge_backup(backup.take_and_restore(location, str(tmp_path / 'good')))
    assert good['result'] == 'pass', good
    bad = service.judge_backup(backup.take_and_restore(location, str(tmp_path / 'bad'), corrupt=corrupt))
    assert bad['result'] == 'fail'
    assert bad['message'].startswith('backup: the ')
    assert 'malformed' in bad['message'] or 'integrity check' in bad['message'] or 'differs' in bad['message'], bad


def test_a_waiver_is_recorded_with_its_reason_and_operator(fleet, tmp_path):
    fleet['notify'].stop()
    try:
        proc = preflight(fleet, '-e', json.dumps({
            'preflight_delivery_timeout': '10s', 'operator': 'alice',
            'preflight_waivers': {'alert_recipients': 'notify webhook replaced on Monday; page verified by hand'}}))
    finally:
        fleet['notify'].start()
    data = last_preflight(fleet['ledger'])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert data['result'] == 'passed' and data['waived_items'] == ['alert_recipients']
    entry = item_of(data, 'alert_recipients')
    assert entry['result'] == 'waived'
    assert entry['waiver'] == {'reason': 'notify webhook replaced on Monday; page verified by hand',
                               'operator': 'alice'}
    assert 'did not accept the test notification' in entry['message']


def test_an_unknown_waiver_is_refused_before_anything_is_checked(fleet):
    before = last_preflight(fleet['ledger'])
    proc = preflight(fleet, '-e', json.dumps({'preflight_waivers': {'backups': 'typo'}}))
    assert proc.returncode != 0
    assert "waiver for unknown item 'backups'" in proc.stdout
    assert last_preflight(fleet['ledger']) == before


def test_a_threshold_inside_the_noise_fails_thresholds(fleet):
    """Last in the module: a fleet whose normal libp2p error rate is about 20 % (its baseline from now on)."""
    stack = fleet['stack']
    stack.fault('transport', transport='libp2p', error_rate=0.2)
    try:
        testing.wait_for(lambda: stack.query(
            'sum(rate(ant_networking_transport_requests_total{transport="libp2p",outcome="error"}[10s]))'
            ' / sum(rate(ant_networking_transport_requests_total{transport="libp2p"}[10s])) > 0.1'),
            timeout=60, what='the libp2p error rate above 10 %')
        proc = preflight(fleet, '-e', 'preflight_baseline_window=40s')
    finally:
        stack.clear_faults()
    entry = failed_item(fleet, 'thresholds', proc)
    assert entry['message'].startswith('thresholds: high_error_rate_libp2p: threshold > 5 % is inside the observed '
                                       'noise (p99 '), entry['message']
    assert 'it would flap' in entry['message']
    assert 'high_error_rate_iroh' not in entry['message']
