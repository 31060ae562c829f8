# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gate's state logic with a fake Prometheus: consecutive failures, no data, Prometheus down, ledger."""

from __future__ import annotations

import pytest

from ansible_collections.autonomi.network_migration.plugins.action import migration_gate as gate
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules as ar
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
    outcome, calls = run_gate(client, ruleset, evaluations=1)
    assert outcome.verdict == 'pass' and 'breaching but not (yet) failing' in outcome.reason
    outcome, calls = run_gate(client, ruleset, evaluations=3)
    assert outcome.verdict == 'fail' and calls == 2
    assert 'iroh_latency_spike (warning): 800 ms > 500 ms' in outcome.reason


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
    assert outcome.verdict == 'pass'
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


def test_prometheus_down_fails_closed(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY), down=True)
    outcome, _client = run_gate(client, ruleset)
    assert outcome.verdict == 'fail'
    assert outcome.reason.startswith('fail closed: Prometheus at http://prometheus.invalid:9090 is unreachable')


def test_prometheus_down_mid_run_fails_closed(ruleset):
    client = FakePrometheus(ruleset, dict(HEALTHY))
    state = {'n': 0}

    def evaluate():
        state['n'] += 1
        client.down = state['n'] > 1
        client.scope = ar.Scope()
        return ar.evaluate(client, ruleset, client.scope)

    outcome = gate.GateRun(evaluate, evaluations=3, sleep=lambda s: None).run()
    assert outcome.verdict == 'fail' and outcome.unavailable is not None


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
