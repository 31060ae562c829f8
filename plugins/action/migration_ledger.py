# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.migration_ledger: the ledger's writes from playbooks.

An adapter: each ``op`` is one use case of plugins/plugin_utils/services/ (control, canary, wave); the
reads live in migration_ledger_info.
"""

from __future__ import annotations

from ansible.utils.display import Display

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import identity
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters import hostvars
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.action import MigrationAction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.ledger import opened_ledger
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import canary, control, wave

display = Display()

OPS = ('pause', 'resume', 'halt', 'stop_batch', 'lock', 'unlock', 'mark', 'event', 'canary_verdict',
       'canary_stopped', 'judged', 'reconcile', 'contained', 'reset_budget')
# Writes that are not a change of the migration: the audit trail and the run's own lock.
NOT_CHANGES = frozenset(['event', 'lock', 'unlock', 'contained'])


class ActionModule(MigrationAction):
    """The ledger's writes: flags, lock, state marks, events, verdicts."""

    NAME = 'autonomi.network_migration.migration_ledger'
    ARGUMENT_SPEC = dict(
        op=dict(type='str', required=True, choices=list(OPS)),
        ledger=dict(type='str'),
        operator=dict(type='str'),
        reason=dict(type='str'),
        ack=dict(type='bool', default=False),
        playbook=dict(type='str'),
        force=dict(type='bool', default=False),
        stale_after=dict(type='int', default=3600),
        hosts=dict(type='list', elements='str'),
        state=dict(type='str', choices=list(_modes.STATES)),
        from_states=dict(type='list', elements='str'),
        kind=dict(type='str'),
        data=dict(type='dict', default={}),
        verdict=dict(type='str', choices=list(canary.VERDICTS)),
        failed_result=dict(type='dict'),
        rollback_policy=dict(type='str', choices=['rollback', 'freeze']),
        fleet_hosts=dict(type='list', elements='str'),
        info_var=dict(type='str', default=hostvars.DEFAULT_INFO_VAR),
        fix=dict(type='bool', default=False),
    )
    NEEDS = {'pause': 'reason', 'halt': 'reason', 'stop_batch': 'reason', 'mark': 'state', 'event': 'kind',
             'reset_budget': 'reason',
             'canary_verdict': 'verdict', 'contained': 'rollback_policy'}

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        op = args['op']
        if self.NEEDS.get(op) and not args[self.NEEDS[op]]:
            self.fail('op=%s needs %s' % (op, self.NEEDS[op]))
        if op == 'lock' and args['force'] and not args['reason']:
            self.fail('forcing the lock needs a reason')
        operator, run_id = control.actor_defaults(args['operator'], task_vars)
        if self._play_context.check_mode and op != 'reconcile':
            return dict(result, changed=op not in NOT_CHANGES, msg='check mode: op=%s would write to the ledger' % op)
        location = self.ledger_location(args['ledger'], task_vars)
        with self.failing_on_errors(result), opened_ledger(location) as ledger:
            result.update(self._op(op, ledger, args, operator, run_id, task_vars or {}))
        return result

    def _op(self, op, ledger, args, operator, run_id, task_vars):
        reason, hosts = args['reason'], args['hosts'] or []
        if op == 'pause':
            return control.pause(ledger, reason, operator, run_id=run_id)
        if op == 'resume':
            return control.resume(ledger, operator, ack=args['ack'], run_id=run_id)
        if op == 'halt':
            return control.halt(ledger, reason, operator, source=args['playbook'] or 'playbook', run_id=run_id)
        if op == 'stop_batch':
            return control.stop_batch(ledger, args['failed_result'], reason, operator,
                                      source=args['playbook'] or 'playbook', run_id=run_id)
        if op == 'lock':
            return control.lock(ledger, identity.lock_holder(operator), args['playbook'], operator, force=args['force'],
                                reason=reason, stale_after=args['stale_after'], wait=display.warning, run_id=run_id)
        if op == 'unlock':
            return control.unlock(ledger, identity.lock_holder(operator), run_id=run_id)
        if op == 'mark':
            return control.mark(ledger, args['state'], hosts, args['from_states'], reason, run_id=run_id)
        if op == 'event':
            return control.event(ledger, args['kind'], operator=operator, reason=reason, run_id=run_id, **args['data'])
        if op == 'canary_verdict':
            return canary.record_verdict(ledger, args['verdict'], hosts, reason, operator, run_id=run_id,
                                         **args['data'])
        if op == 'canary_stopped':
            return canary.record_stop(ledger, hosts, reason, operator, run_id=run_id,
                                      failed_result=args['failed_result'], **args['data'])
        if op == 'reset_budget':
            return control.reset_budget(ledger, operator, reason, run_id=run_id)
        if op == 'judged':
            return control.judged(ledger, hosts, reason, run_id=run_id)
        if op == 'contained':
            return wave.record_containment(ledger, args['rollback_policy'], hosts, run_id=run_id, operator=operator)
        observed, missing = hostvars.reported_nodes(task_vars.get('hostvars', {}), args['fleet_hosts'],
                                                    args['info_var'])
        return control.reconcile(ledger, observed, missing, fix=args['fix'] and not self._play_context.check_mode,
                                 operator=operator, run_id=run_id)
