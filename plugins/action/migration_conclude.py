# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.migration_conclude: how a canary, wave or rollback run ends.

An adapter: the outcome and its message come from plugins/plugin_utils/services/ (canary.conclusion,
wave.conclusion, rollback.conclude); this plugin reads what the run registered on its hosts, releases
the run's lock and fails the task when the run did not end well, with the message that says what next.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import identity
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.action import MigrationAction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.ledger import opened_ledger
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import canary, control, rollback, wave


class ActionModule(MigrationAction):
    NAME = 'autonomi.network_migration.migration_conclude'
    ARGUMENT_SPEC = dict(
        stage=dict(type='str', required=True, choices=['canary', 'wave', 'rollback']),
        ledger=dict(type='str'),
        rollback_policy=dict(type='str', default='rollback', choices=['rollback', 'freeze']),
        plan=dict(type='dict'),
        switch_var=dict(type='str', default='rollback_switch'),
        stopped_early=dict(type='bool', default=False),
        started_at=dict(type='float'),
        reason=dict(type='str', default=''),
        trigger=dict(type='str', default='manual'),
        ready_timeout=dict(type='int'),
        fleet_hosts=dict(type='list', elements='str', default=[]),
        degraded_fails=dict(type='bool', default=True),
        keep_canary=dict(type='bool', default=False),
        hosts=dict(type='list', elements='str', default=[]),
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        task_vars = task_vars or {}
        operator, run_id = control.actor_defaults(None, task_vars)
        holder = identity.lock_holder(operator)
        location = self.ledger_location(args['ledger'], task_vars)
        with self.failing_on_errors(result), opened_ledger(location) as ledger:
            if args['stage'] == 'rollback':
                result.update(self._rollback(ledger, args, task_vars, holder, operator, run_id))
            else:
                flags = ledger.get_flags()
                hostvars = task_vars.get('hostvars', {})
                uncontained = [h for h in args['hosts'] if h in hostvars
                               and wave.not_contained(hostvars[h].get('wave_contained'))]
                result.update(changed=False, flags=flags, **(
                    canary.conclusion(ledger.canary_verdict()) if args['stage'] == 'canary'
                    else wave.conclusion(flags, args['rollback_policy'], uncontained)))
                if not self._play_context.check_mode:
                    control.record_conclusion(ledger, args['stage'], result['outcome'], run_id=run_id)
                    ledger.release_lock(holder, run_id=run_id)
        return result

    def _rollback(self, ledger, args, task_vars, holder, operator, run_id):
        plan = args['plan']
        if not plan or 'hosts' not in plan:
            self.fail('stage=rollback needs the plan (migration_wave_plan result .plan)')
        if args['started_at'] is None:
            self.fail('stage=rollback needs started_at')
        hostvars = task_vars.get('hostvars', {})
        switched = {h: hostvars[h].get(args['switch_var']) for h in plan['hosts'] if h in hostvars}
        if self._play_context.check_mode:
            return {'changed': False, 'msg': 'check mode: the rollback records nothing'}
        out = rollback.conclude(ledger, plan, switched, fleet_hosts=args['fleet_hosts'],
                                started_at=args['started_at'], reason=args['reason'], trigger=args['trigger'],
                                holder=holder, operator=operator, stopped_early=args['stopped_early'],
                                ready_timeout=args['ready_timeout'], run_id=run_id,
                                degraded_fails=args['degraded_fails'], keep_canary=args['keep_canary'])
        control.record_conclusion(ledger, 'rollback', out['outcome'], run_id=run_id)
        return out
