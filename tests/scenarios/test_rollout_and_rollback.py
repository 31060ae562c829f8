"""Rollout and rollback through real ansible-playbook runs against the simulated fleet.

Covers the seed's production scenarios 2 and 3 and the operator situations around them: bad input,
a wave below current progress, pause mid-wave, Prometheus down at a gate, the rollback SLA.
"""

from __future__ import annotations

import pytest

LIBP2P = 'libp2p_only'
DUAL = 'dual_stack'

NO_CANARY = 'wave_require_canary=false'


def hosts_in_mode(fleet, mode):
    modes = fleet.modes()
    hosts = {}
    for node, m in modes.items():
        hosts.setdefault(node.split('/')[0], set()).add(m)
    return sorted(h for h, ms in hosts.items() if ms == {mode})


@pytest.mark.parametrize('extra,expected', [
    (['wave=150'], "wave='150' is not accepted (more than 100): use an integer from 1 to 100"),
    (['wave=-1'], "wave='-1' is not accepted: use an integer from 1 to 100"),
    (['wave=abc'], "wave='abc' is not accepted: use an integer from 1 to 100"),
    (['wave=25', '{"wave_batches": []}'], 'wave_batches=[] is not accepted (empty): use a list of batch sizes'),
])
def test_bad_wave_input_is_refused_and_touches_nothing(fleet, extra, expected):
    before = fleet.uptimes()
    run = fleet.play('rollout.yml', *extra)
    assert run.rc != 0
    assert expected in run.output, run.tail()
    assert set(fleet.modes().values()) == {LIBP2P}
    # No node restarted: uptimes only grew.
    after = fleet.uptimes()
    assert all(after[n] >= before[n] for n in before)


@pytest.mark.parametrize('extra,expected', [
    (['strategy=sideways'], "strategy='sideways' is not accepted: use one of fast, gradual"),
    (['target=iroh_only'], "target='iroh_only' is not accepted: use one of libp2p_only, dual_stack"),
])
def test_bad_rollback_input_is_refused(fleet, extra, expected):
    run = fleet.play('rollback.yml', *extra)
    assert run.rc != 0
    assert expected in run.output, run.tail()


def test_rollout_refuses_without_a_passed_canary(fleet):
    run = fleet.play('rollout.yml', 'wave=25')
    assert run.rc != 0
    assert 'the canary has not passed (no canary verdict recorded)' in run.output, run.tail()
    assert set(fleet.modes().values()) == {LIBP2P}


def test_wave_migrates_whole_hosts_then_fast_rollback_inside_sla(fleet):
    """Scenario 3 (rapid rollback): half the fleet dual-stack, fast rollback returns all of it."""
    run = fleet.play('rollout.yml', 'wave=50', NO_CANARY)
    assert run.rc == 0, run.tail()
    dual_hosts = hosts_in_mode(fleet, DUAL)
    assert dual_hosts == ['sim-host-01', 'sim-host-02', 'sim-host-03']
    states = fleet.ledger_states()
    assert sorted(n for n, s in states.items() if s == 'dual_stack_stable') == sorted(
        '%s/antnode%d' % (h, i) for h in dual_hosts for i in range(1, 5))

    # A wave lower than current progress does nothing and says so.
    again = fleet.play('rollout.yml', 'wave=25', NO_CANARY)
    assert again.rc == 0, again.tail()
    assert 'nothing to do: 50.00 % of the fleet' in again.output

    rollback = fleet.play('rollback.yml', 'strategy=fast', 'target=libp2p_only', 'reason=scenario 3')
    assert rollback.rc == 0, rollback.tail()
    assert set(fleet.modes().values()) == {LIBP2P}
    for host in dual_hosts:
        assert all(n['status'] == 'Running' for n in fleet.antctl_modes(host).values())
    events = fleet.events(kinds=['rollback'])
    assert events, 'rollback not recorded'
    done = events[0]
    assert done['data']['strategy'] == 'fast' and done['data']['outcome'] == 'succeeded'
    assert float(done['data']['seconds']) < 300, done
    states = fleet.ledger_states()
    assert all(states['%s/antnode%d' % (h, i)] == 'rolled_back' for h in dual_hosts for i in range(1, 5))
    # Metrics agree: no node reports dual_stack any more.
    fleet.wait_value('sum(ant_node_transport_mode{mode="dual_stack"})', lambda v: v == 0, timeout=30)


