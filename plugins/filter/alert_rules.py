# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Jinja access to the alert rules renderer (plugin_utils/alert_rules.py) for the monitoring role."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules

KINDS = ('recording', 'alerting')


def _ruleset(rules_file, overrides, settings):
    try:
        return alert_rules.load_rules(rules_file or None, overrides=overrides or None, settings=settings or None)
    except alert_rules.AlertRulesError as exc:
        raise AnsibleFilterError(str(exc)) from None


def alert_rule_groups(rules_file, kind, overrides=None, settings=None):
    """Prometheus rule groups (``{'groups': [...]}``) of ``kind`` recording or alerting."""
    if kind not in KINDS:
        raise AnsibleFilterError('alert_rule_groups: kind must be one of %s, got %r' % (', '.join(KINDS), kind))
    ruleset = _ruleset(rules_file, overrides, settings)
    if kind == 'recording':
        return alert_rules.recording_rule_groups(ruleset)
    return alert_rules.alerting_rule_groups(ruleset)


def alertmanager_config(rules_file, receivers=None, overrides=None, settings=None, base=None):
    """Alertmanager configuration routing the rules by severity (see alert_rules.alertmanager_config)."""
    ruleset = _ruleset(rules_file, overrides, settings)
    try:
        return alert_rules.alertmanager_config(ruleset, receivers=receivers or None, base=base or None)
    except alert_rules.AlertRulesError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {'alert_rule_groups': alert_rule_groups, 'alertmanager_config': alertmanager_config}
