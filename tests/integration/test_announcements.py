# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The communication plan end to end: the migration_tracker announces a real canary, a real wave, a pause and a
resume through a real Alertmanager, which routes them (playbooks/monitoring.yml's configuration) to the
``announce`` receiver: a local webhook. Every announcement says what happened and what comes next, each event
is its own notification, no secret is in any of them, and an unreachable Alertmanager fails no run.

One fleet for the module (4 hosts x 3 nodes: the canary analysis compares at least 3 canary nodes); its tests
run in order (canary, waves to 50, 75, 100 %). The Prometheus and Alertmanager addresses carry credentials
(neither checks them: the point is that they never reach a channel).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alerting_stack import BIN, ROOT, ansible_env, inventory_dir, playbook, require

pytestmark = pytest.mark.integration

testing = pytest.importorskip('ant_fleet_sim.testing')
receivers = pytest.importorskip('ant_fleet_sim.receivers')

PROM_SECRET = 'PromS3cret-4ann'
AM_SECRET = 'AmS3cret-4ann'
NO_DRILL = 'canary_rollback_drill=false'


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    require('prometheus-alertmanager')
    directory = tmp_path_factory.mktemp('announce')
    sim = testing.SimStack(directory / 'fleet', hosts=4, nodes_per_host=3, ready_delay=0.5, alertmanager=True)
    with sim as stack, receivers.WebhookReceiver() as announce, receivers.WebhookReceiver() as page:
        settings = {'monitoring_alertmanager_receivers': {'page': [{'type': 'webhook', 'url': page.url}],
                                                          'announce': [{'type': 'webhook', 'url': announce.url}]},
                    'migration_prometheus_url': stack.prometheus_url.replace('://', '://migration:%s@' % PROM_SECRET)}
        inv = inventory_dir(stack, directory, settings)
        ledger = directory / 'ledger.sqlite3'
        proc = playbook(inv, 'monitoring.yml', ledger)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        yield {'stack': stack, 'announce': announce, 'page': page, 'inv': inv, 'ledger': ledger,
               'am_url': stack.alertmanager_url.replace('://', '://announcer:%s@' % AM_SECRET)}


def announced_play(fleet, name, *args, url=None, timeout=600):
    """ansible-playbook with announcements on (the callback's options, as ansible.cfg or the environment set them)."""
    env = ansible_env(fleet['ledger'])
    env.update(ANT_MIGRATION_ANNOUNCE='true', ANT_MIGRATION_ALERTMANAGER_URL=url or fleet['am_url'])
    extra = [part for arg in args for part in ('-e', arg)]
    started = time.monotonic()
    proc = subprocess.run([str(BIN / 'ansible-playbook'), '-i', str(fleet['inv']), str(ROOT / 'playbooks' / name),
                           *extra], cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=timeout)
    proc.seconds = time.monotonic() - started
    return proc


def run_ids(ledger, playbook_name):
    with sqlite3.connect(ledger) as conn:
        return [r[0] for r in conn.execute('SELECT id FROM ledger_runs WHERE playbook LIKE ? ORDER BY id',
                                           ('%' + playbook_name,))]


def announcements_of(hook, run_id):
    """{announcement kind: [alerts]} the webhook received for a run (firing only)."""
    out = {}
    for alert in hook.alerts('MigrationAnnouncement', status='firing'):
        if alert['labels'].get('run_id') == str(run_id):
            out.setdefault(alert['labels']['announcement'], []).append(alert)
    return out


def wait_announced(hook, run_id, kinds, timeout=60):
    testing.wait_for(lambda: set(kinds) <= set(announcements_of(hook, run_id)), timeout=timeout,
                     what='announcements %s of run %s (got %s)' % (sorted(kinds), run_id,
                                                                  sorted(announcements_of(hook, run_id))))
    return announcements_of(hook, run_id)


def assert_no_secret(fleet, *outputs):
    delivered = json.dumps(fleet['announce'].notifications)
    for secret in (PROM_SECRET, AM_SECRET):
        assert secret not in delivered
        for output in outputs:
            assert secret not in output


def test_a_canary_a_wave_a_pause_and_a_resume_are_announced(fleet):
    hook = fleet['announce']
    canary = announced_play(fleet, 'canary.yml', NO_DRILL)
    assert canary.returncode == 0, canary.stdout[-4000:] + canary.stderr[-2000:]
    run = run_ids(fleet['ledger'], 'canary.yml')[-1]
    got = wait_announced(hook, run, ['canary_started', 'canary_verdict', 'completion'])
    verdict = got['canary_verdict'][0]['annotations']
    assert verdict['summary'].startswith('canary verdict passed') and 'first wave may start' in verdict['next']

    wave = announced_play(fleet, 'rollout.yml', 'wave=50')
    assert wave.returncode == 0, wave.stdout[-4000:] + wave.stderr[-2000:]
    run = run_ids(fleet['ledger'], 'rollout.yml')[-1]
    got = wait_announced(hook, run, ['wave_started', 'batch_passed', 'wave_passed'])
    assert 'wave to 50 %' in got['wave_started'][0]['annotations']['summary']
    assert 'wave to 50 %' in got['wave_passed'][0]['annotations']['summary']
    assert 'next wave' in got['wave_passed'][0]['annotations']['next']

    pause = announced_play(fleet, 'pause.yml', json.dumps({'reason': 'change freeze, see token=tok-4ann-secret'}))
    assert pause.returncode == 0, pause.stdout[-4000:] + pause.stderr[-2000:]
    run = run_ids(fleet['ledger'], 'pause.yml')[-1]
    got = wait_announced(hook, run, ['pause'])
    assert set(got) == {'pause'}          # a pause run's start and end are no news, its pause is
    note = got['pause'][0]['annotations']
    assert 'migration paused by' in note['summary'] and 'change freeze' in note['summary']
    assert 'tok-4ann-secret' not in note['summary'] and 'resume' in note['next']

    resume = announced_play(fleet, 'resume.yml', json.dumps({'reason': 'freeze over'}))
    assert resume.returncode == 0, resume.stdout[-4000:] + resume.stderr[-2000:]
    got = wait_announced(hook, run_ids(fleet['ledger'], 'resume.yml')[-1], ['resume'])
    assert 'migration resumed by' in got['resume'][0]['annotations']['summary']

    # Each event is its own notification, each announcement once; none went to another receiver.
    alerts = hook.alerts('MigrationAnnouncement', status='firing')
    ids = [a['labels']['event_id'] for a in alerts]
    assert len(ids) == len(set(ids)), ids
    assert all(a['annotations']['summary'] and a['annotations']['next'] for a in alerts)
    assert all(len(n['alerts']) == 1 for n in hook.notifications)
    assert not fleet['page'].alerts('MigrationAnnouncement')
    assert_no_secret(fleet, canary.stdout, wave.stdout, pause.stdout, resume.stdout)
    assert 'tok-4ann-secret' not in json.dumps(hook.notifications)
    print('\n' + '\n'.join('%s: %s -- next: %s' % (a['labels']['announcement'], a['annotations']['summary'],
                                                   a['annotations']['next']) for a in alerts))


def test_an_unreachable_alertmanager_fails_no_run(fleet):
    """The next wave (to 75 %) with announcements to an address nobody answers: it runs as without them, warns once,
    records it once, and nothing of it reaches the channel."""
    url = 'http://announcer:%s@127.0.0.1:9' % AM_SECRET
    wave = announced_play(fleet, 'rollout.yml', 'wave=75', url=url)
    assert wave.returncode == 0, wave.stdout[-4000:] + wave.stderr[-2000:]
    output = wave.stdout + wave.stderr
    assert output.count('announcement not sent') == 1, output[-3000:]
    assert AM_SECRET not in output
    run = run_ids(fleet['ledger'], 'rollout.yml')[-1]
    with sqlite3.connect(fleet['ledger']) as conn:
        failed = conn.execute("SELECT data FROM ledger_events WHERE kind = 'announcement_failed' AND run_id = ?",
                              (run,)).fetchall()
        outcome = conn.execute('SELECT outcome FROM ledger_runs WHERE id = ?', (run,)).fetchone()[0]
    assert len(failed) == 1 and outcome == 'ok'
    data = json.loads(failed[0][0])
    assert data['kinds'] == ['wave_started'] and AM_SECRET not in json.dumps(data)
    assert announcements_of(fleet['announce'], run) == {}
    print('wave to 75 %% with an unreachable Alertmanager: %.1f s' % wave.seconds)


def test_a_halted_wave_is_announced_with_what_comes_next(fleet):
    """iroh errors on the last hosts: the gate after their batch fails, the migration halts, the policy acts on the
    batch, and the halt, what was done and the run's end reach the channel, each saying what comes next."""
    hook, stack = fleet['announce'], fleet['stack']
    stack.fault('transport', transport='iroh', error_rate=0.6, hosts=stack.host_names[-1:])
    try:
        wave = announced_play(fleet, 'rollout.yml', 'wave=100')
    finally:
        stack.clear_faults()
    assert wave.returncode != 0, wave.stdout[-4000:]
    run = run_ids(fleet['ledger'], 'rollout.yml')[-1]
    got = wait_announced(hook, run, ['wave_started', 'halt', 'rollback', 'run_halted'])
    halt = got['halt'][0]['annotations']
    assert halt['summary'].startswith('migration HALTED by') and 'resume --ack' in halt['next']
    assert 'ended HALTED' in got['run_halted'][0]['annotations']['summary']
    assert_no_secret(fleet, wave.stdout, wave.stderr)
    for kind in ('halt', 'rollback', 'run_halted'):
        note = got[kind][0]['annotations']
        print('%s: %s -- next: %s' % (kind, note['summary'], note['next']))


def test_the_clis_pause_and_resume_are_announced_like_the_playbooks(fleet):
    """The CLI drives pause.yml / resume.yml through ansible-runner, so the same callback announces them: an
    operator's `ant-network-migration pause` reaches the channel as a pause run does (here after the halt above:
    resume --ack clears it)."""
    hook = fleet['announce']
    cli = str(Path(sys.executable).parent / 'ant-network-migration')
    env = dict(ansible_env(fleet['ledger']), ANT_MIGRATION_INVENTORY=str(fleet['inv']), ANT_MIGRATION_ANNOUNCE='true',
               ANT_MIGRATION_ALERTMANAGER_URL=fleet['am_url'],
               PATH='%s:%s' % (Path(sys.executable).parent, os.environ.get('PATH', '')))
    paused = subprocess.run([cli, 'pause', '--reason', 'operator on call hand-over', '--operator', 'ivy'],
                            capture_output=True, text=True, env=env, timeout=300)
    assert paused.returncode == 0, paused.stdout[-3000:] + paused.stderr[-2000:]
    got = wait_announced(hook, run_ids(fleet['ledger'], 'pause.yml')[-1], ['pause'])
    assert 'migration paused by ivy' in got['pause'][0]['annotations']['summary'], got['pause'][0]['annotations']
    resumed = subprocess.run([cli, 'resume', '--ack', '--operator', 'ivy'], capture_output=True, text=True, env=env,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    got = wait_announced(hook, run_ids(fleet['ledger'], 'resume.yml')[-1], ['resume'])
    assert 'migration resumed by ivy' in got['resume'][0]['annotations']['summary'], got['resume'][0]['annotations']
    assert_no_secret(fleet, paused.stdout, paused.stderr, resumed.stdout, resumed.stderr)
