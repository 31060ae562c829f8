# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Use case: is the fleet healthy - the gate's judgement, asked outside a rollout.

There is one judge of the fleet: the gate (plugins/plugin_utils/gate.py over alert_rules.evaluate()).
``fleet_health()`` *is* a fleet-wide gate of one evaluation that records nothing - the verdict the CLI's
``health`` exits on, identical to what a wave's pre-gate would say on the same data. ``rule_verdicts()``
is one evaluation of the same rules without the state machine, for views that refresh every few
seconds (the dashboard): each rule's pass / fail / no_data / skipped now.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.gate import LedgerAdapter
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import PrometheusError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import gating

FLEET_WIDE = 'all'


def rules_for(ruleset, transport=None):
    """Ids of the enabled rules about ``transport`` (and the fleet-wide ones), all when None."""
    return [rule.id for rule in ruleset.select() if not transport or rule.transport in (transport, FLEET_WIDE)]


def fleet_health(client, ruleset, transport=None):
    """The fleet-wide gate of one evaluation (inconclusive fails, nothing recorded): its task result -
    ``verdict`` (pass, fail, inconclusive, unavailable), ``failed``, ``msg``, ``rules``. A breaching rule of a
    severity that needs confirming is evaluated again, as in every gate."""
    request = gating.GateRequest.from_options(ruleset, {'rules': rules_for(ruleset, transport), 'evaluations': 1,
                                                        'inconclusive': 'fail', 'record': False,
                                                        'check_ledger': False})
    return gating.judge(request, client, LedgerAdapter(enabled=False))


def rule_verdicts(client, ruleset, transport=None, min_samples=3):
    """One evaluation of the rules in scope, fleet-wide: [{rule, severity, transport, figure, value, comparison,
    threshold, for, verdict, reason}]; ([], error message) when Prometheus cannot be asked."""
    rules = ruleset.select(rules_for(ruleset, transport))
    try:
        _facts, results = alert_rules.evaluate(client, ruleset, alert_rules.Scope(), rules, min_samples=min_samples)
    except PrometheusError as exc:
        return [], str(exc)
    return [{'rule': r.rule.id, 'severity': r.rule.severity, 'transport': r.rule.transport, 'figure': r.rule.metric,
             'value': r.value, 'comparison': r.rule.comparison, 'threshold': r.rule.threshold, 'for': r.rule.for_,
             'verdict': r.verdict, 'reason': r.reason, 'hosts': dict(r.hosts)} for r in results], None
