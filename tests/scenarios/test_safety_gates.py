"""The safety net under faults at the moments that matter, through real ansible-playbook runs
(issue 11, findings 2-5): warnings fail one-evaluation gates, a killed controller leaves no
orphan switching, a monitoring outage freezes instead of rolling back, rollback reports are exact.

One simulated fleet (4 hosts x 4 nodes) and its Prometheus for the module; every test starts from
a libp2p-only fleet, no faults and a ledger of its own.
"""

from __future__ import annotations

import itertools
import os
import signal
import time

import pytest
from scenario_harness import Fleet, hosts_in

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.controller import controller_processes

LIBP2P = 'libp2p_only'
DUAL = 'dual_stack'
IROH_PRIMARY = 'iroh_primary'
NO_CANARY = 'wave_require_canary=false'
IROH_P95_WINDOW = 'min_over_time(transport:ant_transport_request_duration_seconds:p95{transport="iroh"}[10s])'
_ledgers = itertools.count()


@pytest.fixture(scope='module')
def shared_fleet(tmp_path_factory):
    # 40 requests/s a node: a lone dual-stack node (the killed controller's test leaves one) sends 20 on iroh,
    # 200 in the 10 s rate window, well above the rules' floor of 100 a point needs; at the default 20/s it sent
    # exactly the floor, and the re-run's pre-wave gate was inconclusive (fail closed) about half the time.
    with Fleet(tmp_path_factory.mktemp('gates'), hosts=4, nodes_per_host=4, ready_delay=1.0,
               request_rate=40.0) as fleet:
        yield fleet


@pytest.fixture
def fleet(shared_fleet):
    """The shared fleet, reset: Prometheus up, no faults, every node libp2p_only, a fresh ledger."""
    f = shared_fleet
    f.stack.clear_faults()
    _restore_prometheus(f)
    f.ledger_path = f.directory / ('ledger-%d.sqlite3' % next(_ledgers))
    if set(f.modes().values()) != {LIBP2P}:
        back = f.play('rollback.yml', 'rollback_strategy=fast')
        assert back.rc == 0, back.tail()
        f.ledger_path = f.directory / ('ledger-%d.sqlite3' % next(_ledgers))
    assert set(f.modes().values()) == {LIBP2P}
    f.wait_ready(timeout=90)
    return f


def _restore_prometheus(fleet):
    if not _prometheus_up(fleet):
        fleet.stack.start_prometheus()
        fleet.stack.wait_targets_up(timeout=90)
        fleet.wait_value('count_over_time(avg(instance:ant_partition_risk:ratio)[12s:2s])', lambda v: v >= 6,
                         timeout=120, what='recording rules evaluated over a full gate window again')


def _prometheus_up(fleet):
    try:
        return fleet.stack.query_value('count(up)') is not None
    except Exception:  # pylint: disable=broad-except
        return False



def rollback_event(fleet):
    outcomes = [e['data'] for e in fleet.events(kinds=['rollback']) if 'outcome' in e['data']]
    assert outcomes, fleet.events(limit=30)
    return outcomes[0]


# -- finding 2: every severity can fail every gate asked to judge it -------------------------------------------


def test_a_warning_fails_the_one_evaluation_wave_gate(fleet):
    """A 2 s iroh p95 (a warning rule: 2 consecutive failures) on the hosts of one batch fails the wave
    gate although the simulated inventory asks for wave_gate_evaluations: 1."""
    fleet.stack.fault('transport', transport='iroh', latency_ms=2000, mode=DUAL)
    run = fleet.play('rollout.yml', 'wave=100', NO_CANARY, '{"wave_batches": [1]}')
    assert run.rc != 0, run.tail()
    halted = fleet.flags()['halted']
    assert halted and 'iroh_latency_spike (warning)' in halted['reason'], halted
    assert halted['cause'] == 'verdict'
    verdicts = [e['data'] for e in fleet.events(kinds=['gate_verdict'])]
    assert verdicts and verdicts[0]['verdict'] == 'fail'
    # A verdict on the nodes: the batch's host went back (policy rollback); no second batch started.
    assert set(fleet.modes().values()) == {LIBP2P}
    ledger = fleet.ledger()
    try:
        touched = {row['host'] for row in ledger.history(limit=1000) if row['to_state'] == 'dual_stack_testing'}
    finally:
        ledger.close()
    assert len(touched) == 1, touched


