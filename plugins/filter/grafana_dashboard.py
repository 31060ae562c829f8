# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Jinja access to the Grafana dashboard generator (plugin_utils/grafana_dashboard.py) for the monitoring role."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import grafana_dashboard as gd


def grafana_dashboard(rules_file, overrides=None, settings=None):
    """The Grafana dashboard JSON model for the alert rules (with the inventory's overrides)."""
    try:
        return gd.dashboard_from_rules(rules_file or None, overrides=overrides or None, settings=settings or None)
    except alert_rules.AlertRulesError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {'grafana_dashboard': grafana_dashboard}
