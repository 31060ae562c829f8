# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight gate on production waves: rollout.yml refuses without a fresh passed preflight (naming the
failed items), runs after one, and a waiver is recorded with its reason and shown by ``status``.

A 4 x 2 simulated fleet with Prometheus and no Alertmanager: the preflight's monitoring and alert_recipients
items fail here, so the passing preflight waives them, with reasons, as an operator would.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alerting_stack import inventory_dir, playbook, record_rehearsal

pytestmark = pytest.mark.integration

testing = pytest.importorskip('ant_fleet_sim.testing')

WAIVER_ENV = 'ANT_MIGRATION_PREFLIGHT_WAIVER'
NO_ALERTMANAGER = {'monitoring': 'this test stack has no Alertmanager',
                   'alert_recipients': 'this test stack has no Alertmanager',
                   'communication': 'this test stack has no Alertmanager'}


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    monkeypatch.delenv(WAIVER_ENV, raising=False)
    with testing.SimStack(tmp_path / 'fleet', hosts=4, nodes_per_host=2, ready_delay=0.5) as stack:
        inv = inventory_dir(stack, tmp_path, {'preflight_baseline_window': '5m'})
        ledger = tmp_path / 'ledger.sqlite3'
        proc = playbook(inv, 'monitoring.yml', ledger)
        assert proc.returncode == 0, proc.stdout[-3000:]
        record_rehearsal(ledger)     # rollback_tested passes: the refusals below are about monitoring
        stack.wait_targets_up()
        yield {'stack': stack, 'inv': inv, 'ledger': ledger}


def events(ledger, kind):
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute('SELECT data FROM ledger_events WHERE kind = ? ORDER BY id', (kind,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def rollout(fleet, *args):
    return playbook(fleet['inv'], 'rollout.yml', fleet['ledger'], '-e', 'wave=25', '-e', 'wave_require_canary=false',
                    *args)


def test_a_production_wave_is_refused_without_a_fresh_preflight_and_runs_after_one(fleet):
    refused = rollout(fleet)
    assert refused.returncode != 0
    assert 'no preflight was recorded in this ledger' in refused.stdout, refused.stdout[-3000:]
    assert 'A production wave needs a preflight that passed within 1d' in refused.stdout
    with sqlite3.connect(fleet['ledger']) as conn:
        assert conn.execute('SELECT count(*) FROM ledger_nodes').fetchone()[0] == 0  # no host was read

    failed = playbook(fleet['inv'], 'preflight.yml', fleet['ledger'])
    assert failed.returncode != 0
    refused = rollout(fleet)
    assert refused.returncode != 0
    assert 'the last preflight' in refused.stdout and 'failed: monitoring: no Alertmanager configured' in \
        refused.stdout, refused.stdout[-3000:]
    assert 'alert_recipients: no Alertmanager configured' in refused.stdout

    passed = playbook(fleet['inv'], 'preflight.yml', fleet['ledger'], '-e',
                      json.dumps({'preflight_waivers': NO_ALERTMANAGER, 'operator': 'carol'}))
    assert passed.returncode == 0, passed.stdout[-3000:]
    ran = rollout(fleet)
    assert ran.returncode == 0, ran.stdout[-4000:]
    assert 'preflight passed' in ran.stdout
    assert not events(fleet['ledger'], 'preflight_waived')

    # The same preflight is too old for a stricter age: refused again, saying so.
    stale = rollout(fleet, '-e', 'preflight_max_age=1s')
    assert stale.returncode != 0
    assert 'older than the allowed 1s' in stale.stdout, stale.stdout[-3000:]


def test_a_bad_max_age_is_refused_before_anything(fleet):
    proc = rollout(fleet, '-e', 'preflight_max_age=yesterday')
    assert proc.returncode != 0
    assert 'preflight_max_age' in proc.stdout and 'Bad input' in proc.stdout, proc.stdout[-3000:]


def test_a_waiver_is_recorded_with_its_reason_and_shown_in_status(fleet):
    reason = 'change CHG-1234 approved by the lead; preflight tooling under repair'
    ran = rollout(fleet, '-e', json.dumps({'preflight_waiver': reason, 'operator': 'dave'}))
    assert ran.returncode == 0, ran.stdout[-4000:]
    waivers = events(fleet['ledger'], 'preflight_waived')
    assert len(waivers) == 1
    assert waivers[0]['reason'] == reason and waivers[0]['operator'] == 'dave'
    assert 'no preflight was recorded' in waivers[0]['why']

    cli = str(Path(sys.executable).parent / 'ant-network-migration')
    env = dict(os.environ, ANT_MIGRATION_LEDGER=str(fleet['ledger']))
    shown = subprocess.run([cli, 'status'], capture_output=True, text=True, env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert 'preflight: waived by dave' in shown.stdout and 'CHG-1234' in shown.stdout, shown.stdout
    as_json = json.loads(subprocess.run([cli, 'status', '--json'], capture_output=True, text=True, env=env,
                                        timeout=120).stdout)
    assert as_json['preflight']['result'] == 'waived' and as_json['preflight']['reason'] == reason


def test_the_cli_runs_the_preflight_and_exports_the_history_as_json_lines(fleet):
    cli = str(Path(sys.executable).parent / 'ant-network-migration')
    env = dict(os.environ, ANT_MIGRATION_LEDGER=str(fleet['ledger']), ANT_MIGRATION_INVENTORY=str(fleet['inv']))
    failed = subprocess.run([cli, 'preflight', '--operator', 'erin'], capture_output=True, text=True, env=env,
                            timeout=600)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert 'fail  monitoring: ' in failed.stdout and 'no Alertmanager configured' in failed.stdout, failed.stdout
    passed = subprocess.run([cli, 'preflight', '--operator', 'erin',
                             '--waive', 'monitoring=' + NO_ALERTMANAGER['monitoring'],
                             '--waive', 'alert_recipients=' + NO_ALERTMANAGER['alert_recipients'],
                             '--waive', 'communication=' + NO_ALERTMANAGER['communication']],
                            capture_output=True, text=True, env=env, timeout=600)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert 'waived  monitoring: waived by erin (this test stack has no Alertmanager)' in passed.stdout, passed.stdout
    assert 'preflight passed at ' in passed.stdout
    bad = subprocess.run([cli, 'preflight', '--waive', 'thresholds'], capture_output=True, text=True, env=env,
                         timeout=120)
    assert bad.returncode == 2 and '--waive takes ITEM=REASON' in bad.stderr + bad.stdout

    lines = subprocess.run([cli, 'history', '--jsonl'], capture_output=True, text=True, env=env,
                           timeout=120).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r['at'] for r in records] == sorted(r['at'] for r in records)
    preflights = [r for r in records if r['what'] == 'preflight']
    assert len(preflights) == 2 and preflights[-1]['who'] == 'erin'
    assert preflights[-1]['run']['kind'] == 'preflight' and preflights[-1]['run_id'] is not None
    assert preflights[-1]['data']['result'] == 'passed'
    started = [r for r in records if r['what'] == 'run_started']
    assert started and all(r['who'] and r['run']['playbook'].endswith('.yml') for r in started)
    assert {r['run']['kind'] for r in started} == {'monitoring', 'preflight'}
