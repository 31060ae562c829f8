# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side access to the migration ledger from playbooks (see the module stub's docs)."""

from __future__ import annotations

import datetime
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import gate, guard, identity, redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

display = Display()

ARGUMENT_SPEC = dict(
    op=dict(type='str', required=True,
            choices=['check', 'status', 'pause', 'resume', 'halt', 'lock', 'unlock', 'mark', 'event',
                     'canary_verdict', 'switch_times', 'reconcile', 'judged']),
    ledger=dict(type='str'),
    operator=dict(type='str'),
    reason=dict(type='str'),
    ack=dict(type='bool', default=False),
    require_canary=dict(type='bool', default=False),
    allow_paused=dict(type='bool', default=False),
    allow_halted=dict(type='bool', default=False),
    playbook=dict(type='str'),
    force=dict(type='bool', default=False),
    stale_after=dict(type='int', default=3600),
    hosts=dict(type='list', elements='str'),
    state=dict(type='str', choices=list(_modes.STATES)),
    from_states=dict(type='list', elements='str'),
    kind=dict(type='str'),
    data=dict(type='dict', default={}),
    verdict=dict(type='str', choices=['passed', 'failed', 'frozen']),
    rollback_policy=dict(type='str', choices=['rollback', 'freeze']),
    testing_deadline=dict(type='int', default=3600),
    fleet_hosts=dict(type='list', elements='str'),
    info_var=dict(type='str', default='wave_transport_info'),
    fix=dict(type='bool', default=False),
)

WRITE_OPS = frozenset(['pause', 'resume', 'halt', 'lock', 'unlock', 'mark', 'event', 'canary_verdict', 'judged'])
# Writes that are not a change of the migration: the audit trail and the run's own lock.
NOT_CHANGES = frozenset(['event', 'lock', 'unlock'])


def default_operator(task_vars=None):
    """The run's operator: the one derivation (AWX user, operator extra var, environment, OS user)."""
    return identity.operator(task_vars or {})


