# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.canary_analysis (see the module stub's docs).

Queries per-node figures (one query per figure, grouped by instance), runs the statistics of
plugin_utils/canary_analysis.py and records the verdict in the ledger through the gate's
lazy ledger adapter.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, canary_analysis, redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.gate import (
    CAUSE_NO_VERDICT,
    UNAVAILABLE,
    LedgerAdapter,
    LedgerProblem,
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


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail('%s: %s' % (ANALYSIS, '; '.join(validation.error_messages)))
        args = validation.validated_parameters
        if not 0 < args['alpha'] < 1:
            raise AnsibleActionFail('%s: alpha must be between 0 and 1, got %s' % (ANALYSIS, args['alpha']))
        if not 0 <= args['marginal_score'] <= args['pass_score'] <= 100:
            raise AnsibleActionFail('%s: need 0 <= marginal_score <= pass_score <= 100' % ANALYSIS)
        if args['min_nodes'] < 1:
            raise AnsibleActionFail('%s: min_nodes must be >= 1' % ANALYSIS)
        try:
            alert_rules.parse_duration(args['window'])
        except alert_rules.AlertRulesError as exc:
            raise AnsibleActionFail('%s: window: %s' % (ANALYSIS, exc)) from None
        url = task_vars.get('migration_prometheus_url')
        try:
            settings = PrometheusSettings.from_options(args, default_url=self._templar.template(url) if url else None)
        except PrometheusError as exc:
            raise AnsibleActionFail('%s: %s' % (ANALYSIS, exc)) from None
        job = args['job'] or alert_rules.DEFAULT_SETTINGS['job']
        client = PrometheusClient(settings)
        ledger = LedgerAdapter(args['ledger'])
        try:
            nodes = canary_analysis.collect(client, job, args['window'])
            analysis = canary_analysis.analyse(
                nodes, args['canary_hosts'], args['baseline_hosts'], alpha=args['alpha'],
                error_rate_tolerance=args['error_rate_tolerance'], latency_tolerance=args['latency_tolerance'],
                pass_score=args['pass_score'], marginal_score=args['marginal_score'], min_nodes=args['min_nodes'])
        except PrometheusError as exc:
            # No verdict on the canaries: fail closed, and halt with cause no_verdict so that the canary
            # is frozen where it is, not rolled back while nothing watches (gate.containment()).
            result.update(failed=True, changed=False, verdict=UNAVAILABLE, queries=client.queries,
                          msg='%s: could not judge the canaries, %s (no verdict, failing closed)' % (ANALYSIS, exc))
            if args['record'] and not self._task.check_mode:
                self._halt_without_verdict(ledger, result, 'canary analysis could not judge: %s' % exc,
                                           args['canary_hosts'])
            return result
        finally:
            client.close()
        result.update(analysis.as_dict())
        result.update(changed=False, window=args['window'], queries=client.queries,
                      failed=analysis.verdict in args['fail_on'],
                      msg='canary analysis %s for %s: %s' % (analysis.verdict.upper(),
                                                             ', '.join(args['canary_hosts']), analysis.reason))
        if args['record'] and not self._task.check_mode:
            try:
                ledger.record('canary_analysis', source=ANALYSIS, verdict=analysis.verdict, score=analysis.score,
                              canary_hosts=args['canary_hosts'], window=args['window'], reason=analysis.reason,
                              comparisons=[{k: c[k] for k in SUMMARY_KEYS} for c in result['comparisons']])
            except LedgerProblem as exc:
                result.update(failed=True, msg='%s: %s; failing closed' % (ANALYSIS, exc))
            if analysis.verdict == canary_analysis.INCONCLUSIVE and result['failed']:
                self._halt_without_verdict(ledger, result, 'canary analysis inconclusive: %s' % analysis.reason,
                                           args['canary_hosts'])
            result['ledger'] = {'location': redaction.redact_location(ledger.location) if ledger.enabled else None,
                                'written': ledger.written}
            if ledger.note:
                result.setdefault('warnings', []).append(ledger.note)
        return result

    @staticmethod
    def _halt_without_verdict(ledger, result, reason, hosts):
        try:
            ledger.halt(reason, source=ANALYSIS, cause=CAUSE_NO_VERDICT, scope=hosts)
        except LedgerProblem as exc:
            result['msg'] += '; %s' % exc
