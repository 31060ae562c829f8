# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Use cases of operator and run control: may this run go on, pause, resume, halt, the run lock, status.

Each function reads the ledger, asks the one decision (guard, gate containment, canary) and writes
what the use case writes; it returns a plain dict in the shape of an Ansible result (``changed``,
``failed``, ``refused``, ``msg`` and the use case's own fields). The action plugins return it as it
is; the CLI, the dashboard and the EDA source render it. None of them decides anything of its own.
"""

from __future__ import annotations

import datetime
import time

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import gate, guard, identity, run_kinds
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import canary

PAUSED, HALTED = 'paused', 'halted'


# ---------------------------------------------------------------------------- may we go on
def check(ledger, *, require_canary=False, allow_paused=False, allow_halted=False, rollback_policy=None,
          stage=None, wait=None, actor=None):
    """May this run go on: the guard (halt, pause, a live lock of another run, this controller alive),
    and the canary verdict when the run needs it. With ``rollback_policy``: what a halt means for the
    nodes this run switched (``containment``) and, for ``stage``, the mode they go back to.

    ``allow_paused`` / ``allow_halted`` hide that flag from the guard (a conclusion reads the flags it
    must act on). ``wait(message)``: called when a dead run's workers are still finishing. ``actor``: who asks
    (default: this process as a run, guard.Actor.from_environment(); the CLI, which holds no lock, asks as
    guard.Actor()).
    """
    flags = ledger.get_flags()
    out = {'changed': False, 'flags': flags}
    if rollback_policy:
        out['containment'] = gate.containment(flags.get('halted'), rollback_policy, pause_flag=flags.get('paused'))
        if stage:
            out['rollback_mode'] = _modes.previous_mode(stage)
    check_lock = not (allow_halted and allow_paused)
    if check_lock:
        ledger.wait_for_gone_controller(progress=wait)
    snapshot = guard.snapshot_of(ledger)
    snapshot.flags = {HALTED: None if allow_halted else flags.get(HALTED),
                      PAUSED: None if allow_paused else flags.get(PAUSED)}
    decision = guard.decide(snapshot, actor or guard.Actor.from_environment(), check_lock=check_lock)
    if not decision.allowed:
        out.update(failed=True, refused=decision.refused, msg=decision.reason)
        return out
    verdict = ledger.canary_verdict()
    out['canary'] = verdict
    out['unjudged_hosts'] = sorted({n['host'] for n in ledger.unjudged_nodes()})
    out['budget'] = budget = ledger.failure_budget()
    out['budget_text'] = describe_budget(budget)
    if check_lock and budget_exhausted(budget):
        out.update(failed=True, refused='budget', msg=(
            'the failure budget is exhausted: %s. Failures accumulate across waves until the budget is reset '
            'explicitly, once their causes are understood: playbooks/budget_reset.yml -e \'{"reason": "..."}\''
            % describe_budget(budget)))
        return out
    if require_canary:
        refusal = canary.refusal(verdict)
        if refusal:
            out.update(failed=True, refused='canary', msg=refusal)
    return out


def budget_exhausted(budget):
    """Whether no failure is left in the failure budget ({used, budget}): a new run may not start."""
    limit = (budget or {}).get('budget')
    return limit is not None and budget['used'] >= max(int(limit), 1)


def describe_budget(budget):
    """``budget: 3 of 5 failed nodes used (since ...)`` - how every front-end names it."""
    budget = budget or {}
    limit = budget.get('budget')
    return 'budget: %d of %s failed node(s) used%s' % (
        budget.get('used', 0), limit if limit is not None else '?',
        ' since the reset at %s' % budget['since'] if budget.get('since') else '')


def reset_budget(ledger, operator, reason, run_id=None):
    """Reset the failure budget: a separate, recorded action."""
    before = ledger.reset_budget(operator, reason, run_id=run_id)
    return {'changed': True, 'msg': 'failure budget reset by %s (%d failed node(s) counted before): %s'
            % (operator, before, reason)}


# ---------------------------------------------------------------------------- pause / resume / halt
def pause_decision(flags):
    """What a pause does with these flags: ``nothing`` (already paused: by whom and why) or ``pause``."""
    already = flags.get(PAUSED)
    if already:
        return {'action': 'nothing',
                'msg': 'already paused by %s: %s' % (already.get('operator'), already.get('reason'))}
    return {'action': 'pause', 'msg': 'pause'}


def pause(ledger, reason, operator, run_id=None):
    """Pause the migration: a running wave stops before its next batch. Pausing twice changes nothing."""
    decision = pause_decision(ledger.get_flags())
    if decision['action'] == 'nothing':
        return {'changed': False, 'already': True, 'msg': decision['msg']}
    ledger.set_pause(reason, operator, run_id=run_id)
    return {'changed': True, 'msg': 'migration paused by %s: %s' % (operator, reason)}


def resume_decision(flags, ack, intents=()):
    """What a resume does with these flags (and un-ended switch intents, which count as a halt):
    ``nothing``, ``refused`` (a halt or an unrecorded switch without ack) or ``resume``."""
    halted = flags.get(HALTED)
    if intents and not ack:
        return {'action': 'refused', 'msg': guard.describe_intents(intents) + (
            ': compare the ledger with the hosts (playbooks/reconcile.yml -e fix=true), then resume with ack '
            '(CLI: resume --ack; playbook: -e ack=true)')}
    if not flags.get(PAUSED) and not halted and not intents:
        return {'action': 'nothing', 'msg': 'migration is neither paused nor halted'}
    if halted and not ack:
        return {'action': 'refused',
                'msg': 'the migration is halted (%s, by %s via %s at %s); a halt needs an explicit acknowledgement '
                       'once its cause is understood: resume with ack (CLI: resume --ack; playbook: -e ack=true)'
                       % (halted.get('reason'), halted.get('operator'), halted.get('source'), halted.get('at'))}
    acknowledged = [word for word, there in (('halt', halted), ('unrecorded switches', intents)) if there]
    return {'action': 'resume', 'acknowledged': acknowledged,
            'msg': 'resume' + (' and acknowledge the %s' % ' and '.join(acknowledged) if acknowledged else '')}


def resume(ledger, operator, ack=False, run_id=None):
    """Clear a pause; clear a halt only with ``ack`` (the ledger refuses otherwise, in its transaction)."""
    flags = ledger.get_flags()
    intents = ledger.intents()
    decision = resume_decision(flags, ack, intents)
    if decision['action'] == 'nothing':
        return {'changed': False, 'msg': decision['msg']}
    if decision['action'] == 'refused':
        return {'changed': False, 'failed': True, 'refused': HALTED, 'msg': decision['msg']}
    ledger.resume(operator, ack=ack, run_id=run_id)
    acknowledged = decision['acknowledged']
    return {'changed': True, 'cleared': dict(flags, unrecorded=intents),
            'msg': 'migration resumed by %s%s' % (operator, ' (%s acknowledged)' % ' and '.join(acknowledged)
                                                  if acknowledged else '')}


def halt(ledger, reason, operator, source, run_id=None, **data):
    """Halt the migration (the first cause is kept); every guard refuses until a resume with ack."""
    ledger.set_halt(reason, operator, source=source, run_id=run_id, **data)
    return {'changed': True, 'msg': 'migration halted: %s' % reason}


def stop_batch(ledger, failed_result, reason, operator, source, run_id=None):
    """A wave's batch stopped on a failed task: halt, unless the stop was the guard seeing a pause (a pause
    is the operator's "stop where you are", not a verdict; it stays a pause). A stop because nothing could
    judge the nodes (the gate unavailable or without data) halts without a verdict: the wave freezes."""
    failed_result = failed_result or {}
    if failed_result.get('refused') == PAUSED:
        return {'changed': False, 'msg': 'the batch stopped for a pause; no halt written'}
    cause = gate.CAUSE_NO_VERDICT if failed_result.get('verdict') in gate.NO_VERDICT else gate.CAUSE_VERDICT
    return halt(ledger, reason, operator, source, run_id=run_id, cause=cause)


# ---------------------------------------------------------------------------- the run lock
def lock(ledger, holder, playbook, operator, force=False, reason=None, stale_after=None, wait=None, run_id=None):
    """Take the run lock for this run (re-entrant); ``force`` first releases any holder (logged, needs a reason)."""
    if force:
        ledger.force_unlock(operator, reason)
    else:
        ledger.wait_for_gone_controller(progress=wait)
    kwargs = {} if stale_after is None else {'stale_after': stale_after}
    ledger.acquire_lock(holder, playbook or 'unknown', run_id=run_id, **kwargs)
    # The run lock lives only as long as the run: taking and releasing it is not a change of the
    # migration (a re-run that does nothing else reports changed=false). Forcing is.
    return {'changed': bool(force), 'holder': holder}


def unlock(ledger, holder, run_id=None):
    """Release this run's lock (not another run's)."""
    return {'changed': False, 'released': ledger.release_lock(holder, run_id=run_id)}


# ---------------------------------------------------------------------------- status
# The outcomes whose playbook exits 0 (docs/operator-guide.md, "Outcomes and exit codes"); a degraded rollback
# fails unless rollback_degraded_fails is off, which its run's tasks show (none failed).
SUCCEEDED_OUTCOMES = ('ok', 'stopped_early')


def run_failed(run):
    """Whether a recorded run (Ledger.runs()) ended as a failed playbook: None while it runs (or without a run)."""
    if not run or not run.get('ended_at'):
        return None
    outcome = run.get('outcome')
    if outcome in SUCCEEDED_OUTCOMES:
        return False
    if outcome == 'degraded':
        stats = ((run.get('summary') or {}).get('hosts') or {}).values()
        return any(s.get('failures') or s.get('unreachable') for s in stats)
    return True


def last_migration_run(ledger):
    """The latest run that may change what nodes run (run_kinds.MIGRATION_KINDS), as status shows it: its kind,
    stage, outcome, whether it is running and whether it failed (run_failed()); None before the first."""
    runs = ledger.runs(limit=1, kinds=run_kinds.MIGRATION_KINDS)
    if not runs:
        return None
    run = runs[0]
    return {'id': run['id'], 'kind': run['kind'], 'stage': run_kinds.stage(run['kind']), 'playbook': run['playbook'],
            'operator': run['operator'], 'started_at': run['started_at'], 'ended_at': run['ended_at'],
            'outcome': run['outcome'], 'running': not run['ended_at'], 'failed': run_failed(run)}


def overdue_nodes(nodes, testing_deadline, now=None):
    """Nodes left in dual_stack_testing longer than ``testing_deadline`` seconds."""
    cutoff = (time.time() if now is None else now) - testing_deadline
    return [{'host': n['host'], 'service_name': n['service_name'], 'since': n['updated_at']}
            for n in nodes if n['state'] == _modes.STATE_DUAL_STACK_TESTING and n.get('updated_at')
            and datetime.datetime.fromisoformat(n['updated_at']).timestamp() < cutoff]


def migrated_hosts(nodes):
    """Hosts with a node the migration moved (neither libp2p_only nor rolled back)."""
    return sorted({n['host'] for n in nodes if n['state'] not in (_modes.STATE_LIBP2P_ONLY, _modes.STATE_ROLLED_BACK)})


def describe_verdict_event(event):
    data = event.get('data') or {}
    return '%s %s: %s' % (event.get('at'), event.get('kind'),
                          data.get('msg') or data.get('reason') or data.get('verdict') or '')


def status(ledger, testing_deadline=3600):
    """What the ledger says now: progress, flags, the lock, the canary, migrated hosts, overdue soaks."""
    nodes = ledger.nodes()
    verdicts = ledger.events(kinds=['gate_verdict', 'canary_verdict', 'canary_analysis'], limit=10)
    return {
        'changed': False,
        'last_verdicts': [describe_verdict_event(e) for e in verdicts],
        'progress': ledger.progress(),
        'flags': ledger.get_flags(),
        'lock': ledger.lock(),
        'intents': ledger.intents(),
        'budget': ledger.failure_budget(),
        'canary': ledger.canary_verdict(),
        'events': ledger.events(limit=20),
        'migrated_hosts': migrated_hosts(nodes),
        'nodes_overdue': overdue_nodes(nodes, testing_deadline),
    }


# ---------------------------------------------------------------------------- node marks
def mark(ledger, state, hosts, from_states=None, reason=None, run_id=None):
    """Move every node of ``hosts`` that is in one of ``from_states`` to ``state``."""
    moved = []
    for node in ledger.nodes(states=from_states or None, hosts=hosts or []):
        if node['state'] == state:
            continue
        ledger.record_transition(node['host'], node['service_name'], node.get('peer_id'), state,
                                 mode=_modes.STATE_MODE[state], version=node.get('version'),
                                 reason=reason or 'marked by playbook', run_id=run_id)
        moved.append('%s/%s' % (node['host'], node['service_name']))
    return {'changed': bool(moved), 'moved': moved}


def judged(ledger, hosts, reason=None, run_id=None):
    """A gate passed ``hosts``: their nodes switched without a verdict are judged (any stage)."""
    done = ledger.mark_judged(hosts or [], reason or 'passed the gate', run_id=run_id)
    return {'changed': bool(done), 'judged': done}


def reconcile(ledger, observed, unanswered, fix=False, operator=None, run_id=None):
    """Compare the ledger with what the hosts report; with ``fix``, correct the ledger."""
    report = ledger.reconcile(observed, fix=fix, operator=operator, run_id=run_id)
    drift = report['drift']
    if not drift:
        msg = 'the ledger agrees with the %d node(s) the hosts report' % report['checked']
    elif fix:
        msg = '%d drift(s) between the ledger and the hosts, %d fixed in the ledger' % (len(drift), report['fixed'])
    else:
        msg = '%d drift(s) between the ledger and the hosts (report only; fix=true corrects it)' % len(drift)
    if unanswered:
        msg += '; no answer from %s' % ', '.join(unanswered)
    return {'changed': bool(report['fixed']), 'drift': drift, 'checked': report['checked'],
            'unanswered_hosts': list(unanswered), 'msg': msg}


def event(ledger, kind, operator=None, reason=None, run_id=None, **data):
    """Append an event to the audit trail; it changes neither a node nor a flag."""
    ledger.record_event(kind, run_id=run_id, operator=operator, reason=reason, **data)
    return {'changed': False}


def actor_defaults(operator=None, task_vars=None):
    """The operator and run id every write of this run carries (plugin_utils/identity.py)."""
    return operator or identity.operator(task_vars or {}), identity.run_id()


def record_conclusion(ledger, stage, outcome, run_id=None):
    """How this run's stage ended (canary, wave, rollback): the run's outcome is this, not a guess from its
    task failures (a degraded rollback is ``degraded``, not ``ok`` or just ``failed``)."""
    ledger.record_event('run_concluded', run_id=run_id, stage=stage, outcome=outcome)


def rollback_switch_times(ledger, limit=1000):
    """Measured seconds-to-ready for the fast-rollback projection: switches back (rollbacks, the canary's drill);
    until one was measured, every switch, said so."""
    backward = ledger.switch_times(limit=limit, direction='backward')
    if backward:
        return {'switch_seconds': backward, 'switch_direction': 'backward'}
    return {'switch_seconds': ledger.switch_times(limit=limit), 'switch_direction': 'any (no rollback measured yet)'}