class ActionModule(ActionBase):
    """Ledger operations run on the controller: flags, lock, state marks, events."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail('migration_ledger: %s' % '; '.join(validation.error_messages))
        args = validation.validated_parameters
        args['operator'] = args['operator'] or default_operator(task_vars)
        if self._play_context.check_mode and args['op'] in WRITE_OPS:
            return dict(result, changed=args['op'] not in NOT_CHANGES,
                        msg='check mode: op=%s would write to the ledger' % args['op'])
        try:
            ledger = ledger_lib.open_ledger(ledger_lib.resolve_ledger_location(args['ledger']))
        except ledger_lib.LedgerError as exc:
            raise AnsibleActionFail('migration ledger unusable: %s' % redaction.redact_text(exc)) from None
        if args['op'] == 'reconcile':
            args['observed'] = self._observed(task_vars or {}, args)
            if self._play_context.check_mode:
                args['fix'] = False
        try:
            handler = getattr(self, '_op_%s' % args['op'])
            result.update(handler(ledger, args))
        except ledger_lib.LedgerLocked as exc:
            result.update(failed=True, refused='locked', msg=str(exc))
        except ledger_lib.LedgerError as exc:
            result.update(failed=True, msg=str(exc))
        finally:
            ledger.close()
        return result

    # -- operations ------------------------------------------------------------------------
    def _op_check(self, ledger, args):
        """Refuse when the migration is halted or paused, or the canary has not passed."""
        flags = ledger.get_flags()
        out = {'changed': False, 'flags': flags}
        if args['rollback_policy']:
            # What a halt means for the nodes this run switched: the gate's one decision.
            out['containment'] = gate.containment(flags.get('halted'), args['rollback_policy'],
                                                  pause_flag=flags.get('paused'))
        # The decision is the guard's (plugin_utils/guard.py); allow_halted / allow_paused hide a flag from it.
        check_lock = not (args['allow_halted'] and args['allow_paused'])
        if check_lock:
            ledger.wait_for_gone_controller(progress=display.warning)
        snapshot = guard.snapshot_of(ledger)
        snapshot.flags = {'halted': None if args['allow_halted'] else flags.get('halted'),
                          'paused': None if args['allow_paused'] else flags.get('paused')}
        decision = guard.decide(snapshot, guard.Actor.from_environment(), check_lock=check_lock)
        if not decision.allowed:
            out.update(failed=True, refused=decision.refused, msg=decision.reason)
            return out
        verdict = ledger.canary_verdict()
        out['canary'] = verdict
        out['unjudged_hosts'] = sorted({n['host'] for n in ledger.unjudged_nodes()})
        if args['require_canary']:
            if not verdict or verdict.get('verdict') != 'passed':
                out.update(failed=True, refused='canary',
                           msg='the canary has not passed (%s); run playbooks/canary.yml first'
                               % (('last verdict: %s at %s, %s' % (verdict.get('verdict'), verdict.get('at'),
                                                                   verdict.get('reason') or ''))
                                  if verdict else 'no canary verdict recorded'))
                return out
        return out

    def _op_status(self, ledger, args):
        nodes = ledger.nodes()
        cutoff = time.time() - args['testing_deadline']
        overdue = [n for n in nodes if n['state'] == _modes.STATE_DUAL_STACK_TESTING and n.get('updated_at')
                   and datetime.datetime.fromisoformat(n['updated_at']).timestamp() < cutoff]
        migrated_hosts = sorted({n['host'] for n in nodes
                                 if n['state'] not in (_modes.STATE_LIBP2P_ONLY, _modes.STATE_ROLLED_BACK)})
        verdicts = ledger.events(kinds=['gate_verdict', 'canary_verdict', 'canary_analysis'], limit=10)
        return {
            'changed': False,
            'last_verdicts': ['%s %s: %s' % (e.get('at'), e.get('kind'),
                                             (e.get('data') or {}).get('msg') or (e.get('data') or {}).get('reason')
                                             or (e.get('data') or {}).get('verdict') or '')
                              for e in verdicts],
            'progress': ledger.progress(),
            'flags': ledger.get_flags(),
            'canary': ledger.canary_verdict(),
            'events': ledger.events(limit=20),
            'migrated_hosts': migrated_hosts,
            'nodes_overdue': [{'host': n['host'], 'service_name': n['service_name'], 'since': n['updated_at']}
                              for n in overdue],
        }

    def _op_pause(self, ledger, args):
        reason = self._need(args, 'reason', 'a pause needs a reason (-e reason="...")')
        already = ledger.get_flags().get('paused')
        if already:
            return {'changed': False,
                    'msg': 'already paused by %s: %s' % (already.get('operator'), already.get('reason'))}
        ledger.set_pause(reason, args['operator'], run_id=identity.run_id())
        return {'changed': True, 'msg': 'migration paused by %s: %s' % (args['operator'], reason)}

    def _op_resume(self, ledger, args):
        flags = ledger.get_flags()
        if not flags.get('paused') and not flags.get('halted'):
            return {'changed': False, 'msg': 'migration is neither paused nor halted'}
        ledger.resume(args['operator'], ack=args['ack'], run_id=identity.run_id())
        return {'changed': True, 'msg': 'migration resumed by %s' % args['operator'], 'cleared': flags}

    def _op_halt(self, ledger, args):
        reason = self._need(args, 'reason', 'a halt needs a reason')
        ledger.set_halt(reason, args['operator'], source=args['playbook'] or 'playbook', run_id=identity.run_id())
        return {'changed': True, 'msg': 'migration halted: %s' % reason}

    def _op_lock(self, ledger, args):
        holder = self._holder(args)
        if args['force']:
            reason = self._need(args, 'reason', 'forcing the lock needs a reason')
            ledger.force_unlock(args['operator'], reason)
        else:
            ledger.wait_for_gone_controller(progress=display.warning)
        ledger.acquire_lock(holder, args['playbook'] or 'unknown', stale_after=args['stale_after'],
                            run_id=identity.run_id())
        # The run lock lives only as long as the run: taking and releasing it is not a change of
        # the migration (a re-run that does nothing else reports changed=false). Forcing is.
        return {'changed': bool(args['force']), 'holder': holder}

    def _op_unlock(self, ledger, args):
        ledger.release_lock(self._holder(args), run_id=identity.run_id())
        return {'changed': False}

    def _op_mark(self, ledger, args):
        """Move every node of ``hosts`` that is in one of ``from_states`` to ``state``."""
        state = self._need(args, 'state', 'op=mark needs state')
        hosts = args['hosts'] or []
        from_states = args['from_states'] or None
        moved = []
        for node in ledger.nodes(states=from_states, hosts=hosts):
            if node['state'] == state:
                continue
            ledger.record_transition(node['host'], node['service_name'], node.get('peer_id'), state,
                                     mode=_modes.STATE_MODE[state], version=node.get('version'),
                                     reason=args['reason'] or 'marked by playbook',
                                     run_id=identity.run_id())
            moved.append('%s/%s' % (node['host'], node['service_name']))
        return {'changed': bool(moved), 'moved': moved}

    def _op_event(self, ledger, args):
        kind = self._need(args, 'kind', 'op=event needs kind')
        ledger.record_event(kind, run_id=identity.run_id(),
                            operator=args['operator'], reason=args['reason'], **args['data'])
        # Events are the audit trail: appending one changes neither a node nor a flag.
        return {'changed': False}

    def _op_canary_verdict(self, ledger, args):
        verdict = self._need(args, 'verdict', 'op=canary_verdict needs verdict')
        previous = ledger.canary_verdict() or {}
        data = dict(args['data'])
        data.update(hosts=args['hosts'] or [], reason=args['reason'], operator=args['operator'])
        ledger.set_canary_verdict(verdict, run_id=identity.run_id(), **data)
        changed = previous.get('verdict') != verdict or sorted(previous.get('hosts') or []) != sorted(data['hosts'])
        return {'changed': changed, 'verdict': verdict}

    def _op_judged(self, ledger, args):
        """A gate passed ``hosts``: their nodes switched without a verdict are judged (any stage)."""
        judged = ledger.mark_judged(args['hosts'] or [], args['reason'] or 'passed the gate',
                                    run_id=identity.run_id())
        return {'changed': bool(judged), 'judged': judged}

    def _op_switch_times(self, ledger, args):
        """Measured seconds-to-ready of recent switches (for the rollback-time projection)."""
        return {'changed': False, 'switch_seconds': ledger.switch_times(limit=1000)}

    def _op_reconcile(self, ledger, args):
        """Compare the ledger with transport_info from the hosts; with fix=true, correct the ledger."""
        observed, missing = args['observed']
        report = ledger.reconcile(observed, fix=args['fix'], operator=args['operator'],
                                  run_id=identity.run_id())
        drift = report['drift']
        if not drift:
            msg = 'the ledger agrees with the %d node(s) the hosts report' % report['checked']
        elif args['fix']:
            msg = '%d drift(s) between the ledger and the hosts, %d fixed in the ledger' % (len(drift), report['fixed'])
        else:
            msg = '%d drift(s) between the ledger and the hosts (report only; fix=true corrects it)' % len(drift)
        if missing:
            msg += '; no answer from %s' % ', '.join(missing)
        return {'changed': bool(report['fixed']), 'drift': drift, 'checked': report['checked'],
                'unanswered_hosts': missing, 'msg': msg}

    @staticmethod
    def _observed(task_vars, args):
        hostvars = task_vars.get('hostvars', {})
        observed, missing = {}, []
        for host in args['fleet_hosts'] or []:
            info = hostvars[host].get(args['info_var']) if host in hostvars else None
            if not info or info.get('failed') or 'nodes' not in info:
                missing.append(host)
                continue
            observed[host] = info['nodes']
        return observed, missing

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _need(args, key, msg):
        if not args.get(key):
            raise AnsibleActionFail(msg)
        return args[key]

    @staticmethod
    def _holder(args):
        # The same holder string the migration_tracker callback uses for this controller process,
        # so that the callback keeps the lock alive and releases it if the play dies.
        return identity.lock_holder(args['operator'])
