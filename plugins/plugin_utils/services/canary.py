# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Use cases of the canary: did it pass, what its verdict is after a stop, how the canary run ends.

``passed()`` is the one test of a canary verdict: the wave's precondition (control.check with
require_canary), the CLI's start plan and its dry run ask it; nobody lower-cases or guesses keys.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import gate

PASSED, FAILED, FROZEN, INVALIDATED = 'passed', 'failed', 'frozen', 'invalidated'
VERDICTS = (PASSED, FAILED, FROZEN, INVALIDATED)


def passed(verdict):
    """Whether the ledger's canary verdict ({verdict, at, ...} as Ledger.canary_verdict() returns, or None) passed."""
    return bool(verdict) and verdict.get('verdict') == PASSED


def refusal(verdict):
    """Why a wave may not start on this canary verdict, or None when it passed."""
    if passed(verdict):
        return None
    last = ('last verdict: %s at %s, %s' % (verdict.get('verdict'), verdict.get('at'), verdict.get('reason') or '')
            if verdict else 'no canary verdict recorded')
    return 'the canary has not passed (%s); run playbooks/canary.yml first' % last


def verdict_after_stop(containment):
    """The canary's verdict once its block stopped: frozen when nothing judged it (or a pause froze it),
    failed when a verdict on its nodes rolled them back (gate.containment())."""
    return FROZEN if containment == gate.FREEZE else FAILED


def record_stop(ledger, hosts, reason, operator, run_id=None, failed_result=None, **data):
    """The canary's block stopped on ``failed_result``: record its verdict (failed, or frozen when nothing judged
    it - a halt without a verdict, a pause, or a task that could not judge) and say whether its nodes go back to
    libp2p_only (``roll_back``)."""
    flags = ledger.get_flags()
    containment = gate.containment(flags.get('halted'), gate.ROLLBACK, pause_flag=flags.get('paused'))
    if (failed_result or {}).get('verdict') in gate.NO_VERDICT:
        containment = gate.FREEZE
    verdict = verdict_after_stop(containment)
    out = record_verdict(ledger, verdict, hosts, reason, operator, run_id=run_id, **data)
    out.update(containment=containment, roll_back=verdict == FAILED)
    return out


DRILL = 'rollback drill'


def drill_times(ledger, run_id):
    """The canary's rollback drill in this run: {back: [seconds], forward: [seconds]} of its nodes, or None."""
    back, forward = [], []
    for entry in ledger.history(limit=500, run_id=run_id):
        if not str(entry.get('reason') or '').startswith(DRILL):
            continue
        if entry.get('seconds_to_ready') is not None:
            (back if entry.get('to_mode') == 'libp2p_only' else forward).append(entry['seconds_to_ready'])
    return {'back': back, 'forward': forward} if back or forward else None


def record_verdict(ledger, verdict, hosts, reason, operator, run_id=None, **data):
    """Store the canary verdict with its evidence (a passed canary's rollback drill and its times included);
    ``changed`` when the verdict or its hosts differ."""
    previous = ledger.canary_verdict() or {}
    hosts = list(hosts or [])
    drill = drill_times(ledger, run_id) if verdict == PASSED and run_id is not None else None
    if drill:
        data['drill'] = drill
        ledger.record_event('rollback_drill', run_id=run_id, hosts=hosts, **drill)
    ledger.set_canary_verdict(verdict, run_id=run_id, **dict(data, hosts=hosts, reason=reason, operator=operator))
    changed = previous.get('verdict') != verdict or sorted(previous.get('hosts') or []) != sorted(hosts)
    return {'changed': changed, 'verdict': verdict}


def conclusion(verdict):
    """How a canary run ends: {failed, outcome, msg} from the verdict this run recorded."""
    verdict = verdict or {}
    hosts = ', '.join(verdict.get('hosts') or [])
    reason = verdict.get('reason') or 'see the ledger'
    if verdict.get('verdict') == PASSED:
        return {'failed': False, 'outcome': PASSED,
                'msg': 'the canary PASSED on %s: %s. Next: playbooks/rollout.yml -e wave=<percent>' % (hosts, reason)}
    if verdict.get('verdict') == FROZEN:
        return {'failed': True, 'outcome': FROZEN, 'msg': (
            'The canary could NOT be judged and was FROZEN: %s. Nothing was rolled back: its hosts (%s) stay in '
            'dual_stack because nobody could judge them (or the migration was paused meanwhile). Restore monitoring, '
            'resume (playbooks/resume.yml, with -e ack=true for a halt), then re-run playbooks/canary.yml: it judges '
            'the same hosts again.' % (reason, hosts))}
    return {'failed': True, 'outcome': FAILED, 'msg': (
        'The canary FAILED and its hosts were rolled back to libp2p_only: %s. rollout.yml refuses to start until a '
        'canary passes.' % reason)}


def after_rollback(ledger, target, rolled_back_hosts, reason, operator, keep=False, run_id=None):
    """A rollback to libp2p_only that moved nodes back undoes what the canary judged: its passed verdict no
    longer holds and the next rollout asks for a new canary - unless the operator keeps it (recorded).
    Returns what happened to the verdict ('invalidated', 'kept', or None when there was nothing to do)."""
    verdict = ledger.canary_verdict()
    if target != 'libp2p_only' or not rolled_back_hosts or not passed(verdict):
        return None
    if keep:
        ledger.record_event('canary_kept', run_id=run_id, operator=operator, reason=reason,
                            rolled_back_hosts=list(rolled_back_hosts), canary_hosts=verdict.get('hosts'))
        return 'kept'
    ledger.set_canary_verdict(INVALIDATED, run_id=run_id, hosts=verdict.get('hosts') or [], operator=operator,
                              reason='the rollback of %s (%s) undid what the canary of %s judged: run '
                                     'playbooks/canary.yml again' % (', '.join(rolled_back_hosts), reason,
                                                                     verdict.get('at')),
                              previous=verdict.get('verdict'))
    return 'invalidated'
