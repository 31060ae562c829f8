# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plan a wave on the controller from the fleet's transport_info facts (see the module stub)."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import wave_planning

ARGUMENT_SPEC = dict(
    wave=dict(type='raw'),
    canary_count=dict(type='int'),
    rollback_to=dict(type='str', choices=[_modes.LIBP2P_ONLY, _modes.DUAL_STACK]),
    strategy=dict(type='str', default='fast', choices=['fast', 'gradual']),
    only_hosts=dict(type='list', elements='str'),
    stage=dict(type='str', default=_modes.DUAL_STACK, choices=list(_modes.MODES[1:])),
    fleet_hosts=dict(type='list', elements='str', required=True),
    info_var=dict(type='str', default='wave_transport_info'),
    batches=dict(type='list', elements='raw', default=[1, '10%', '25%']),
    exclude_hosts=dict(type='list', elements='str', default=[]),
    unjudged_hosts=dict(type='list', elements='str', default=[]),
    max_close_group_share=dict(type='float', default=0.4),
    switch_seconds=dict(type='list', elements='float', default=[]),
    default_switch_seconds=dict(type='float', default=60.0),
    rollback_sla_seconds=dict(type='float', default=300.0),
    rollback_forks=dict(type='int', default=50),
    max_partition_risk=dict(type='float', default=0.7),
)


def fleet_nodes(hostvars, hosts, info_var):
    """Every node of the fleet from the per-host transport_info results."""
    nodes, missing = [], []
    for host in hosts:
        info = hostvars[host].get(info_var) if host in hostvars else None
        if not info or info.get('failed') or 'nodes' not in info:
            missing.append(host)
            continue
        for node in info['nodes']:
            if node.get('status') == 'Removed':
                continue
            nodes.append({'host': host, 'service_name': node['service_name'], 'peer_id': node.get('peer_id'),
                          'mode': node.get('mode'), 'status': node.get('status')})
    return nodes, missing


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        one_of = [['wave', 'canary_count', 'rollback_to']]
        validation = ArgumentSpecValidator(ARGUMENT_SPEC, mutually_exclusive=one_of,
                                           required_one_of=one_of).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail('migration_wave_plan: %s' % '; '.join(validation.error_messages))
        args = validation.validated_parameters
        hostvars = task_vars.get('hostvars', {})
        nodes, missing = fleet_nodes(hostvars, args['fleet_hosts'], args['info_var'])
        if missing:
            return dict(result, failed=True, missing_hosts=missing,
                        msg='no transport_info for %d host(s): %s. Every fleet host must answer before a wave is '
                            'planned (an unreachable host could hide libp2p-only nodes).'
                            % (len(missing), ', '.join(missing[:20])))
        if args['canary_count'] is not None:
            return self._canaries(result, nodes, args)
        if args['rollback_to']:
            try:
                plan = wave_planning.plan_rollback(nodes, args['rollback_to'], args['strategy'], args['batches'],
                                                   args['only_hosts'])
            except wave_planning.PlanError as exc:
                return dict(result, failed=True, msg=str(exc))
            return dict(result, changed=False, plan=plan, msg=plan['message'])
        try:
            plan = wave_planning.plan_wave(nodes, args['wave'], stage=args['stage'], batches=args['batches'],
                                           exclude_hosts=args['exclude_hosts'],
                                           max_close_group_share=args['max_close_group_share'],
                                           max_partition_risk=args['max_partition_risk'],
                                           switch_seconds=args['switch_seconds'],
                                           default_switch_seconds=args['default_switch_seconds'],
                                           rollback_sla_seconds=args['rollback_sla_seconds'],
                                           rollback_forks=args['rollback_forks'])
        except wave_planning.PlanError as exc:
            return dict(result, failed=True, msg=str(exc))
        result.update(changed=False, plan=plan, msg=plan['message'])
        if plan['refusals']:
            result.update(failed=True, refusals=plan['refusals'], msg='wave refused: ' + '; '.join(plan['refusals']))
        return result

    @staticmethod
    def _canaries(result, nodes, args):
        try:
            hosts = wave_planning.select_canaries(nodes, args['canary_count'], args['exclude_hosts'],
                                                  unjudged_hosts=args['unjudged_hosts'])
        except wave_planning.PlanError as exc:
            return dict(result, failed=True, msg=str(exc))
        if not hosts:
            return dict(result, failed=True,
                        msg='no canary host: no fleet host outside the excluded ones has all its nodes on libp2p_only')
        plan = {'stage': _modes.DUAL_STACK, 'hosts': hosts, 'batches': [hosts], 'batch_sizes': [len(hosts)],
                'baseline_hosts': sorted({n['host'] for n in nodes if n['mode'] == _modes.LIBP2P_ONLY} - set(hosts)),
                'nodes_to_switch': sum(1 for n in nodes if n['host'] in hosts)}
        rejudged = [h for h in hosts if h in args['unjudged_hosts']]
        plan['rejudged_hosts'] = rejudged
        plan['message'] = 'canary: %s (%s)' % (', '.join(hosts), (
            'switched without a verdict by an earlier canary (frozen or interrupted), judged again'
            if rejudged == hosts else
            ('%s switched without a verdict and judged again, then the first host(s) by name with every node '
             'on libp2p_only' % ', '.join(rejudged)) if rejudged else
            'first %d host(s) by name with every node on libp2p_only' % args['canary_count']))
        return dict(result, changed=False, plan=plan, msg=plan['message'])
