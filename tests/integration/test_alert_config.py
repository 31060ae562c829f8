# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Alertmanager configuration the monitoring role writes: amtool accepts it, routes it as
promised, and the receivers' secrets never reach Ansible's output. Also: every alert has a
runbook that exists. No fleet: the role runs with Prometheus's reload and check turned off."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from alerting_stack import ROOT, ansible_env, require

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules import rendering

SECRETS = {
    'routing_key': 'PDKEY-s3cr3t-0123456789abcdef',
    'slack': 'https://hooks.slack.example/services/T000/B000/SLACKs3cr3t',
    'smtp': 'SMTPs3cr3tPassw0rd',
    'token': 'WEBHOOKs3cr3tT0ken',
}
RECEIVERS = {
    'page': [{'type': 'pagerduty', 'routing_key': SECRETS['routing_key']},
             {'type': 'webhook', 'url': 'http://127.0.0.1:5050/alerts', 'token': SECRETS['token']}],
    'notify': [{'type': 'slack', 'api_url': SECRETS['slack'], 'channel': '#ant-fleet'},
               {'type': 'email', 'to': 'ops@example.org', 'from': 'am@example.org', 'smarthost': 'smtp.example.org:587',
                'auth_username': 'am', 'auth_password': SECRETS['smtp']}],
    'log': [],
}