def test_gradual_rollback_goes_on_while_a_warning_is_active(fleet):
    run = fleet.play('rollout.yml', 'wave=100', NO_CANARY, '{"wave_batches": ["100%"]}')
    assert run.rc == 0, run.tail()
    fleet.stack.fault('transport', transport='iroh', latency_ms=2000)
    fleet.wait_value(IROH_P95_WINDOW, lambda v: v > 0.5, timeout=90, what='iroh p95 above 500 ms for 10 s')
    rollback = fleet.play('rollback.yml', 'rollback_strategy=gradual', '{"rollback_batches": [1]}',
                          'rollback_pause_seconds=1')
    assert rollback.rc == 0, rollback.tail()
    assert 'the problem is resolved' not in rollback.output
    assert not fleet.events(kinds=['rollback_stopped_early'])
    assert set(fleet.modes().values()) == {LIBP2P}
    report = rollback_event(fleet)
    assert report['outcome'] == 'succeeded'
    assert sorted(report['rolled_back_hosts']) == sorted(fleet.stack.host_names)
    assert report['not_rolled_back_hosts'] == [] and report['remaining_hosts'] == []


# -- finding 5: rollback reports say exactly which hosts were and were not rolled back ------------------------


def test_gradual_rollback_that_stops_early_reports_the_rest(fleet):
    run = fleet.play('rollout.yml', 'wave=100', NO_CANARY, '{"wave_batches": ["100%"]}')
    assert run.rc == 0, run.tail()
    rollback = fleet.play('rollback.yml', 'rollback_strategy=gradual', '{"rollback_batches": [1]}',
                          'rollback_pause_seconds=1')
    assert rollback.rc == 0, rollback.tail()
    back = [h for h in fleet.stack.host_names if h not in hosts_in(fleet, DUAL)]
    still = hosts_in(fleet, DUAL)
    assert len(back) == 1 and len(still) == 3, fleet.modes()
    stopped = fleet.events(kinds=['rollback_stopped_early'])[0]['data']
    assert stopped['rolled_back_hosts'] == back and sorted(stopped['remaining_hosts']) == still
    report = rollback_event(fleet)
    assert report['outcome'] == 'stopped_early'
    assert report['rolled_back_hosts'] == back
    assert sorted(report['not_rolled_back_hosts']) == still and sorted(report['remaining_hosts']) == still
    assert report['failed_hosts'] == []
    assert 'rolled back 1 of 4 host(s)' in rollback.output and 'stopped_early' in rollback.output


# -- finding 4: an outage is not a verdict ------------------------------------------------------------------


def test_prometheus_lost_mid_wave_halts_and_freezes(fleet):
    proc = fleet.start_play('rollout.yml', 'wave=100', NO_CANARY, '{"wave_batches": [1]}')
    fleet.wait_until(lambda: hosts_in(fleet, DUAL), timeout=180, what='first batch switched')
    fleet.stack.stop_prometheus()
    proc.wait(timeout=600)
    output = fleet.output_of(proc)
    assert proc.returncode != 0, output[-3000:]
    halted = fleet.flags()['halted']
    assert halted and halted['cause'] == 'no_verdict', halted
    assert 'Connection refused' in halted['reason'] and len(halted['reason']) < 300, halted['reason']
    assert '%7B' not in halted['reason'] and 'query=' not in halted['reason']
    assert 'HALTED without a verdict' in output and 'Nothing was rolled back' in output, output[-3000:]
    # Frozen: the switched nodes were not restarted back while nothing watched.
    switched = [n for n, m in fleet.modes().items() if m == DUAL]
    assert switched, fleet.modes()
    freeze = [e['data'] for e in fleet.events(kinds=['rollback'])]
    assert freeze and freeze[0]['strategy'] == 'freeze' and freeze[0]['cause'] == 'no_verdict'
    # Acknowledge for the next test's reset.
    with ledger_lib.open_ledger(str(fleet.ledger_path)) as ledger:
        ledger.resume('scenario-test', ack=True, reason='monitoring back')


