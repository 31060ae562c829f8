# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.migration_ledger_info: what the ledger says, read-only.

An adapter over plugins/plugin_utils/services/ (control: may this run go on, status; alerts: which hosts
the rollback guard takes). It never writes; a check refusal fails the task.
"""

from __future__ import annotations

from ansible.utils.display import Display

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.action import MigrationAction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.ledger import opened_ledger
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import alerts, control

display = Display()


class ActionModule(MigrationAction):
    NAME = 'autonomi.network_migration.migration_ledger_info'
    ARGUMENT_SPEC = dict(
        op=dict(type='str', required=True, choices=['check', 'status', 'switch_times', 'guard']),
        ledger=dict(type='str'),
        require_canary=dict(type='bool', default=False),
        allow_paused=dict(type='bool', default=False),
        allow_halted=dict(type='bool', default=False),
        rollback_policy=dict(type='str', choices=['rollback', 'freeze']),
        stage=dict(type='str', choices=list(_modes.MODES[1:])),
        testing_deadline=dict(type='int', default=3600),
        gate_result=dict(type='dict'),
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        if args['testing_deadline'] < 1:
            self.fail('testing_deadline must be >= 1 second, got %d' % args['testing_deadline'])
        location = self.ledger_location(args['ledger'], task_vars)
        with self.failing_on_errors(result), opened_ledger(location) as ledger:
            if args['op'] == 'check':
                result.update(control.check(ledger, require_canary=args['require_canary'],
                                            allow_paused=args['allow_paused'], allow_halted=args['allow_halted'],
                                            rollback_policy=args['rollback_policy'], stage=args['stage'],
                                            wait=display.warning))
            elif args['op'] == 'switch_times':
                result.update(changed=False, **control.rollback_switch_times(ledger))
            else:
                status = control.status(ledger, testing_deadline=args['testing_deadline'])
                result.update(status if args['op'] == 'status' else
                              dict(alerts.guard_decision(status, args['gate_result']), changed=False))
        return result
