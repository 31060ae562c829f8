# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gate's state logic with a fake Prometheus: consecutive failures, no data, Prometheus down, ledger."""

from __future__ import annotations

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules as ar
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import gate
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import (
    PrometheusSettings,
    PrometheusUnavailable,
)


class FakePrometheus:
    """Answers the gate's queries from {rule_id: value} (None = no data), counting them."""

    def __init__(self, ruleset, values, targets=12, modes=None, host_values=None, down=False, samples=10):
        self.ruleset = ruleset
        self.values = values
        self.targets = targets
        self.modes = {'dual_stack': 6, 'libp2p_only': 6} if modes is None else modes
        self.host_values = host_values or {}
        self.down = down
        self.samples = samples
        self.queries = 0
        self.settings = PrometheusSettings(url='http://prometheus.invalid:9090')

    def query(self, promql):
        self.queries += 1
        if self.down:
            raise PrometheusUnavailable('Prometheus at http://prometheus.invalid:9090 is unreachable after 3 retries')
        if '"stat", "targets"' in promql:
            out = [{'metric': {'stat': 'targets'}, 'value': self.targets},
                   {'metric': {'stat': 'targets_up'}, 'value': self.targets}]
            return out + [{'metric': {'stat': 'mode', 'mode': m}, 'value': n} for m, n in self.modes.items()]
        for rule in self.ruleset.rules:
            shown = ar.window_query(rule, self.ruleset, self.scope)[0]
            if promql.startswith('label_replace(' + shown):
                value = self.values.get(rule.id)
                if value is None:
                    return []
                return [{'metric': {'stat': 'value'}, 'value': value},
                        {'metric': {'stat': 'samples'}, 'value': self.samples}]
            if promql == ar.rule_promql(rule, self.ruleset, hosts=self.scope.hosts, by=('host',)):
                return [{'metric': {'host': h}, 'value': v} for h, v in self.host_values.get(rule.id, {}).items()]
        raise AssertionError('unexpected query %s' % promql)


@pytest.fixture
def ruleset():
    return ar.load_rules()


HEALTHY = {'high_error_rate_libp2p': 0.002, 'high_error_rate_iroh': 0.002, 'iroh_latency_spike': 0.12,
           'network_partition_risk': 0.0}


def run_gate(client, ruleset, scope=None, evaluations=1, consecutive=None, values_seq=None, **kwargs):
    client.scope = scope or ar.Scope()
    calls = {'n': 0}

    def evaluate():
        if values_seq:
            client.values = values_seq[min(calls['n'], len(values_seq) - 1)]
        calls['n'] += 1
        return ar.evaluate(client, ruleset, client.scope, min_samples=kwargs.get('min_samples', 3))

    run = gate.GateRun(evaluate, evaluations=evaluations, interval=5, consecutive=consecutive,
                       halted=kwargs.get('halted'), sleep=lambda s: None)
    return run.run(), calls['n']


def test_healthy_fleet_passes_with_a_fixed_number_of_queries(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY))
    outcome, _client = run_gate(client, ruleset)
    assert outcome.verdict == 'pass'
    assert [r.verdict for r in outcome.results] == ['pass'] * 4
    assert client.queries == 1 + 4  # scope + one per rule, whatever the fleet size


def test_critical_failure_names_rule_value_excess_and_hosts(ruleset):
    values = dict(HEALTHY, high_error_rate_iroh=0.31)
    per_host = {'sim-host-01': 0.3, 'sim-host-02': 0.32, 'sim-host-03': 0.01}
    client = FakePrometheus(ruleset, values, host_values={'high_error_rate_iroh': per_host})
    scope = ar.Scope(['sim-host-01', 'sim-host-02', 'sim-host-03'])
    outcome, _client = run_gate(client, ruleset, scope=scope)
    assert outcome.verdict == 'fail'
    assert [r.rule.id for r in outcome.tripped] == ['high_error_rate_iroh']
    assert outcome.tripped[0].hosts == {'sim-host-02': 0.32, 'sim-host-01': 0.3}
    assert ('high_error_rate_iroh (critical): 0.31 > 0.05 (+0.26, 6.2x the threshold) over 5m on '
            'sim-host-02 (0.32), sim-host-01 (0.3)') in outcome.reason
    assert client.queries == 1 + 4 + 1  # + the per-host breakdown of the failing rule