def set_modes(fleet, hosts, mode):
    """Switch whole hosts the way the collection does, straight through the simulator (no ledger)."""
    for host in hosts:
        fleet.stack.set_mode(host, [n['service_name'] for n in fleet.stack.antctl_status(host)['nodes']], mode)
    fleet.wait_until(lambda: all(n['mode'] == mode and n['ready'] for n in fleet.stack.fleet()['nodes']
                                 if n['host'] in hosts), timeout=120, what='hosts ready in %s' % mode)


def newest(fleet, kind):
    events = fleet.events(kinds=[kind])
    assert events, '%s not recorded' % kind
    return events[0]['data']


def test_fast_rollback_reads_the_fleet_once_and_reports_exact_hosts(fleet):
    """The fast rollback has no discover play: the switch itself finds the hosts beyond the target.

    A host already at the target is not restarted and is not in the report; a host whose switch
    fails before it could read its nodes is reported as failed and not rolled back (it could hide
    nodes beyond the target); the next run takes only the host still beyond it.
    """
    migrated = ['sim-host-01', 'sim-host-02']
    set_modes(fleet, migrated, DUAL)
    broken = fleet.inventory_dir / 'host_vars' / 'sim-host-02.yml'
    broken.parent.mkdir()
    broken.write_text('ant_antctl_path: /nonexistent/antctl\n')
    before = fleet.uptimes()

    run = fleet.play('rollback.yml', 'rollback_strategy=fast', 'target=libp2p_only', 'reason=exact report')
    assert run.rc != 0, run.tail()
    assert "Read every node's transport mode" not in run.output  # no discover play
    report = newest(fleet, 'rollback')
    assert report['hosts'] == migrated
    assert report['rolled_back_hosts'] == ['sim-host-01']
    assert report['not_rolled_back_hosts'] == ['sim-host-02'] and report['failed_hosts'] == ['sim-host-02']
    assert report['remaining_hosts'] == [] and report['outcome'] == 'failed'
    started = newest(fleet, 'rollback_started')
    # sim-host-02's nodes could not be read: only sim-host-01's are counted.
    assert started['hosts'] == migrated and started['nodes'] == 4 and started['strategy'] == 'fast'
    assert float(started['started_at']) > 0
    after = fleet.uptimes()
    untouched = [n for n in before if not n.startswith(('sim-host-01/', 'sim-host-02/'))]
    assert untouched and all(after[n] >= before[n] for n in untouched), 'a host already at the target restarted'
    modes = fleet.modes()
    assert {modes[n] for n in modes if n.startswith('sim-host-01/')} == {LIBP2P}
    assert {modes[n] for n in modes if n.startswith('sim-host-02/')} == {DUAL}
    # The ledger never saw these nodes leave libp2p_only (no read before the switch): the switch saw them.
    states = fleet.ledger_states()
    assert all(states['sim-host-01/antnode%d' % i] == 'rolled_back' for i in range(1, 5)), states

    broken.unlink()
    before = fleet.uptimes()
    again = fleet.play('rollback.yml', 'rollback_strategy=fast', 'target=libp2p_only')
    assert again.rc == 0, again.tail()
    report = newest(fleet, 'rollback')
    assert report['hosts'] == ['sim-host-02'] and report['rolled_back_hosts'] == ['sim-host-02']
    assert report['not_rolled_back_hosts'] == [] and report['outcome'] == 'succeeded'
    assert newest(fleet, 'rollback_started')['nodes'] == 4
    after = fleet.uptimes()
    assert all(after[n] >= before[n] for n in before if not n.startswith('sim-host-02/'))
    assert set(fleet.modes().values()) == {LIBP2P}
    assert 'rolled back 1 of 1 host(s) (sim-host-02)' in again.output, again.tail()


