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
                                           max_close_group_share=args['max_close_group_share'])
        except wave_planning.PlanError as exc:
            return dict(result, failed=True, msg=str(exc))
        if plan['unknown_mode_nodes']:
            return dict(result, failed=True, plan=plan,
                        msg='cannot plan while the mode of %d node(s) is unknown (stopped or not serving metrics): %s'
                            % (len(plan['unknown_mode_nodes']), ', '.join(plan['unknown_mode_nodes'][:20])))

        refusals = []
        if args['stage'] == _modes.IROH_ONLY and plan['hosts']:
            offenders = _modes.partition_violations(
                _modes.IROH_ONLY, {'%s/%s' % (n['host'], n['service_name']): n['mode'] for n in nodes})
            if offenders:
                refusals.append('iroh_only is refused while %d node(s) still run libp2p_only '
                                '(iroh_only and libp2p_only nodes cannot reach each other): %s'
                                % (len(offenders), ', '.join(offenders[:20])))
            risk = _projected_partition_risk(nodes, set(plan['hosts']), plan['batches'])
            plan['projected_partition_risk'] = risk
            if risk > args['max_partition_risk']:
                refusals.append('projected partition risk %.2f of this wave exceeds %.2f'
                                % (risk, args['max_partition_risk']))

        # Rollback time is a promise: after this wave, a fast rollback of every node past
        # libp2p_only must still fit in the SLA.
        wave_hosts = set(plan['hosts'])
        migrated_hosts = {n['host'] for n in nodes if n['mode'] != _modes.LIBP2P_ONLY} | wave_hosts
        per_host = max((sum(1 for n in nodes if n['host'] == h) for h in migrated_hosts), default=0)
        samples = args['switch_seconds'] or [args['default_switch_seconds']]
        projection = wave_planning.project_fast_rollback(len(migrated_hosts), per_host, samples,
                                                         forks=args['rollback_forks'])
        projection['sla_seconds'] = args['rollback_sla_seconds']
        projection['measured'] = bool(args['switch_seconds'])
        plan['rollback_projection'] = projection
        if plan['hosts'] and projection['seconds'] > args['rollback_sla_seconds']:
            refusals.append('a fast rollback of the %d host(s) past libp2p_only after this wave would take about '
                            '%.0f s, %.0f s over the %.0f s SLA (switch p95 %.1f s, %d forks); use a smaller wave '
                            'or more rollback forks'
                            % (len(migrated_hosts), projection['seconds'],
                               projection['seconds'] - args['rollback_sla_seconds'], args['rollback_sla_seconds'],
                               projection['switch_p95'] or 0.0, args['rollback_forks']))
        result.update(changed=False, plan=plan, msg=plan['message'])
        if refusals:
            result.update(failed=True, refusals=refusals, msg='wave refused: ' + '; '.join(refusals))
        return result

    @staticmethod
    def _canaries(result, nodes, args):
        try:
            hosts = wave_planning.select_canaries(nodes, args['canary_count'], args['exclude_hosts'])
        except wave_planning.PlanError as exc:
            return dict(result, failed=True, msg=str(exc))
        if not hosts:
            return dict(result, failed=True,
                        msg='no canary host: no fleet host outside the excluded ones has all its nodes on libp2p_only')
        plan = {'stage': _modes.DUAL_STACK, 'hosts': hosts, 'batches': [hosts], 'batch_sizes': [len(hosts)],
                'baseline_hosts': sorted({n['host'] for n in nodes if n['mode'] == _modes.LIBP2P_ONLY} - set(hosts)),
                'nodes_to_switch': sum(1 for n in nodes if n['host'] in hosts)}
        plan['message'] = 'canary: %s (first %d host(s) by name with every node on libp2p_only)' % (
            ', '.join(hosts), args['canary_count'])
        return dict(result, changed=False, plan=plan, msg=plan['message'])


def _projected_partition_risk(nodes, wave_hosts, batches):
    """Projected partition risk (0..1, the scale of the fleet's partition-risk rule) of an iroh_only wave.

    Two sources: node pairs that could not talk once the wave's nodes run iroh_only (only
    libp2p_only nodes are cut off from them), and the nodes of the largest batch, unreachable
    while they restart. Each is scaled like the rule: twice the unreachable share, capped at 1.
    """
    total = len(nodes)
    if total < 2:
        return 0.0
    modes = [(_modes.IROH_ONLY if n['host'] in wave_hosts else n['mode']) for n in nodes]
    libp2p_only = sum(1 for m in modes if m == _modes.LIBP2P_ONLY)
    iroh_only = sum(1 for m in modes if m == _modes.IROH_ONLY)
    split = 2.0 * (2.0 * libp2p_only * iroh_only) / (total * (total - 1))
    per_host = {}
    for n in nodes:
        per_host[n['host']] = per_host.get(n['host'], 0) + 1
    largest_batch = max((sum(per_host.get(h, 0) for h in batch) for batch in batches), default=0)
    restarting = 2.0 * largest_batch / total
    return round(min(1.0, max(split, restarting)), 3)