def test_warning_needs_two_consecutive_failures(ruleset):
    spike = dict(HEALTHY, iroh_latency_spike=0.8)
    client = FakePrometheus(ruleset, spike)
    outcome, calls = run_gate(client, ruleset, evaluations=3)
    assert outcome.verdict == 'fail' and calls == 2 and outcome.confirmations == 0
    assert 'iroh_latency_spike (warning): 800 ms > 500 ms' in outcome.reason


@pytest.mark.parametrize('evaluations', [1, 2, 3])
def test_every_severity_can_fail_a_gate_of_any_length(ruleset, evaluations):
    """Finding 2: a one-evaluation gate confirms a breaching warning rule instead of passing it."""
    spike = dict(HEALTHY, iroh_latency_spike=0.8)
    client = FakePrometheus(ruleset, spike)
    outcome, calls = run_gate(client, ruleset, evaluations=evaluations)
    assert outcome.verdict == 'fail' and [r.rule.id for r in outcome.tripped] == ['iroh_latency_spike']
    assert calls == max(2, evaluations) if evaluations < 3 else calls == 2
    assert outcome.history[-1]['confirmation'] is (evaluations == 1)
    outcome, calls = run_gate(client, ruleset, evaluations=1, consecutive={'warning': 4})
    assert outcome.verdict == 'fail' and calls == 4 and outcome.confirmations == 3


def test_a_confirmation_that_clears_passes(ruleset):
    spike, ok = dict(HEALTHY, iroh_latency_spike=0.8), dict(HEALTHY)
    client = FakePrometheus(ruleset, ok)
    outcome, calls = run_gate(client, ruleset, evaluations=1, values_seq=[spike, ok])
    assert outcome.verdict == 'pass' and calls == 2 and outcome.confirmations == 1
    # no breach: no confirmation, one evaluation as asked
    outcome, calls = run_gate(client, ruleset, evaluations=1, values_seq=[ok])
    assert outcome.verdict == 'pass' and calls == 1 and outcome.confirmations == 0


def test_confirmations_are_spaced_by_the_confirm_interval(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY, iroh_latency_spike=0.8))
    client.scope = ar.Scope()
    slept = []
    run = gate.GateRun(lambda: ar.evaluate(client, ruleset, client.scope), evaluations=1, interval=0,
                       confirm_interval=2.0, sleep=slept.append)
    assert run.run().verdict == 'fail' and slept == [2.0]


def test_a_rule_asked_for_that_can_never_fail_refuses_the_gate(ruleset):
    rules = ruleset.select(['iroh_latency_spike'])
    with pytest.raises(gate.GateConfigError, match=r'iroh_latency_spike \(warning\) cannot fail this gate'):
        gate.check_rules_can_fail(rules, gate.consecutive_setting({'warning': 0}), asked_for=True)
    gate.check_rules_can_fail(rules, gate.consecutive_setting(None), asked_for=True)
    # every enabled rule by default: a severity set to 0 only reports, said in the notes
    gate.check_rules_can_fail(rules, gate.consecutive_setting({'warning': 0}), asked_for=False)
    notes = gate.plan_notes(ruleset.select(), gate.consecutive_setting({'warning': 0}), 1, 2.0)
    assert any('never fail' in n and 'iroh_latency_spike' in n for n in notes)
    notes = gate.plan_notes(ruleset.select(), gate.consecutive_setting(None), 1, 2.0)
    assert notes == ['warning rules need 2 consecutive failed evaluations and 1 were asked: a breaching warning '
                     'rule is confirmed by up to 1 more evaluation(s), 2 s apart']