def test_partition_after_first_batch_halts_and_rolls_the_wave_back(fleet):
    """Scenario 2: a partition injected after the first batch trips the gate on partition risk."""
    proc = fleet.start_play('rollout.yml', 'wave=100', NO_CANARY, '{"wave_batches": [1, 1]}')
    # Wait until the first batch's host runs dual_stack, then split the fleet in two.
    fleet.wait_until(lambda: hosts_in_mode(fleet, DUAL), timeout=120, what='first batch switched')
    first = hosts_in_mode(fleet, DUAL)
    fleet.stack.fault('partition', hosts=fleet.stack.host_names[:3])
    proc.wait(timeout=600)
    output = fleet.output_of(proc)
    assert proc.returncode != 0, output[-3000:]
    assert 'HALTED' in output and 'network_partition_risk' in output, output[-3000:]
    flags = fleet.flags()
    assert flags['halted'] and 'network_partition_risk' in flags['halted']['reason']
    # Policy rollback: every node of the wave is back on libp2p_only; no third host was touched.
    fleet.stack.clear_faults()
    assert set(fleet.modes().values()) == {LIBP2P}
    assert len(first) == 1
    assert any(e['data'].get('policy') == 'rollback' for e in fleet.events(kinds=['rollback']))
    # No further batch started: the only host that ever left libp2p_only is the first batch's.
    ledger = fleet.ledger()
    try:
        touched = {row['host'] for row in ledger.history(limit=1000) if row['to_state'] == 'dual_stack_testing'}
    finally:
        ledger.close()
    assert touched == set(first), touched


def test_pause_mid_wave_stops_before_next_batch_then_resume(fleet):
    proc = fleet.start_play('rollout.yml', 'wave=100', NO_CANARY, '{"wave_batches": [1]}')
    fleet.wait_until(lambda: hosts_in_mode(fleet, DUAL), timeout=120, what='first batch switched')
    pause = fleet.play('pause.yml', '{"reason": "maintenance window"}', 'operator=alice')
    assert pause.rc == 0, pause.tail()
    proc.wait(timeout=600)
    output = fleet.output_of(proc)
    assert proc.returncode != 0
    assert 'PAUSED by alice: maintenance window' in output, output[-3000:]
    stopped_at = hosts_in_mode(fleet, DUAL)
    assert 1 <= len(stopped_at) <= 2, stopped_at
    assert not fleet.flags()['halted'], 'a pause is not a halt'
    # Nodes already switched stay where they are (no rollback on pause).
    refused = fleet.play('rollout.yml', 'wave=100', NO_CANARY)
    assert refused.rc != 0 and 'the migration is paused (maintenance window; by alice' in refused.output
    assert hosts_in_mode(fleet, DUAL) == stopped_at

    resume = fleet.play('resume.yml', 'operator=alice')
    assert resume.rc == 0, resume.tail()
    done = fleet.play('rollout.yml', 'wave=100', NO_CANARY, '{"wave_batches": ["100%"]}')
    assert done.rc == 0, done.tail()
    assert set(fleet.modes().values()) == {DUAL}


def test_prometheus_down_at_a_gate_fails_closed(fleet):
    fleet.stack.stop_prometheus()
    run = fleet.play('rollout.yml', 'wave=50', NO_CANARY)
    assert run.rc != 0
    assert 'Prometheus' in run.output and 'unreachable' in run.output.lower(), run.tail()
    # The fleet-wide gate runs before any host is touched.
    assert set(fleet.modes().values()) == {LIBP2P}


def test_gradual_rollback_in_batches(fleet):
    run = fleet.play('rollout.yml', 'wave=50', NO_CANARY, '{"wave_batches": ["100%"]}')
    assert run.rc == 0, run.tail()
    rollback = fleet.play('rollback.yml', 'strategy=gradual', '{"rollback_batches": [1]}', 'rollback_pause_seconds=1',
                          'rollback_stop_when_resolved=false')
    assert rollback.rc == 0, rollback.tail()
    assert set(fleet.modes().values()) == {LIBP2P}
    switch_task = 'TASK [autonomi.network_migration.rollback : Switch every node back to libp2p_only]'
    assert rollback.output.count(switch_task) == 3, 'one batch per host expected'


def test_rollback_guard_changes_nothing_on_a_healthy_fleet(fleet):
    run = fleet.play('rollout.yml', 'wave=25', NO_CANARY)
    assert run.rc == 0, run.tail()
    before = fleet.modes()
    guard = fleet.play('rollback_guard.yml')
    assert guard.rc == 0, guard.tail()
    assert 'nothing to do' in guard.output
    # Nothing to do is all it says: no rollback plan, no "rolled back 0 of 0".
    assert 'rolled back 0 of' not in guard.output and 'fast rollback to' not in guard.output, guard.tail()
    assert fleet.modes() == before