def test_prometheus_lost_during_the_canary_soak_freezes_the_canary(fleet):
    """No verdict on the canary is not a failed canary: it stays where it is, and the next canary run
    judges the same hosts (not fresh ones), once the halt is acknowledged."""
    proc = fleet.start_play('canary.yml', 'canary_rollback_drill=false')
    fleet.wait_until(lambda: hosts_in(fleet, DUAL), timeout=180, what='the canary switched')
    canary = hosts_in(fleet, DUAL)
    fleet.wait_ready(timeout=120)
    switched_uptimes = {n: u for n, u in fleet.uptimes().items() if n.split('/')[0] in canary}
    fleet.stack.stop_prometheus()
    proc.wait(timeout=600)
    output = fleet.output_of(proc)
    assert proc.returncode != 0, output[-3000:]
    assert 'could NOT be judged and was FROZEN' in output and 'Nothing was rolled back' in output, output[-3000:]
    verdict = _canary_verdict(fleet)
    assert verdict['verdict'] == 'frozen' and verdict['hosts'] == canary, verdict
    halted = fleet.flags()['halted']
    assert halted and halted['cause'] == 'no_verdict' and 'Connection refused' in halted['reason'], halted
    # Frozen: every canary node still runs dual_stack and was not restarted; the ledger has it unjudged.
    assert hosts_in(fleet, DUAL) == canary
    assert hosts_in(fleet, LIBP2P) == sorted(set(fleet.stack.host_names) - set(canary))
    after = fleet.uptimes()
    assert all(after[n] >= u for n, u in switched_uptimes.items()), 'a frozen canary node was restarted'
    states = fleet.ledger_states()
    assert {states[n] for n in switched_uptimes} == {'dual_stack_testing'}, states
    assert not [row for row in _history(fleet) if row['to_state'] == 'rolled_back']

    # Monitoring back, halt acknowledged: the rollout still refuses, the canary has not passed.
    _restore_prometheus(fleet)
    with ledger_lib.open_ledger(str(fleet.ledger_path)) as ledger:
        ledger.resume('scenario-test', ack=True, reason='monitoring back')
    refused = fleet.play('rollout.yml', 'wave=25')
    assert refused.rc != 0 and 'the canary has not passed' in refused.output, refused.tail()
    assert 'last verdict: frozen' in refused.output, refused.tail()
    # The next canary run judges the same hosts and passes them.
    again = fleet.play('canary.yml', 'canary_rollback_drill=false')
    assert again.rc == 0, again.tail()
    selected = fleet.events(kinds=['canary_selected'])[0]['data']
    assert selected['hosts'] == canary and 'without a verdict' in selected['source'], selected
    assert _canary_verdict(fleet)['verdict'] == 'passed'
    states = fleet.ledger_states()
    assert {states[n] for n in switched_uptimes} == {'dual_stack_stable'}, states
    assert hosts_in(fleet, DUAL) == canary


def test_a_pause_during_the_canary_soak_freezes_the_canary(fleet):
    """A pause is "stop where you are": not a failed canary, nothing rolled back; judged again after resume."""
    proc = fleet.start_play('canary.yml', 'canary_rollback_drill=false')
    fleet.wait_until(lambda: len(_unjudged(fleet)) == 4, timeout=180, what='the canary switched and recorded')
    canary = hosts_in(fleet, DUAL)
    with ledger_lib.open_ledger(str(fleet.ledger_path)) as ledger:
        ledger.set_pause('look at the dashboards first', 'scenario-test')
    proc.wait(timeout=600)
    output = fleet.output_of(proc)
    assert proc.returncode != 0, output[-3000:]
    verdict = _canary_verdict(fleet)
    assert verdict['verdict'] == 'frozen' and 'paused' in verdict['reason'], verdict
    assert hosts_in(fleet, DUAL) == canary and len(_unjudged(fleet)) == 4
    assert not [row for row in _history(fleet) if row['to_state'] == 'rolled_back']
    assert fleet.flags()['halted'] is None
    with ledger_lib.open_ledger(str(fleet.ledger_path)) as ledger:
        ledger.resume('scenario-test')
    again = fleet.play('canary.yml', 'canary_rollback_drill=false')
    assert again.rc == 0, again.tail()
    assert fleet.events(kinds=['canary_selected'])[0]['data']['hosts'] == canary
    assert _canary_verdict(fleet)['verdict'] == 'passed' and _unjudged(fleet) == []


def _unjudged(fleet):
    ledger = fleet.ledger()
    try:
        return [n['node_id'] for n in ledger.unjudged_nodes()]
    finally:
        ledger.close()