def test_a_pass_between_failures_resets_the_count(ruleset):
    spike, ok = dict(HEALTHY, iroh_latency_spike=0.8), dict(HEALTHY)
    client = FakePrometheus(ruleset, ok)
    outcome, calls = run_gate(client, ruleset, evaluations=4, values_seq=[spike, ok, spike, ok])
    assert outcome.verdict == 'pass' and calls == 4
    outcome, calls = run_gate(client, ruleset, evaluations=4, values_seq=[spike, ok, spike, spike])
    assert outcome.verdict == 'fail' and calls == 4
    assert outcome.streaks['iroh_latency_spike'] == 2


def test_consecutive_failures_option(ruleset):
    bad = dict(HEALTHY, high_error_rate_libp2p=0.2)
    client = FakePrometheus(ruleset, bad)
    outcome, calls = run_gate(client, ruleset, evaluations=5, consecutive={'critical': 3})
    assert outcome.verdict == 'fail' and calls == 3
    outcome, calls = run_gate(client, ruleset, evaluations=2, consecutive={'critical': 0})
    assert outcome.verdict == 'pass' and 'never failing this gate' in outcome.reason
    with pytest.raises(ValueError, match='unknown severity urgent'):
        gate.consecutive_setting({'urgent': 1})
    with pytest.raises(ValueError, match='must be >= 0'):
        gate.consecutive_setting(-1)


def test_no_data_is_inconclusive_not_pass(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY, high_error_rate_iroh=None))
    outcome, _client = run_gate(client, ruleset)
    assert outcome.verdict == 'inconclusive'
    assert [r.rule.id for r in outcome.inconclusive_rules] == ['high_error_rate_iroh']
    assert 'recording rules installed' in outcome.reason


def test_too_few_samples_is_inconclusive(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY), samples=2)
    outcome, _client = run_gate(client, ruleset)
    assert outcome.verdict == 'inconclusive'
    assert '2 sample(s) in 5m, at least 3 needed' in outcome.reason


def test_no_targets_is_inconclusive(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY), targets=0, modes={})
    outcome, _client = run_gate(client, ruleset, scope=ar.Scope(['nowhere']))
    assert outcome.verdict == 'inconclusive'
    assert '0 node target(s) up in hosts nowhere' in outcome.reason
    assert client.queries == 1


def test_transport_nobody_runs_is_skipped(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY, high_error_rate_iroh=None, iroh_latency_spike=None),
                            modes={'libp2p_only': 12})
    outcome, _client = run_gate(client, ruleset)
    assert outcome.verdict == 'pass'
    assert {r.rule.id: r.verdict for r in outcome.results}['high_error_rate_iroh'] == 'skipped'
    assert client.queries == 1 + 2


def test_prometheus_down_is_no_verdict_and_fails_closed(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY), down=True)
    outcome, _client = run_gate(client, ruleset)
    assert outcome.verdict == 'unavailable' and outcome.no_verdict
    assert outcome.reason.startswith('cannot judge, Prometheus at http://prometheus.invalid:9090 is unreachable')
    result = gate.gate_result(outcome, ar.Scope(['h1']), ruleset, client, 'pass')
    assert result['failed'] is True and result['verdict'] == 'unavailable'
    assert result['msg'].startswith('migration gate could not judge hosts h1: cannot judge, Prometheus at')
    assert len(result['msg']) < 250


def test_prometheus_down_mid_run_fails_closed(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY))
    state = {'n': 0}

    def evaluate():
        state['n'] += 1
        client.down = state['n'] > 1
        client.scope = ar.Scope()
        return ar.evaluate(client, ruleset, client.scope)

    outcome = gate.GateRun(evaluate, evaluations=3, sleep=lambda s: None).run()
    assert outcome.verdict == 'unavailable' and outcome.unavailable is not None