def test_rollback_guard_rolls_back_hosts_with_a_critical_alert(fleet):
    run = fleet.play('rollout.yml', 'wave=25', NO_CANARY)
    assert run.rc == 0, run.tail()
    migrated = hosts_in_mode(fleet, DUAL)
    fleet.stack.fault('transport', transport='iroh', error_rate=0.3, mode=DUAL)
    # The guard acts on a critical alert that fires (breached for its whole `for` window).
    fleet.wait_value('count(ALERTS{alertname="HighErrorRateIroh", alertstate="firing"})', lambda v: v >= 1,
                     timeout=90)
    guard = fleet.play('rollback_guard.yml')
    assert guard.rc == 0, guard.tail()
    assert set(fleet.modes().values()) == {LIBP2P}
    events = fleet.events(kinds=['rollback'])
    assert events and events[0]['data']['trigger'] == 'guard'
    assert sorted(events[0]['data']['hosts']) == migrated


def test_rollback_guard_rolls_back_only_the_host_the_alert_names(fleet):
    """A critical alert on one of four migrated hosts rolls back that host, not the healthy ones."""
    run = fleet.play('rollout.yml', 'wave=60', NO_CANARY, '{"wave_batches": [4]}')
    assert run.rc == 0, run.tail()
    migrated = hosts_in_mode(fleet, DUAL)
    assert len(migrated) == 4, migrated
    faulty = migrated[1]
    fleet.stack.fault('transport', transport='iroh', error_rate=0.5, hosts=[faulty])
    fleet.wait_value('count(ALERTS{alertname="HighErrorRateIroh", alertstate="firing"})', lambda v: v >= 1,
                     timeout=90)
    guard = fleet.play('rollback_guard.yml')
    assert guard.rc == 0, guard.tail()
    assert hosts_in_mode(fleet, DUAL) == [h for h in migrated if h != faulty]
    assert faulty in hosts_in_mode(fleet, LIBP2P)
    event = fleet.events(kinds=['rollback'])[0]['data']
    assert event['trigger'] == 'guard' and event['hosts'] == [faulty] and event['outcome'] == 'succeeded'
    assert 'high_error_rate_iroh on %s' % faulty in guard.output, guard.tail()


def test_iroh_only_is_refused_while_libp2p_only_nodes_remain(fleet):
    run = fleet.play('rollout.yml', 'wave=25', NO_CANARY)
    assert run.rc == 0, run.tail()
    promote = fleet.play('promote.yml', 'stage=iroh_primary', 'wave=25')
    assert promote.rc == 0, promote.tail()
    final = fleet.play('finalize.yml')
    assert final.rc != 0
    assert 'iroh_only is refused while' in final.output and 'still run libp2p_only' in final.output, final.tail()
    assert 'iroh_only' not in set(fleet.modes().values())


def test_wave_refused_when_fast_rollback_would_exceed_the_sla(fleet):
    run = fleet.play('rollout.yml', 'wave=50', NO_CANARY, 'wave_rollback_sla_seconds=5')
    assert run.rc != 0
    assert 'over the 5 s SLA' in run.output, run.tail()
    assert set(fleet.modes().values()) == {LIBP2P}


def test_reconcile_reports_and_fixes_a_node_restarted_by_hand(fleet):
    run = fleet.play('rollout.yml', 'wave=25', NO_CANARY)
    assert run.rc == 0, run.tail()
    host = hosts_in_mode(fleet, DUAL)[0]
    # An operator restarts one node by hand in libp2p_only, behind the rollout's back.
    fleet.stack.set_mode(host, 'antnode2', LIBP2P)
    fleet.wait_until(lambda: fleet.modes()['%s/antnode2' % host] == LIBP2P, timeout=30, what='manual switch')
    fleet.wait_ready()

    report = fleet.play('reconcile.yml')
    assert report.rc == 0, report.tail()
    assert '1 drift(s) between the ledger and the hosts (report only' in report.output, report.tail()
    assert fleet.ledger_states()['%s/antnode2' % host] == 'dual_stack_stable'

    fixed = fleet.play('reconcile.yml', 'fix=true')
    assert fixed.rc == 0, fixed.tail()
    assert '1 fixed in the ledger' in fixed.output, fixed.tail()
    assert fleet.ledger_states()['%s/antnode2' % host] in ('rolled_back', 'libp2p_only')
    again = fleet.play('reconcile.yml')
    assert 'the ledger agrees with the' in again.output, again.tail()
