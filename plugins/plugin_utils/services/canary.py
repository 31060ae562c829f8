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

PASSED, FAILED, FROZEN = 'passed', 'failed', 'frozen'
VERDICTS = (PASSED, FAILED, FROZEN)


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


def record_verdict(ledger, verdict, hosts, reason, operator, run_id=None, **data):
    """Store the canary verdict with its evidence; ``changed`` when the verdict or its hosts differ."""
    previous = ledger.canary_verdict() or {}
    hosts = list(hosts or [])
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
