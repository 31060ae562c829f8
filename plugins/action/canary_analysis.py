# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.canary_analysis (see the module stub's docs).

An adapter: it checks its options with the one validator, queries the per-node figures and runs the
statistics of plugin_utils/canary_analysis.py; what the ledger is told is the gate's decision
(gate.record_analysis_outcome).
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import (
    alert_rules,
    canary_analysis,
    redaction,
    validation,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.action import MigrationAction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.gate import (
    UNAVAILABLE,
    LedgerAdapter,
    LedgerProblem,
    record_analysis_outcome,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import (
    CONNECTION_ARGSPEC,
    PrometheusClient,
    PrometheusError,
    PrometheusSettings,
)

ANALYSIS = 'autonomi.network_migration.canary_analysis'
SUMMARY_KEYS = ('metric', 'kind', 'test', 'verdict', 'p_value', 'effect')
VERDICTS = (canary_analysis.PASS, canary_analysis.MARGINAL, canary_analysis.FAIL, canary_analysis.INCONCLUSIVE)


class ActionModule(MigrationAction):
    NAME = ANALYSIS
    ARGUMENT_SPEC = dict(
        CONNECTION_ARGSPEC,
        canary_hosts=dict(type='list', elements='str', required=True),
        baseline_hosts=dict(type='list', elements='str'),
        window=dict(type='str', default='10m'),
        job=dict(type='str'),
        alpha=dict(type='float', default=0.05),
        error_rate_tolerance=dict(type='float', default=0.01),
        latency_tolerance=dict(type='float', default=0.2),
        pass_score=dict(type='float', default=95.0),
        marginal_score=dict(type='float', default=75.0),
        min_nodes=dict(type='int', default=3),
        fail_on=dict(type='list', elements='str', default=['fail', 'inconclusive'], choices=list(VERDICTS)),
        ledger=dict(type='str'),
        record=dict(type='bool', default=True),
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        try:
            validation.number(args['alpha'], 'alpha', above=0, below=1)
            validation.number(args['pass_score'], 'pass_score', minimum=0, maximum=100)
            validation.number(args['marginal_score'], 'marginal_score', minimum=0, maximum=args['pass_score'])
            validation.integer(args['min_nodes'], 'min_nodes', minimum=1)
            validation.seconds(args['window'], 'window')
            settings = PrometheusSettings.from_options(args, default_url=self.task_var(task_vars,
                                                                                       'migration_prometheus_url'))
        except MigrationError as exc:
            self.fail(exc)
        job = args['job'] or alert_rules.DEFAULT_SETTINGS['job']
        client = PrometheusClient(settings)
        ledger = LedgerAdapter(self.ledger_location(args['ledger'], task_vars))
        try:
            nodes = canary_analysis.collect(client, job, args['window'])
            analysis = canary_analysis.analyse(
                nodes, args['canary_hosts'], args['baseline_hosts'], alpha=args['alpha'],
                error_rate_tolerance=args['error_rate_tolerance'], latency_tolerance=args['latency_tolerance'],
                pass_score=args['pass_score'], marginal_score=args['marginal_score'], min_nodes=args['min_nodes'])
            result.update(analysis.as_dict())
            result.update(changed=False, window=args['window'], failed=analysis.verdict in args['fail_on'],
                          msg='canary analysis %s for %s: %s' % (analysis.verdict.upper(),
                                                                 ', '.join(args['canary_hosts']), analysis.reason))
            verdict, reason = analysis.verdict, analysis.reason
            event = dict(score=analysis.score, window=args['window'],
                         comparisons=[{k: c[k] for k in SUMMARY_KEYS} for c in result['comparisons']])
        except PrometheusError as exc:
            # No verdict on the canaries: fail closed (the ledger is told: a halt with cause no_verdict).
            verdict, reason, event = UNAVAILABLE, str(exc), {}
            result.update(failed=True, changed=False, verdict=UNAVAILABLE,
                          msg='%s: could not judge the canaries, %s (no verdict, failing closed)' % (ANALYSIS, exc))
        finally:
            client.close()
        result['queries'] = client.queries
        if args['record'] and not self._task.check_mode:
            try:
                record_analysis_outcome(ledger, verdict, reason, result['failed'], ANALYSIS, args['canary_hosts'],
                                        **event)
            except LedgerProblem as exc:
                result.update(failed=True, msg='%s; %s, failing closed' % (result['msg'], exc))
            result['ledger'] = {'location': redaction.redact_location(ledger.location) if ledger.enabled else None,
                                'written': ledger.written}
            if ledger.note:
                result.setdefault('warnings', []).append(ledger.note)
        return result
