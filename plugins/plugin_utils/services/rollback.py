# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Use cases of a rollback: what it covers (its plan) and how it ended (its conclusion).

The plan and the outcome are decided in plugin_utils/wave_planning.py (plan_rollback, plan_fast_rollback,
rollback_outcome); this module reads and writes the ledger around them and says what happened and what to
do next. playbooks/rollback.yml reaches it through the migration_rollback action; the CLI plans a
rollback from the ledger through plan_from_ledger().
"""

from __future__ import annotations

import time

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import wave_planning
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import alerts, canary


def plan(strategy, target, fleet_hosts, only_hosts=None, nodes=None, batches=('25%',), ranking=None,
         pause_seconds=None, ruleset=None, order='readable', ledger_nodes=None, ledger_problem=None):
    """The rollback's plan: gradual from the nodes the fleet reported (``nodes``), fast without a read.

    gradual: the hosts the alerting rules name first, worst figure first (``ranking``: the gate's result for the
    rollback rules); between batches a pause of at least the rules' rate window plus one evaluation, so that
    the errors of hosts already rolled back have left the window the next gate looks at.
    fast: ``order`` readable lays the hosts out in rounds from the close groups of ``ledger_nodes`` (what the
    ledger knows; none, or ``ledger_problem`` when it could not be read: one round, said so); all_at_once is
    the emergency order.
    """
    if strategy != 'gradual':
        out = wave_planning.plan_fast_rollback(fleet_hosts, target, only_hosts, nodes=ledger_nodes, order=order)
        if order == 'readable' and not ledger_nodes and out['hosts']:
            out['message'] += ('; their close groups are unknown (%s): one round'
                               % (ledger_problem or 'the ledger knows no node yet'))
        return out
    out = wave_planning.plan_rollback(nodes or [], target, strategy, batches, only_hosts,
                                      first_hosts=alerts.worst_hosts(ranking))
    if ruleset is not None and pause_seconds is not None:
        needed = (wave_planning.duration_seconds(ruleset.settings['rate_window'])
                  + wave_planning.duration_seconds(ruleset.step))
        out['pause_seconds'] = max(float(pause_seconds), needed)
        if out['pause_seconds'] > float(pause_seconds):
            out['message'] += ('; %.0f s between batches, not the %s asked: the rules\' %s window plus one '
                               'evaluation must pass before the next gate can see the rolled-back hosts recover'
                               % (out['pause_seconds'], pause_seconds, ruleset.settings['rate_window']))
    return out


def plan_from_ledger(ledger, target, strategy='fast'):
    """What a rollback would take according to the ledger (the CLI asks before it runs one)."""
    nodes = [dict(n, mode=n.get('mode') or _modes.STATE_MODE[n['state']]) for n in ledger.nodes()]
    return wave_planning.plan_rollback(nodes, target, strategy=strategy)


def beyond(ledger, target, outside_hosts=None):
    """{host: [service names]} of nodes the ledger knows beyond ``target``; only hosts not in ``outside_hosts``
    when it is given (the inventory's fleet: what the inventory no longer reaches)."""
    limit = _modes.mode_index(target)
    found = {}
    for node in ledger.nodes():
        mode = node.get('mode') or _modes.STATE_MODE.get(node['state'])
        if mode in _modes.MODES and _modes.mode_index(mode) > limit:
            if outside_hosts is None or node['host'] not in outside_hosts:
                found.setdefault(node['host'], []).append(node['service_name'])
    return found


# Outcomes that fail the rollback's task (and so the job): a host not brought back, or not known to be back.
FAILING = ('failed', 'incomplete')


def conclude(ledger, plan_, switch_results, *, fleet_hosts, started_at, reason, trigger, holder, operator=None,
             stopped_early=False, ready_timeout=None, run_id=None, now=time.time, degraded_fails=True,
             keep_canary=False):
    """End a rollback: its outcome, the ledger told (start scope of a fast rollback, the outcome event), its
    lock released, and one message with the next step. Returns the outcome's fields plus seconds, failed, msg.

    The task fails for ``failed`` and ``incomplete``, and for ``degraded`` (nodes back but not ready) unless
    ``degraded_fails`` is off (the rollback variable ``rollback_degraded_fails``).
    """
    target, strategy = plan_['target'], plan_['strategy']
    unknown = beyond(ledger, target, outside_hosts=set(fleet_hosts)) if plan_.get('whole_fleet') else {}
    out = wave_planning.rollback_outcome(plan_, switch_results, stopped_early=stopped_early, unknown_hosts=unknown)
    out['seconds'] = round(max(0.0, now() - float(started_at)), 1)
    common = {'trigger': trigger, 'strategy': strategy, 'target': target, 'hosts': out['hosts']}
    if plan_.get('from_switch'):
        # Without a read before the switch, the exact scope is known only now; started_at is when the lock was taken.
        ledger.record_event('rollback_started', run_id=run_id, operator=operator, reason=reason,
                            nodes=out['nodes_to_switch'], started_at=round(float(started_at), 3), **common)
    ledger.record_event('rollback', run_id=run_id, operator=operator, reason=reason, seconds=out['seconds'],
                        outcome=out['outcome'], rolled_back_hosts=out['rolled_back_hosts'],
                        not_rolled_back_hosts=out['not_rolled_back_hosts'], failed_hosts=out['failed_hosts'],
                        not_ready_nodes=out['not_ready_nodes'], remaining_hosts=out['remaining_hosts'],
                        unknown_hosts=out['unknown_hosts'], **common)
    out['canary'] = canary.after_rollback(ledger, target, out['rolled_back_hosts'], reason, operator,
                                          keep=keep_canary, run_id=run_id)
    ledger.release_lock(holder, run_id=run_id)
    failing = FAILING + (('degraded',) if degraded_fails else ())
    out.update(changed=bool(out['rolled_back_hosts']), failed=out['outcome'] in failing,
               msg=message(strategy, target, out, ready_timeout))
    return out


def _nodes(nodes):
    return ', '.join('%s/%s' % (n['host'], n['service_name']) for n in nodes) or 'none'


def message(strategy, target, out, ready_timeout=None):
    """One report of a rollback's end: outcome, what was and was not rolled back, and what to do next."""
    hosts = out['hosts']
    lines = ['%s rollback to %s: %s; rolled back %d of %d host(s) (%s) in %.1f s'
             % (strategy, target, out['outcome'], len(out['rolled_back_hosts']), len(hosts),
                ', '.join(out['rolled_back_hosts']) or 'none', out['seconds'])]
    if out['not_rolled_back_hosts']:
        lines.append('not rolled back: %s' % ', '.join(out['not_rolled_back_hosts']))
    if out['failed_hosts']:
        lines.append('FAILED on %s: see the task errors above and the ledger\'s node_failed events, fix the hosts '
                     'and run the rollback again' % ', '.join(out['failed_hosts']))
    if out['not_ready_nodes']:
        within = ' within %s s' % ready_timeout if ready_timeout else ''
        lines.append('back in %s but NOT READY%s: %s (runbook: docs/runbooks/node-not-ready-after-switch.md)'
                     % (target, within, _nodes(out['not_ready_nodes'])))
    if out['unknown_hosts']:
        lines.append('NOT IN THE INVENTORY, still beyond %s according to the ledger: %s; add them back to the '
                     'inventory and run the rollback again'
                     % (target, '; '.join('%s (%s)' % (h, ', '.join(v)) for h, v in out['unknown_hosts'].items())))
    if out.get('canary') == 'invalidated':
        lines.append('the canary\'s verdict no longer holds (its stage was rolled back): the next rollout asks for '
                     'a new canary (rollback_keep_canary=true keeps it, recorded)')
    if out['outcome'] == 'stopped_early':
        lines.append('stopped early: the gate passed, the problem is resolved; remaining: %s'
                     % ', '.join(out['remaining_hosts']))
    elif out['remaining_hosts']:
        lines.append('not attempted: %s' % ', '.join(out['remaining_hosts']))
    return '. '.join(lines) + '.'