def test_halted_ledger_fails_before_querying(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY))
    outcome, calls = run_gate(client, ruleset, halted=lambda: 'the migration is halted: canary failed')
    assert outcome.verdict == 'fail' and calls == 0 and client.queries == 0
    assert outcome.reason == 'the migration is halted: canary failed'


def test_gate_result_policy(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY, high_error_rate_iroh=None))
    outcome, _client = run_gate(client, ruleset)
    for policy, failed in (('pause', True), ('fail', True), ('pass', False)):
        result = gate.gate_result(outcome, ar.Scope(), ruleset, client, policy)
        assert result['failed'] is failed and result['verdict'] == 'inconclusive'
        assert result['inconclusive_rules'] == ['high_error_rate_iroh']
    result = gate.gate_result(outcome, ar.Scope(), ruleset, client, 'pause')
    assert 'asks for a pause' in result['msg']
    assert {r['id'] for r in result['rules']} == {r.id for r in ruleset.rules}
    for item in result['rules']:
        assert set(item) >= {'value', 'threshold', 'verdict', 'query', 'window'}


# ---------------------------------------------------------------------------- ledger adapter
ledger_lib = pytest.importorskip('ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger')


def test_ledger_adapter_records_halts_and_pauses(tmp_path, monkeypatch):
    monkeypatch.delenv('ANT_MIGRATION_RUN_ID', raising=False)
    location = str(tmp_path / 'ledger.sqlite3')
    adapter = gate.LedgerAdapter(location)
    assert adapter.flags() == {'paused': None, 'halted': None}
    adapter.record('gate_verdict', verdict='fail', rules=[{'id': 'x'}])
    adapter.halt('gate failed: x', source=gate.GATE, failed_rules=['x'])
    adapter.pause('gate inconclusive')
    flags = adapter.flags()
    assert flags['halted']['reason'] == 'gate failed: x' and flags['halted']['source'] == gate.GATE
    assert flags['paused']['reason'] == 'gate inconclusive'
    assert adapter.written == ['gate_verdict', 'halt', 'pause']
    with ledger_lib.open_ledger(location) as handle:
        kinds = [e['kind'] for e in handle.events()]
    assert {'gate_verdict', 'halt', 'pause'} <= set(kinds)


def test_ledger_adapter_fails_closed_on_a_broken_ledger(tmp_path):
    garbage = tmp_path / 'ledger.sqlite3'
    garbage.write_bytes(b'not a database' * 100)
    with pytest.raises(gate.LedgerProblem, match='cannot open the migration ledger'):
        gate.LedgerAdapter(str(garbage)).flags()


def test_ledger_adapter_is_a_no_op_without_the_ledger_code(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ledger(name, *args, **kwargs):
        if name.endswith('plugin_utils') and args and args[2] and 'ledger' in args[2]:
            raise ImportError('No module named ledger')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_ledger)
    adapter = gate.LedgerAdapter('/nonexistent/ledger.sqlite3')
    assert adapter.flags() == {}
    adapter.halt('x', source='y')
    assert adapter.written == [] and 'no migration ledger available' in adapter.note


# ---------------------------------------------------------------------------- what the ledger is told
class RecordingLedger:
    def __init__(self):
        self.calls = []

    def record(self, kind, **data):
        self.calls.append(('record', kind))

    def halt(self, reason, source, cause=None, **data):
        self.calls.append(('halt', cause))

    def pause(self, reason):
        self.calls.append(('pause', None))


