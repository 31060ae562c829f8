# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Is the fleet healthy: the gate's judgement asked outside a rollout, on the same data."""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.gate import LedgerAdapter
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import PrometheusUnavailable
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import gating, health


class Down:
    queries = 0

    class settings:  # noqa: N801
        url = 'http://prometheus.example:9090'

    def query(self, promql):
        raise PrometheusUnavailable('connection refused')


class NoData(Down):
    """Prometheus answers, but has no sample of anything: every rule is inconclusive."""

    def query(self, promql):
        self.queries += 1
        return []


def test_health_is_the_fleet_gate_of_one_evaluation():
    rules = alert_rules.load_rules()
    for client in (Down(), NoData()):
        pre_gate = gating.judge(gating.GateRequest.from_options(rules, {'evaluations': 1, 'inconclusive': 'fail',
                                                                        'record': False, 'check_ledger': False}),
                                client, LedgerAdapter(enabled=False))
        verdict = health.fleet_health(client, rules)
        assert (verdict['verdict'], verdict['failed']) == (pre_gate['verdict'], pre_gate['failed'])
    assert health.fleet_health(Down(), rules)['verdict'] == 'unavailable'
    assert health.fleet_health(NoData(), rules)['verdict'] == 'inconclusive'


def test_rules_by_transport_keep_the_fleet_wide_ones():
    rules = alert_rules.load_rules()
    iroh = health.rules_for(rules, 'iroh')
    assert 'network_partition_risk' in iroh and 'high_error_rate_libp2p' not in iroh
    assert health.rule_verdicts(Down(), rules) == ([], 'connection refused')
    verdicts, error = health.rule_verdicts(NoData(), rules, 'libp2p')
    assert error is None and {v['verdict'] for v in verdicts} <= {'no_data', 'skipped'}
