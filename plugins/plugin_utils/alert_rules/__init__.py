# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration's alert rules: load, validate, override, render, evaluate.

``rules/alert_rules.yml`` is the one definition. This package turns it into

* Prometheus recording rules (the figures: request rate, error rate, p50/p95/p99
  latency, active connections, health score per host x transport, per transport,
  per host and fleet-wide; partition risk per node, per host and fleet-wide),
* Prometheus alerting rules and the Alertmanager routing (severity -> receiver,
  cooldown -> repeat_interval),
* and the PromQL the ``migration_gate`` action plugin evaluates for a scope (the
  fleet or a list of hosts) -- built by the same function as the recording rules,
  so the gate and the alert judge the same number.

Every figure is built from a handful of per-host / per-node *base* recording rules;
aggregating them in PromQL keeps the number of queries of a gate evaluation
independent of the fleet size.

The package is split by job: ``model`` (load, validate, override; Rule, RuleSet), ``promql``
(the figures' and rules' PromQL), ``rendering`` (Prometheus rule groups, Alertmanager config,
docs table) and ``evaluation`` (what a gate asks Prometheus and the verdict of each rule).
``from ...plugin_utils import alert_rules`` gives every public name.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules.evaluation import (
    FAIL,
    NO_DATA,
    PASS,
    SKIPPED,
    RuleResult,
    Scope,
    ScopeFacts,
    breaching_hosts,
    evaluate,
    evaluate_rule,
    judged_query,
    possible_samples,
    read_scope,
    scope_query,
    window_query,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules.model import (
    DEFAULT_RULES_FILE,
    DEFAULT_SETTINGS,
    FIGURES,
    OVERRIDABLE_FIELDS,
    SCHEMA_FILE,
    SEVERITIES,
    TRANSPORT_FIGURES,
    AlertRulesError,
    Rule,
    RuleSet,
    apply_overrides,
    load_rules,
    parse_duration,
    validate_document,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules.promql import (
    LEVELS,
    M_DIAL_FAILURES,
    M_DURATION_BUCKET,
    M_MODE,
    M_NETWORK_SIZE,
    M_REQUESTS,
    M_ROUTING_TABLE,
    M_TRANSPORT_PEERS,
    R_BUCKETS,
    R_DIAL_UNREACHABLE,
    R_ERRORS,
    R_NODE_RISK,
    R_NODES,
    R_PEERS,
    R_REQUESTS,
    R_RT_DEFICIT,
    alert_expr,
    figure_expr,
    host_matcher,
    quote,
    recorded_name,
    rule_promql,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules.rendering import (
    ALERTING_GROUP,
    ANNOUNCE_RECEIVER,
    ANNOUNCEMENT_ALERT,
    RECEIVER_BY_SEVERITY,
    RECORDING_GROUP,
    alerting_rule_groups,
    alertmanager_config,
    recording_rule_groups,
    recording_rules,
    rules_table,
)

__all__ = [
    'FAIL',
    'NO_DATA',
    'PASS',
    'SKIPPED',
    'ALERTING_GROUP',
    'ANNOUNCE_RECEIVER',
    'ANNOUNCEMENT_ALERT',
    'AlertRulesError',
    'DEFAULT_RULES_FILE',
    'DEFAULT_SETTINGS',
    'FIGURES',
    'LEVELS',
    'M_DIAL_FAILURES',
    'M_DURATION_BUCKET',
    'M_MODE',
    'M_NETWORK_SIZE',
    'M_REQUESTS',
    'M_ROUTING_TABLE',
    'M_TRANSPORT_PEERS',
    'OVERRIDABLE_FIELDS',
    'RECEIVER_BY_SEVERITY',
    'RECORDING_GROUP',
    'R_BUCKETS',
    'R_DIAL_UNREACHABLE',
    'R_ERRORS',
    'R_NODES',
    'R_NODE_RISK',
    'R_PEERS',
    'R_REQUESTS',
    'R_RT_DEFICIT',
    'Rule',
    'RuleResult',
    'RuleSet',
    'SCHEMA_FILE',
    'SEVERITIES',
    'Scope',
    'ScopeFacts',
    'TRANSPORT_FIGURES',
    'alert_expr',
    'alerting_rule_groups',
    'alertmanager_config',
    'apply_overrides',
    'breaching_hosts',
    'evaluate',
    'evaluate_rule',
    'figure_expr',
    'host_matcher',
    'judged_query',
    'load_rules',
    'parse_duration',
    'possible_samples',
    'quote',
    'read_scope',
    'recorded_name',
    'recording_rule_groups',
    'recording_rules',
    'rule_promql',
    'rules_table',
    'scope_query',
    'validate_document',
    'window_query',
]
