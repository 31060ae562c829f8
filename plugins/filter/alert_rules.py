# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Jinja access to the alert rules renderer (plugin_utils/alert_rules/rendering.py) for the monitoring role."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules import rendering

KINDS = ('recording', 'alerting')


def _ruleset(rules_file, overrides, settings):
    try:
        return alert_rules.load_rules(rules_file or None, overrides=overrides or None, settings=settings or None)
    except alert_rules.AlertRulesError as exc:
        raise AnsibleFilterError(str(exc)) from None


def alert_rule_groups(rules_file, kind, overrides=None, settings=None, runbook_base_url=None):
    """Prometheus rule groups (``{'groups': [...]}``) of ``kind`` recording or alerting."""
    if kind not in KINDS:
        raise AnsibleFilterError('alert_rule_groups: kind must be one of %s, got %r' % (', '.join(KINDS), kind))
    ruleset = _ruleset(rules_file, overrides, settings)
    if kind == 'recording':
        return rendering.recording_rule_groups(ruleset)
    return rendering.alerting_rule_groups(ruleset, runbook_base_url=runbook_base_url or None)


def alertmanager_config(rules_file, receivers=None, overrides=None, settings=None, base=None, timings=None):
    """Alertmanager configuration routing the rules by severity (see rendering.alertmanager_config)."""
    ruleset = _ruleset(rules_file, overrides, settings)
    try:
        return rendering.alertmanager_config(ruleset, receivers=receivers or None, base=base or None,
                                             timings=timings or None)
    except alert_rules.AlertRulesError as exc:
        raise AnsibleFilterError(str(exc)) from None


def alertmanager_receiver_problems(receivers, variable='monitoring_alertmanager_receivers'):
    """The problems of a receivers variable, naming fields and never their values ([] when valid)."""
    return rendering.check_receivers(receivers, variable)


class FilterModule:
    def filters(self):
        return {'alert_rule_groups': alert_rule_groups, 'alertmanager_config': alertmanager_config,
                'alertmanager_receiver_problems': alertmanager_receiver_problems}