def test_the_canary_is_refused_while_nothing_can_judge_it(fleet):
    """Prometheus down before the canary: refused before any node is switched (not switched, then frozen)."""
    uptimes = fleet.uptimes()
    fleet.stack.stop_prometheus()
    run = fleet.play('canary.yml', 'canary_rollback_drill=false')
    assert run.rc != 0, run.tail()
    assert 'The canary was refused before touching any host' in run.output and 'Connection refused' in run.output, \
        run.tail()
    assert set(fleet.modes().values()) == {LIBP2P}
    after = fleet.uptimes()
    assert all(after[n] >= u for n, u in uptimes.items()), 'a node restarted although the canary was refused'
    assert fleet.flags() == {'paused': None, 'halted': None} and _canary_verdict(fleet) is None
    ledger = fleet.ledger()
    try:
        assert ledger.lock() is None
    finally:
        ledger.close()


def test_a_canary_killed_mid_soak_is_judged_again_by_the_next_canary(fleet):
    proc = fleet.start_play('canary.yml', 'canary_rollback_drill=false')
    # The canary's switch is done and recorded: the soak is under way.
    fleet.wait_until(lambda: len(_unjudged(fleet)) == 4, timeout=180, what='the canary switched and recorded')
    canary = hosts_in(fleet, DUAL)
    fleet.kill(proc)  # the controller, mid-soak; its workers (own sessions) finish the task they hold
    # The re-run below starts at once: it waits for them (Ledger.wait_for_gone_controller), and is not
    # refused by the lock they keep (this test failed about one run in two when it was).
    assert _canary_verdict(fleet) is None
    assert len(canary) == 1 and {n.split('/')[0] for n in _unjudged(fleet)} == set(canary)
    again = fleet.play('canary.yml', 'canary_rollback_drill=false')
    assert again.rc == 0, again.tail()
    selected = fleet.events(kinds=['canary_selected'])[0]['data']
    assert selected['hosts'] == canary and 'without a verdict' in selected['source'], selected
    assert _canary_verdict(fleet)['verdict'] == 'passed'
    assert hosts_in(fleet, DUAL) == canary
    assert set(fleet.ledger_states().values()) >= {'dual_stack_stable'}


def _canary_verdict(fleet):
    ledger = fleet.ledger()
    try:
        return ledger.canary_verdict()
    finally:
        ledger.close()


def _history(fleet):
    ledger = fleet.ledger()
    try:
        return ledger.history(limit=1000)
    finally:
        ledger.close()


def test_the_scheduled_rollback_guard_rolls_nothing_back_while_nothing_watches(fleet):
    """rollback_guard.yml (an AWX schedule) treated the gate's failure to reach Prometheus as a critical
    alert and rolled every migrated host back. An outage is not a verdict: nothing moves, the run fails."""
    run = fleet.play('rollout.yml', 'wave=100', NO_CANARY, '{"wave_batches": ["100%"]}')
    assert run.rc == 0, run.tail()
    fleet.wait_ready(timeout=90)
    uptimes = fleet.uptimes()
    fleet.stack.stop_prometheus()
    guard = fleet.play('rollback_guard.yml')
    assert guard.rc != 0, guard.tail()
    assert 'could NOT judge the migrated hosts' in guard.output and 'Connection refused' in guard.output, guard.tail()
    assert set(fleet.modes().values()) == {DUAL}
    after = fleet.uptimes()
    assert all(after[n] >= u for n, u in uptimes.items()), 'a node was restarted while nothing watched'
    assert not fleet.events(kinds=['rollback_started'])


# -- finding 3: controller death is survivable --------------------------------------------------------------


@pytest.mark.parametrize('stage', [DUAL, IROH_PRIMARY])
def test_killed_controller_leaves_no_orphan_switching_and_the_rerun_judges(fleet, stage):
    """At any stage: a rollout to dual_stack, or a promote to iroh_primary (the re-run must gate the
    nodes switched without a verdict there too, although their ledger state is not a "testing" one)."""
    playbook, extra = 'rollout.yml', [NO_CANARY]
    if stage == IROH_PRIMARY:
        ready = fleet.play('rollout.yml', 'wave=100', NO_CANARY, '{"wave_batches": ["100%"]}')
        assert ready.rc == 0, ready.tail()
        fleet.wait_ready(timeout=90)
        playbook, extra = 'promote.yml', ['stage=iroh_primary']
    before = dict(fleet.modes())
    proc = fleet.start_play(playbook, 'wave=100', *extra, '{"wave_batches": [1]}',
                            'wave_node_batch_size=1', 'wave_node_interval_ms=0')
    # Kill the controller alone (not its process group) while the first host's worker is mid-host:
    # its first node switched, the others not yet.
    fleet.wait_until(lambda: any(m == stage for m in fleet.modes().values()), timeout=180,
                     what='a first node switched')
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    try:
        _orphan_checks(fleet, stage, playbook, extra, before)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the dead run is left
        except ProcessLookupError:
            pass


