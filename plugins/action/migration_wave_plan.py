# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plan a wave on the controller from the fleet's transport_info facts (see the module stub)."""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, wave_planning
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters import hostvars
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.action import MigrationAction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.ledger import opened_ledger
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.errors import LedgerError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import rollback
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.wording import shown

ARGUMENT_SPEC = dict(
    wave=dict(type='raw'),
    canary_count=dict(type='int'),
    rollback_to=dict(type='str', choices=[_modes.LIBP2P_ONLY, _modes.DUAL_STACK]),
    strategy=dict(type='str', default='fast', choices=['fast', 'gradual']),
    order=dict(type='str', default='readable', choices=list(wave_planning.ROLLBACK_ORDERS)),
    ledger=dict(type='str'),
    only_hosts=dict(type='list', elements='str'),
    stage=dict(type='str', default=_modes.DUAL_STACK, choices=list(_modes.MODES[1:])),
    fleet_hosts=dict(type='list', elements='str', required=True),
    info_var=dict(type='str', default=hostvars.DEFAULT_INFO_VAR),
    batches=dict(type='list', elements='raw', default=[1, '10%', '25%']),
    exclude_hosts=dict(type='list', elements='str', default=[]),
    unjudged_hosts=dict(type='list', elements='str', default=[]),
    canary_group=dict(type='str'),
    ranking=dict(type='dict'),
    pause_seconds=dict(type='float'),
    canary_group_hosts=dict(type='list', elements='str', default=[]),
    max_close_group_share=dict(type='float', default=0.4),
    switch_seconds=dict(type='list', elements='float', default=[]),
    default_switch_seconds=dict(type='float', default=60.0),
    rollback_sla_seconds=dict(type='float', default=300.0),
    rollback_forks=dict(type='int', default=50),
    max_partition_risk=dict(type='float', default=0.7),
)


class ActionModule(MigrationAction):
    NAME = 'autonomi.network_migration.migration_wave_plan'
    ARGUMENT_SPEC = ARGUMENT_SPEC
    MUTUALLY_EXCLUSIVE = REQUIRED_ONE_OF = (('wave', 'canary_count', 'rollback_to'),)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        with self.failing_on_errors(result):
            ruleset = None
            if args['rollback_to'] and args['pause_seconds'] is not None:
                ruleset = alert_rules.load_rules(overrides=self.task_var(task_vars, 'migration_alert_overrides'),
                                                 settings=self.task_var(task_vars, 'migration_alert_settings'))
            if args['rollback_to'] and args['strategy'] == 'fast':
                plan = self._fast_rollback(args, task_vars)
            else:
                plan = self._plan(args, (task_vars or {}).get('hostvars', {}), ruleset)
            result.update(changed=False, plan=plan, msg=plan['message'])
            if plan.get('refusals'):
                refused = plan['refusals']
                result.update(failed=True, refusals=refused, msg='wave refused: ' + '; '.join(refused))
        return result

    def _fast_rollback(self, args, task_vars):
        """No read of the fleet: the switch reports what each host ran; the rounds come from the ledger's nodes."""
        known, problem = None, None
        if args['order'] == 'readable':
            try:
                with opened_ledger(self.ledger_location(args['ledger'], task_vars)) as handle:
                    known = handle.nodes()
            except LedgerError as exc:
                problem = 'the ledger could not be read: %s' % exc
        return rollback.plan('fast', args['rollback_to'], args['fleet_hosts'], args['only_hosts'], order=args['order'],
                             ledger_nodes=known, ledger_problem=problem)

    @staticmethod
    def _plan(args, task_hostvars, ruleset=None):
        if args['canary_count'] is not None and args['canary_group_hosts']:
            return wave_planning.plan_canary([], args['canary_count'], group=args['canary_group'],
                                             group_hosts=args['canary_group_hosts'])
        nodes, missing = hostvars.fleet_nodes(task_hostvars, args['fleet_hosts'], args['info_var'])
        if missing:
            raise wave_planning.PlanError(
                'no transport_info for %d host(s): %s. Every fleet host must answer before a wave is planned (an '
                'unreachable host could hide libp2p-only nodes).' % (len(missing), shown(missing, 20)))
        if args['canary_count'] is not None:
            return wave_planning.plan_canary(nodes, args['canary_count'], args['exclude_hosts'],
                                             unjudged_hosts=args['unjudged_hosts'])
        if args['rollback_to']:
            return rollback.plan('gradual', args['rollback_to'], args['fleet_hosts'], args['only_hosts'], nodes=nodes,
                                 batches=args['batches'], ranking=args['ranking'], pause_seconds=args['pause_seconds'],
                                 ruleset=ruleset)
        return wave_planning.plan_wave(nodes, args['wave'], stage=args['stage'], batches=args['batches'],
                                       exclude_hosts=args['exclude_hosts'],
                                       max_close_group_share=args['max_close_group_share'],
                                       max_partition_risk=args['max_partition_risk'],
                                       switch_seconds=args['switch_seconds'],
                                       default_switch_seconds=args['default_switch_seconds'],
                                       rollback_sla_seconds=args['rollback_sla_seconds'],
                                       rollback_forks=args['rollback_forks'])