@pytest.mark.parametrize('values,down,policy,expected', [
    (dict(HEALTHY, high_error_rate_iroh=0.3), False, 'pause', ('halt', 'verdict')),
    (dict(HEALTHY), True, 'pass', ('halt', 'no_verdict')),
    (dict(HEALTHY, high_error_rate_iroh=None), False, 'fail', ('halt', 'no_verdict')),
    (dict(HEALTHY, high_error_rate_iroh=None), False, 'pause', ('pause', None)),
    (dict(HEALTHY, high_error_rate_iroh=None), False, 'pass', None),
    (dict(HEALTHY), False, 'fail', None),
])
def test_only_a_verdict_on_the_nodes_is_a_verdict_halt(ruleset, values, down, policy, expected):
    """Finding 4: an outage or missing data halts with cause no_verdict; containment then freezes."""
    client = FakePrometheus(ruleset, values, down=down)
    outcome, _calls = run_gate(client, ruleset)
    result = gate.gate_result(outcome, ar.Scope(), ruleset, client, policy)
    ledger = RecordingLedger()
    gate.record_outcome(ledger, outcome, result, policy)
    assert ledger.calls[0] == ('record', 'gate_verdict')
    assert (ledger.calls[1] if len(ledger.calls) > 1 else None) == expected


@pytest.mark.parametrize('flag,policy,expected', [
    (None, 'rollback', 'none'),
    ({'reason': 'x', 'cause': 'verdict'}, 'rollback', 'rollback'),
    ({'reason': 'x', 'cause': None}, 'rollback', 'rollback'),
    ({'reason': 'x', 'cause': 'verdict'}, 'freeze', 'freeze'),
    ({'reason': 'x', 'cause': 'no_verdict'}, 'rollback', 'freeze'),
])
def test_containment_rolls_back_only_on_a_verdict(flag, policy, expected):
    assert gate.containment(flag, policy) == expected
    # A pause beside a halt changes nothing; a pause alone is "stop where you are".
    assert gate.containment(flag, policy, pause_flag={'reason': 'p'}) == ('freeze' if flag is None else expected)


def test_unjudged_nodes_are_learned_from_the_hosts_and_found(tmp_path, monkeypatch):
    """Finding 3: nodes switched without a verdict (some never recorded) are what a re-run gates."""
    monkeypatch.delenv('ANT_MIGRATION_RUN_ID', raising=False)
    location = str(tmp_path / 'ledger.sqlite3')
    ledger = ledger_lib.open_ledger(location)
    ledger.record_observation('h1', 'antnode1', mode='libp2p_only')
    ledger.record_observation('h2', 'antnode1', mode='libp2p_only')
    ledger.record_observation('h3', 'antnode1', mode='libp2p_only')
    ledger.record_transition('h1', 'antnode1', None, None, mode='dual_stack')  # recorded, not judged
    ledger.record_transition('h3', 'antnode1', None, 'dual_stack_stable', mode='dual_stack')  # judged
    ledger.close()
    adapter = gate.LedgerAdapter(location)
    observed = {'h1': [{'service_name': 'antnode1', 'mode': 'dual_stack'}],
                'h2': [{'service_name': 'antnode1', 'mode': 'dual_stack'}],  # switched, never recorded
                'h3': [{'service_name': 'antnode1', 'mode': 'dual_stack'}]}
    found = adapter.unjudged(observed, min_soak=60)
    assert found['hosts'] == ['h1', 'h2'] and found['nodes'] == ['h1/antnode1', 'h2/antnode1']
    assert 'reconcile' in adapter.written
    assert 30 < found['wait'] <= 60  # they were switched a moment ago
    assert adapter.unjudged(None, min_soak=0)['wait'] == 0


# -- a window still filling, a transport kept only as a fallback ----------------------------------------------


def run_settling_gate(client, ruleset, samples_seq, settle_evaluations):
    """A gate of one asked evaluation whose rules have ``samples_seq[i]`` points at its i-th evaluation."""
    client.scope = ar.Scope()
    calls = []

    def evaluate():
        client.samples = samples_seq[min(len(calls), len(samples_seq) - 1)]
        calls.append(client.samples)
        return ar.evaluate(client, ruleset, client.scope, min_samples=3)

    slept = []
    outcome = gate.GateRun(evaluate, evaluations=1, interval=2, sleep=slept.append,
                           settle_evaluations=settle_evaluations).run()
    return outcome, calls, slept


