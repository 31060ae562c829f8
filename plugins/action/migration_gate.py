# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.migration_gate (see the module stub's docs).

An adapter: it reads its options into a GateRequest, builds the Prometheus client and the ledger
adapter, and runs the gate use case (plugins/plugin_utils/services/gating.py), which decides the
verdict and what the ledger is told.
"""

from __future__ import annotations

import time

from ansible.utils.display import Display

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, validation
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters import hostvars
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.action import MigrationAction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.gate import (
    GATE,
    INCONCLUSIVE_POLICIES,
    LedgerAdapter,
    LedgerProblem,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import (
    CONNECTION_ARGSPEC,
    PrometheusClient,
    PrometheusSettings,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import gating

display = Display()


class ActionModule(MigrationAction):
    NAME = GATE
    ARGUMENT_SPEC = dict(
        CONNECTION_ARGSPEC,
        rules=dict(type='list', elements='str'),
        rollback_rules=dict(type='bool', default=False),
        rules_file=dict(type='path'),
        overrides=dict(type='dict'),
        settings=dict(type='dict'),
        hosts=dict(type='list', elements='str'),
        evaluations=dict(type='int', default=1),
        interval=dict(type='str'),
        consecutive_failures=dict(type='raw'),
        min_samples=dict(type='int', default=3),
        min_targets=dict(type='int', default=1),
        inconclusive=dict(type='str', default='pause', choices=list(INCONCLUSIVE_POLICIES)),
        ledger=dict(type='str'),
        record=dict(type='bool', default=True),
        check_ledger=dict(type='bool'),
        stop_on_pause=dict(type='bool', default=True),
        unjudged=dict(type='bool', default=False),
        fleet_hosts=dict(type='list', elements='str'),
        info_var=dict(type='str', default=hostvars.DEFAULT_INFO_VAR),
        min_soak=dict(type='str', default='0'),
        probe=dict(type='bool', default=False),
        now=dict(type='bool', default=False),
    )
    MUTUALLY_EXCLUSIVE = (('rules', 'rollback_rules'),)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        try:
            ruleset = self.ruleset(args, task_vars)
            if args['now']:
                ruleset = ruleset.judged_now()
            request = gating.GateRequest.from_options(ruleset, args)
            settings = PrometheusSettings.from_options(args, default_url=self.task_var(task_vars,
                                                                                       'migration_prometheus_url'))
            min_soak = validation.seconds(args['min_soak'], 'min_soak')
        except MigrationError as exc:
            self.fail('%s; nothing was evaluated' % exc)
        if args['probe']:
            if not request.hosts:
                self.fail('probe needs hosts (the batch about to be touched)')
            client = PrometheusClient(settings)
            try:
                return dict(result, **gating.can_judge(client, ruleset, request.hosts))
            finally:
                client.close()
        ledger = LedgerAdapter(self.ledger_location(args['ledger'], task_vars))
        if args['unjudged']:
            try:
                observed = hostvars.reported_nodes((task_vars or {}).get('hostvars', {}), args['fleet_hosts'],
                                                   args['info_var'])[0]
                found = ledger.unjudged(observed, min_soak=min_soak)
            except LedgerProblem as exc:
                return dict(result, failed=True, changed=False, verdict=alert_rules.FAIL,
                            msg='%s: %s; failing closed' % (GATE, exc))
            if not found['hosts']:
                return dict(result, changed=False, failed=False, verdict=alert_rules.PASS, unjudged_hosts=[],
                            msg='no host was switched without a verdict: nothing to judge', notes=request.notes,
                            ledger={'written': ledger.written})
            request.hosts = found['hosts']
            result.update(unjudged_hosts=found['hosts'], unjudged_nodes=found['nodes'])
            if found['wait'] > 0 and not self._task.check_mode:
                display.display('%s: soaking %s for %.0f s more before judging them'
                                % (GATE, ', '.join(found['hosts']), found['wait']))
                time.sleep(found['wait'])
        client = PrometheusClient(settings)
        try:
            result.update(gating.judge(request, client, ledger, check_mode=self._task.check_mode))
        finally:
            client.close()
        if result.get('failed'):
            display.vv('%s: %s' % (GATE, result['msg']))
        return result
