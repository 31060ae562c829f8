# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which alert rolls back, and which hosts it rolls back.

The answer comes from the rules' severities in rules/alert_rules.yml (with the operator's
overrides): a rule of severity ``critical`` rolls back; nothing else keeps a list of rule ids. The
scheduled guard (rollback_guard.yml), the EDA event source and the docs ask these functions.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import validation

ROLLBACK_SEVERITY = 'critical'
# A figure of the whole fleet (partition risk): its alert names no host, it concerns every migrated one.
FLEET_WIDE = 'all'


def rollback_rules(ruleset):
    """The enabled rules whose firing rolls migrated nodes back (severity critical)."""
    return [rule for rule in ruleset.select() if rule.severity == ROLLBACK_SEVERITY]


def rollback_rule_ids(ruleset):
    return [rule.id for rule in rollback_rules(ruleset)]


def hosts_for_failed_rules(rule_results, migrated_hosts):
    """The hosts a set of failing rollback rules rolls back, and why.

    ``rule_results``: the gate's per-rule results (``rules`` of a migration_gate result: id, verdict,
    transport, hosts {host: value}, ...). A rule on a fleet-wide figure (partition risk) takes the whole
    migrated set, said as such; any other takes exactly the migrated hosts whose own figure breaches it.
    Returns {hosts, reasons: [one line per failing rule], fleet_wide: bool}.
    """
    migrated = sorted(set(migrated_hosts or ()))
    hosts, reasons, fleet_wide = set(), [], False
    for rule in rule_results or ():
        if rule.get('verdict') != 'fail':
            continue
        if rule.get('transport') == FLEET_WIDE:
            fleet_wide = True
            hosts.update(migrated)
            reasons.append('%s (fleet-wide figure): every migrated host (%s)' % (rule['id'], ', '.join(migrated)))
            continue
        named = sorted(set(rule.get('hosts') or {}) & set(migrated))
        hosts.update(named)
        reasons.append('%s on %s' % (rule['id'], ', '.join(named)) if named else
                       '%s breached over its window but no migrated host breaches it now: none rolled back for it'
                       % rule['id'])
    return {'hosts': sorted(hosts), 'reasons': reasons, 'fleet_wide': fleet_wide}


def worst_hosts(gate_result):
    """Hosts in the order a gradual rollback takes them: those the failing rules name, worst figure first (the
    gate lists each rule's breaching hosts worst first), critical rules before the others."""
    rules = [r for r in (gate_result or {}).get('rules') or () if r.get('verdict') == 'fail']
    rules.sort(key=lambda r: r.get('severity') != ROLLBACK_SEVERITY)
    ordered = []
    for rule in rules:
        for host in rule.get('hosts') or {}:
            if host not in ordered:
                ordered.append(host)
    return ordered


def guard_decision(status, gate_result=None):
    """What the scheduled rollback guard rolls back: hosts a critical alert names, and hosts whose nodes
    soaked in dual_stack_testing past the deadline.

    ``status``: control.status() (migrated_hosts, nodes_overdue); ``gate_result``: the migration_gate
    result for the rollback rules on the migrated hosts (None when no host is migrated). An outage is no
    verdict: nothing is rolled back for alerts then, and ``no_verdict`` says why.
    Returns {hosts, reason, no_verdict, msg}.
    """
    overdue = sorted({n['host'] for n in status.get('nodes_overdue') or ()})
    verdict = (gate_result or {}).get('verdict')
    alerting = {'hosts': [], 'reasons': [], 'fleet_wide': False}
    if verdict == 'fail':
        alerting = hosts_for_failed_rules(gate_result.get('rules'), status.get('migrated_hosts'))
    no_verdict = (gate_result or {}).get('msg', '') if verdict == 'unavailable' else ''
    hosts = sorted(set(overdue) | set(alerting['hosts']))
    reasons = ['critical alert: ' + r for r in alerting['reasons']]
    if overdue:
        reasons.append('dual_stack_testing past the deadline: %s' % ', '.join(overdue))
    if hosts:
        msg = 'rolling back %s: %s' % (', '.join(hosts), '; '.join(reasons))
    elif no_verdict:
        msg = 'nothing rolled back for alerts: the gate could not judge (%s)' % no_verdict
    elif reasons:
        msg = 'nothing to roll back: %s' % '; '.join(reasons)
    else:
        msg = 'nothing to do: no critical alert for migrated nodes, no overdue soak'
    return {'hosts': hosts, 'reason': '; '.join(reasons), 'no_verdict': no_verdict, 'msg': msg,
            'fleet_wide': alerting['fleet_wide']}


def alert_decision(alert, ruleset):
    """Whether one Alertmanager alert, on its own terms, may start a rollback - before the lock, the
    rollback in flight and the one-per-firing claim are asked (the EDA event source does that).

    The alert is not trusted: it acts only when its ``rule_id`` is one of the collection's rules whose
    severity *in the rules* rolls back (the alert's own severity label is not believed), its ``alertname``
    is that rule's, and it is firing. The strategy comes from the rule: a fleet-wide figure (partition
    risk) is rolled back fast, every host at once; anything else gradually.
    Returns {actionable, resolved, why, rule_id, strategy, trigger, fingerprint, starts_at}.
    """
    alert = alert if isinstance(alert, dict) else {}
    labels = alert.get('labels') if isinstance(alert.get('labels'), dict) else {}
    status = alert.get('status')
    rules = {rule.id: rule for rule in ruleset.select()}
    rule = rules.get(labels.get('rule_id')) if isinstance(labels.get('rule_id'), str) else None
    out = {'actionable': False, 'resolved': False, 'rule_id': rule.id if rule else '',
           'trigger': 'alert:%s' % validation.safe_name(labels.get('alertname')), 'strategy': None,
           'fingerprint': str(alert.get('fingerprint') or '') or None, 'starts_at': str(alert.get('startsAt') or '')}
    if rule is None:
        out['why'] = ('not one of the collection\'s alert rules (rule_id %r): ignored'
                      % validation.safe_name(labels.get('rule_id'), default=''))
    elif labels.get('alertname') != rule.name:
        out['why'] = 'alertname %r is not the name of rule %s (%s): ignored' % (
            validation.safe_name(labels.get('alertname')), rule.id, rule.name)
    elif rule.severity != ROLLBACK_SEVERITY:
        out['why'] = 'rule %s does not roll back (its severity in the rules is %s)' % (rule.id, rule.severity)
    elif status == 'resolved':
        out.update(resolved=True, why='resolved')
    elif status != 'firing':
        out['why'] = 'alert is %s, not firing' % validation.safe_name(status)
    else:
        out.update(actionable=True, strategy='fast' if rule.transport == FLEET_WIDE else 'gradual',
                   why='%s firing' % rule.id)
    if out['fingerprint'] is None and rule is not None:
        out['fingerprint'] = rule.id    # Alertmanager before 0.20 sends none: one claim per rule
    return out
