"""Rollback and budget policies that do what they say (issue 26), through real ansible-playbook runs on a
simulated fleet (4 hosts x 4 nodes) and its Prometheus with the collection's rules.

- a gradual rollback with faults on two of four hosts rolls those back first and stops when the rules
  that roll back resolve;
- a rollout after a rollback to libp2p_only asks for a new canary;
- the phase, the stage and the ETA at each step of a lifecycle (canary, a wave, a promote) are what the fleet is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scenario_harness import ROOT, Fleet, hosts_in

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes

LIBP2P, DUAL = 'libp2p_only', 'dual_stack'
NO_CANARY = 'wave_require_canary=false'
NO_DRILL = 'canary_rollback_drill=false'
CLI = str(Path(sys.executable).parent / 'ant-network-migration')


@pytest.fixture(scope='module')
def shared_fleet(tmp_path_factory):
    with Fleet(tmp_path_factory.mktemp('policies'), hosts=4, nodes_per_host=4, ready_delay=1.0) as fleet:
        yield fleet


@pytest.fixture
def fleet(shared_fleet):
    """The module's fleet as good as fresh, with a ledger of the test's own."""
    return shared_fleet.reset()



def test_a_gradual_rollback_takes_the_two_faulty_hosts_first_and_stops_when_the_rules_resolve(fleet):
    run = fleet.play('rollout.yml', 'wave=100', NO_CANARY, '{"wave_batches": ["100%"]}')
    assert run.rc == 0, run.tail()
    assert hosts_in(fleet, DUAL) == fleet.stack.host_names
    faulty = [fleet.stack.host_names[1], fleet.stack.host_names[3]]
    fleet.stack.fault('transport', transport='iroh', error_rate=0.6, hosts=faulty)
    fleet.wait_until(lambda: any(a['labels'].get('alertname') == 'HighErrorRateIroh' and a.get('state') == 'firing'
                                 for a in fleet.stack.prometheus_alerts()),
                     timeout=120, what='the iroh error-rate alert firing (what starts a rollback)')

    rollback = fleet.play('rollback.yml', 'rollback_strategy=gradual', '{"rollback_batches": [1]}',
                          'rollback_pause_seconds=1', 'reason=iroh errors on two hosts')
    assert rollback.rc == 0, rollback.tail()
    # The plan named the faulty hosts first, worst figure first; they went back, the healthy two stayed.
    assert 'the hosts the alert names first' in rollback.output, rollback.tail()
    # The pause between batches is the plan's (the rules' 10 s window plus a 2 s evaluation), not the 1 s asked.
    assert 'Pausing for 12 seconds' in rollback.output and 'Pausing for 1 seconds' not in rollback.output
    assert hosts_in(fleet, DUAL) == sorted(set(fleet.stack.host_names) - set(faulty)), rollback.tail(120)
    with fleet.ledger() as book:
        report = [e['data'] for e in book.events(kinds=['rollback']) if 'outcome' in e['data']][0]
        stopped = book.events(kinds=['rollback_stopped_early'])
    assert report['outcome'] == 'stopped_early', report
    assert sorted(report['rolled_back_hosts']) == faulty and report['failed_hosts'] == []
    assert sorted(report['remaining_hosts']) == sorted(set(fleet.stack.host_names) - set(faulty))
    assert stopped and any('all rules pass' in (e['data'].get('gate') or '') for e in stopped), stopped
    fleet.stack.clear_faults()
    back = fleet.play('rollback.yml', 'rollback_strategy=fast')
    assert back.rc == 0, back.tail()


def test_a_rollout_after_a_rollback_asks_for_a_new_canary(fleet):
    canary = fleet.play('canary.yml', NO_DRILL)
    assert canary.rc == 0, canary.tail()
    wave = fleet.play('rollout.yml', 'wave=50')
    assert wave.rc == 0, wave.tail()
    rollback = fleet.play('rollback.yml', 'rollback_strategy=fast', 'reason=back to libp2p')
    assert rollback.rc == 0, rollback.tail()
    assert 'the next rollout asks for a new canary' in rollback.output, rollback.tail()
    with fleet.ledger() as book:
        assert book.canary_verdict()['verdict'] == 'invalidated'
    before = fleet.modes()
    refused = fleet.play('rollout.yml', 'wave=50')
    assert refused.rc != 0, refused.tail()
    assert 'canary' in refused.output and 'invalidated' in refused.output, refused.tail()
    assert fleet.modes() == before                        # nothing was touched
    # A new canary clears the way.
    again = fleet.play('canary.yml', NO_DRILL)
    assert again.rc == 0, again.tail()
    assert fleet.play('rollout.yml', 'wave=50').rc == 0
    back = fleet.play('rollback.yml', 'rollback_strategy=fast')
    assert back.rc == 0, back.tail()


def status_json(fleet):
    proc = subprocess.run([CLI, '--ledger', str(fleet.ledger_path), '--prometheus-url', fleet.stack.prometheus_url,
                           'status', '--json'], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def what_the_fleet_is(fleet):
    """Progress, coverage, phase and stage from the simulator's truth (the modes the nodes run)."""
    modes = list(fleet.modes().values())
    migrated = sum(1 for m in modes if m in ('iroh_primary', 'iroh_only'))
    both = sum(1 for m in modes if m in ('dual_stack', 'iroh_primary'))
    percent = round(100.0 * migrated / len(modes), 2)
    stage = max(_modes.mode_index(m) for m in modes + [DUAL])
    return {'progress_percent': percent, 'dual_stack_coverage_percent': round(100.0 * both / len(modes), 2),
            'phase': _modes.phase_for(percent, all_iroh_only=set(modes) == {'iroh_only'}),
            'stage': _modes.MODES[stage],
            'stage_progress_percent': round(100.0 * sum(1 for m in modes if _modes.mode_index(m) >= stage)
                                            / len(modes), 2)}


def test_phase_stage_and_eta_at_each_step_of_a_lifecycle_are_the_fleets(fleet_factory):
    # 8 nodes a host: an iroh_primary host still sends enough libp2p requests (>= 100 in the 10 s window) for the
    # libp2p rule to judge its batch; with 4 it sent ~80 and the promote halted without a verdict (fail closed).
    fleet = fleet_factory(hosts=4, nodes_per_host=8, ready_delay=1.0)
    # A fleet entirely on dual_stack carries too little libp2p traffic for a promote's gate (an open finding);
    # Completed is unit-tested (tests/unit/services/test_policies.py).
    steps = [('canary.yml', NO_DRILL), ('rollout.yml', 'wave=25'), ('rollout.yml', 'wave=50'),
             ('rollback.yml', 'rollback_strategy=fast', 'rollback_keep_canary=true'), ('rollout.yml', 'wave=25'),
             ('promote.yml', 'stage=iroh_primary', 'wave=25')]
    seen = []
    for playbook, *extra in steps:
        run = fleet.play(playbook, *extra)
        assert run.rc == 0, '%s: %s' % (playbook, run.tail())
        progress = status_json(fleet)['progress']
        truth = what_the_fleet_is(fleet)
        assert {k: progress[k] for k in truth} == truth, (playbook, extra, progress)
        remaining = progress['total'] - progress['migrated']
        # An ETA only while nodes remain and some moved forward; none once every node is migrated.
        assert (progress['eta'] is not None) == (remaining > 0 and progress['velocity_nodes_per_hour'] > 0), progress
        seen.append((truth['phase'], truth['stage']))
    assert seen == [('Initialization', DUAL)] * 5 + [('MajorityMigration', 'iroh_primary')], seen