def run_role(tmp_path, receivers, *args):
    config = tmp_path / 'alertmanager' / 'alertmanager.yml'
    config.parent.mkdir(exist_ok=True)
    variables = tmp_path / 'vars.json'
    variables.write_text(json.dumps({
        'monitoring_rules_dir': str(tmp_path / 'rules'), 'monitoring_reload': False,
        'monitoring_verify_loaded': False, 'monitoring_alertmanager_config_path': str(config),
        'monitoring_alertmanager_receivers': receivers, 'ansible_python_interpreter': sys.executable}))
    proc = subprocess.run([str(ROOT / '.venv' / 'bin' / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                           str(ROOT / 'playbooks' / 'monitoring.yml'), '-e', '@%s' % variables, *args],
                          cwd=str(ROOT), env=ansible_env(tmp_path / 'ledger.sqlite3'), capture_output=True,
                          text=True, timeout=300)
    return proc, config


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    require('amtool')
    tmp_path = tmp_path_factory.mktemp('am-config')
    proc, config = run_role(tmp_path, RECEIVERS, '-vv', '--diff')
    return proc, config


def amtool(*args):
    return subprocess.run([require('amtool'), *args], capture_output=True, text=True, timeout=60)


def test_amtool_accepts_the_configuration(rendered):
    proc, config = rendered
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check = amtool('check-config', str(config))
    assert check.returncode == 0, check.stdout + check.stderr
    assert ' - 4 receivers' in check.stdout and ' - 2 inhibit rules' in check.stdout   # page, notify, log, announce


@pytest.mark.parametrize('labels, receiver', [
    (['alertname=HighErrorRateIroh', 'severity=critical', 'transport=iroh'], 'page'),
    (['alertname=NetworkPartitionRisk', 'severity=critical', 'transport=all'], 'page'),
    (['alertname=IrohLatencySpike', 'severity=warning', 'transport=iroh'], 'notify'),
    (['alertname=SomeInfo', 'severity=info'], 'log'),
    (['alertname=UnknownCritical', 'severity=critical'], 'page'),
    (['alertname=Unlabelled'], 'log'),
    # The migration_tracker's announcements, whatever else they carry (docs/operator-guide.md, Announcements).
    (['alertname=MigrationAnnouncement', 'severity=info', 'announcement=halt', 'run_id=3', 'event_id=9'], 'announce'),
    (['alertname=MigrationAnnouncement', 'severity=critical'], 'announce'),
])
def test_amtool_routes_by_severity(rendered, labels, receiver):
    _proc, config = rendered
    res = amtool('config', 'routes', 'test', '--config.file=%s' % config, '--verify.receivers=%s' % receiver, *labels)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == receiver


def test_cooldowns_grouping_and_inhibitions(rendered):
    _proc, config = rendered
    doc = yaml.safe_load(config.read_text())
    ruleset = alert_rules.load_rules()
    routes = {r['matchers'][0]: r for r in doc['route']['routes']}
    for rule in ruleset.rules:
        assert routes['alertname="%s"' % rule.name]['repeat_interval'] == rule.cooldown
    assert doc['route']['group_by'] == ['alertname', 'transport']
    partition = doc['inhibit_rules'][0]
    assert partition['source_matchers'] == ['alertname="NetworkPartitionRisk"']
    assert partition['target_matchers'] == ['alertname=~"HighErrorRateIroh|HighErrorRateLibp2p|IrohLatencySpike"']
    assert partition['equal'] == ['scope']


def test_secrets_never_reach_output_and_the_file_is_private(rendered):
    proc, config = rendered
    output = proc.stdout + proc.stderr
    for secret in SECRETS.values():
        assert secret not in output
    text = config.read_text()
    for secret in SECRETS.values():
        assert secret in text  # written where Alertmanager reads them ...
    assert stat.S_IMODE(config.stat().st_mode) == 0o640  # ... readable by owner and group only
    # The run's extra vars recorded in the ledger are redacted too.
    with ledger_lib.open_ledger(str(config.parents[1] / 'ledger.sqlite3')) as book:
        recorded = json.dumps(book.runs())
    assert 'monitoring_alertmanager_receivers' in recorded
    for secret in SECRETS.values():
        assert secret not in recorded


def test_bad_receivers_name_the_field_never_the_value(tmp_path):
    require('amtool')
    bad = {'page': [{'type': 'pagerduty', 'routng_key': SECRETS['routing_key']}],
           'notify': [{'type': 'sms', 'number': SECRETS['token']}], 'pager': []}
    proc, config = run_role(tmp_path, bad, '-vv')
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'monitoring_alertmanager_receivers.page[0] (pagerduty): unknown field routng_key' in output
    assert 'monitoring_alertmanager_receivers.notify[0].type must be one of webhook, email, slack, pagerduty' in output
    assert 'monitoring_alertmanager_receivers.pager: unknown receiver' in output
    for secret in SECRETS.values():
        assert secret not in output
    assert not config.exists()


def test_every_alert_explains_itself_and_has_a_runbook():
    ruleset = alert_rules.load_rules()
    runbooks = ROOT / 'docs' / 'runbooks'
    index = (runbooks / 'README.md').read_text()
    for alert in rendering.alerting_rule_groups(ruleset)['groups'][0]['rules']:
        notes = alert['annotations']
        rule_id = alert['labels']['rule_id']
        assert notes['summary'] and notes['value'] == '{{ $value }}'
        assert notes['runbook_url'].endswith('/docs/runbooks/%s.md' % rule_id)
        assert (runbooks / ('%s.md' % rule_id)).is_file()
        assert '(%s.md)' % rule_id in index
        for part in (rule_id, alert['labels']['figure'], '{{ $value', 'threshold', 'Hosts above the threshold',
                     '{{ with query'):
            assert part in notes['description'], (rule_id, part)
        text = (runbooks / ('%s.md' % rule_id)).read_text()
        for section in ('## What it means', '## Confirm', '## Decide', '## Act', '## Verify'):
            assert section in text, (rule_id, section)


def test_operator_guide_links_every_runbook():
    guide = (ROOT / 'docs' / 'operator-guide.md').read_text()
    assert 'runbooks/README.md' in guide
    index = (ROOT / 'docs' / 'runbooks' / 'README.md').read_text()
    for path in sorted(Path(ROOT / 'docs' / 'runbooks').glob('*.md')):
        if path.name != 'README.md':
            assert '(%s)' % path.name in index, path.name