def _orphan_checks(fleet, stage, playbook, extra, before):
    at_kill = {n for n, m in fleet.modes().items() if m == stage}
    host = sorted(at_kill)[0].split('/')[0]
    # The worker notices between two node batches, stops and records what it switched.
    fleet.wait_until(lambda: fleet.events(kinds=['orphan_stopped']), timeout=120, what='the orphan worker stopped')
    stopped = fleet.events(kinds=['orphan_stopped'])[0]['data']
    assert stopped['host'] == host and stopped['not_switched'], stopped
    after = {n for n, m in fleet.modes().items() if m == stage}
    # At most the node batch in flight at the kill completed; the rest of the host was not touched.
    assert at_kill <= after and len(after - at_kill) <= 1, (at_kill, after)
    assert len(after) < 4, 'the worker switched the whole host after its controller died'
    # Nothing changes any more (several node switch times).
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert {n for n, m in fleet.modes().items() if m == stage} == after
        time.sleep(0.5)
    ledger = fleet.ledger()
    try:
        unjudged = {n['node_id'] for n in ledger.unjudged_nodes()}
    finally:
        ledger.close()
    assert unjudged == after, (unjudged, after)

    # The re-run takes the dead controller's lock over, judges the switched-not-judged nodes first.
    rerun = fleet.play(playbook, 'wave=100', *extra, '{"wave_batches": ["100%"]}')
    assert rerun.rc == 0, rerun.tail()
    verdicts = [e['data'] for e in fleet.events(kinds=['gate_verdict'])]
    judged = [v for v in verdicts if v.get('scope') == [host]]
    assert judged and judged[-1]['verdict'] == 'pass', verdicts
    marks = [e['data'] for e in fleet.events(kinds=['nodes_judged'])
             if 'without a verdict' in (e['data'].get('reason') or '')]
    assert len(marks) == 1 and set(marks[0]['nodes']) == after, marks
    assert set(fleet.modes().values()) == {stage}
    ledger = fleet.ledger()
    try:
        assert ledger.unjudged_nodes() == []
    finally:
        ledger.close()
    if stage == DUAL:
        assert {row['node_id'] for row in _history(fleet) if row['to_state'] == 'dual_stack_stable'
                and 'without a verdict' in (row['reason'] or '')} == after
    else:
        assert set(before.values()) == {DUAL}


def test_a_fast_rollback_whose_controller_is_killed_is_finished_by_the_next_one(fleet):
    """The rollback is the promise of last resort: a controller killed in the middle of it (OOM, a lost
    session) must not leave the fleet half back or the lock stuck. Its workers finish the hosts in flight
    and end (they hold its lock until then, and do not wait for ever on the dead controller); the next
    rollback takes the lock over and brings every node back."""
    forward = fleet.play('rollout.yml', 'wave=100', NO_CANARY, '{"wave_batches": ["100%"]}')
    assert forward.rc == 0, forward.tail()
    fleet.wait_ready(timeout=90)
    proc = fleet.start_play('rollback.yml', 'rollback_strategy=fast')
    fleet.wait_until(lambda: LIBP2P in fleet.modes().values(), timeout=180, what='a first node rolled back')
    os.kill(proc.pid, signal.SIGKILL)  # the controller alone: its workers live on
    proc.wait(timeout=30)
    try:
        # At once: the re-run waits for the dead run's workers (they hold its lock), then takes it over.
        rerun = fleet.play('rollback.yml', 'rollback_strategy=fast')
        assert rerun.rc == 0, rerun.tail()
        assert controller_processes(proc.pid) == []
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert set(fleet.modes().values()) == {LIBP2P}
    recovered = fleet.events(kinds=['lock_recovered'])
    assert recovered and 'is gone' in recovered[-1]['data']['reason'], recovered
    assert set(fleet.ledger_states().values()) <= {'rolled_back', 'libp2p_only'}, fleet.ledger_states()