def test_a_window_still_filling_is_evaluated_again_and_judged_when_full(ruleset):
    outcome, calls, slept = run_settling_gate(FakePrometheus(ruleset, dict(HEALTHY)), ruleset, [1, 2, 4], 6)
    assert outcome.verdict == 'pass', outcome.reason
    assert calls == [1, 2, 4] and outcome.settles == 2 and slept == [2, 2]


def test_a_window_that_never_fills_is_no_data_after_the_time_it_takes_to_fill(ruleset):
    outcome, calls, _slept = run_settling_gate(FakePrometheus(ruleset, dict(HEALTHY)), ruleset, [2], 6)
    assert outcome.verdict == 'inconclusive' and len(calls) == 1 + 6 and outcome.settles == 6
    assert '2 sample(s) in 5m, at least 3 needed' in outcome.reason


def test_a_rule_without_any_point_is_not_waited_for(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY, high_error_rate_iroh=None))
    outcome, calls, _slept = run_settling_gate(client, ruleset, [10], 6)
    assert outcome.verdict == 'inconclusive' and len(calls) == 1 and outcome.settles == 0


def test_a_failing_rule_is_not_hidden_by_a_filling_one(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY, high_error_rate_iroh=0.5),
                            host_values={'high_error_rate_iroh': {'h1': 0.5}})
    outcome, calls, _slept = run_settling_gate(client, ruleset, [10], 6)
    assert outcome.verdict == 'fail' and len(calls) == 1


def test_the_settle_time_is_the_longest_window_of_the_rules_asked(ruleset):
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import gating

    request = gating.GateRequest.from_options(ruleset, {'interval': '30s'})
    step = ar.parse_duration(ruleset.step)
    longest = max(rule.for_seconds for rule in ruleset.select())
    assert request.settle_evaluations == -(-(longest + step) // max(30.0, step))
    instant = gating.GateRequest.from_options(ruleset.judged_now(), {'interval': '30s'})
    assert instant.settle_evaluations == -(-step // max(30.0, step))


@pytest.mark.parametrize('modes, libp2p_verdict, verdict', [
    ({'iroh_primary': 8}, 'skipped', 'pass'),                          # libp2p only a fallback: not judged
    ({'iroh_primary': 4, 'dual_stack': 4}, 'no_data', 'inconclusive'),  # dual_stack nodes prefer libp2p too
    ({'iroh_primary': 4, 'libp2p_only': 4}, 'no_data', 'inconclusive'),
])
def test_a_fallback_transport_without_enough_data_is_skipped_only_where_no_node_prefers_it(
        ruleset, modes, libp2p_verdict, verdict):
    client = FakePrometheus(ruleset, dict(HEALTHY, high_error_rate_libp2p=None), targets=8, modes=modes)
    outcome, _calls = run_gate(client, ruleset)
    result = {r.rule.id: r for r in outcome.results}['high_error_rate_libp2p']
    assert (result.verdict, outcome.verdict) == (libp2p_verdict, verdict), outcome.reason
    if libp2p_verdict == 'skipped':
        assert result.reason == 'libp2p is only a fallback on every node in fleet that runs it (iroh_primary): ' \
                                'not judged without enough data'
        assert outcome.facts.as_dict()['nodes_preferring'] == {'libp2p': 0, 'iroh': 8}


def test_a_fallback_transport_with_enough_data_is_judged(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY, high_error_rate_libp2p=0.4), targets=8,
                            modes={'iroh_primary': 8}, host_values={'high_error_rate_libp2p': {'h1': 0.4}})
    outcome, _calls = run_gate(client, ruleset)
    assert outcome.verdict == 'fail' and [r.rule.id for r in outcome.tripped] == ['high_error_rate_libp2p']
