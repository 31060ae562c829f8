#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_gate
short_description: Judge the migration's alert rules against Prometheus before going on
version_added: 0.1.0
description:
  - Evaluates the migration's alert rules (C(rules/alert_rules.yml), the same definition the
    P(autonomi.network_migration.monitoring#role) role installs into Prometheus) for the whole
    fleet or for a list of hosts, and fails when a rule trips.
  - A rule is judged on its worst value over its C(for) window (the minimum for a C(>) rule), so
    the gate fails when the alert would be firing. Queries aggregate in PromQL; their number does
    not grow with the fleet (1 per evaluation for the scope, 1 per rule, 1 per failing rule).
  - A rule must fail on O(consecutive_failures) consecutive evaluations before it fails the gate.
    Every severity can fail every gate that judges it. When fewer evaluations are asked than a
    breaching rule needs (a warning needs 2, the default asks 1), the gate confirms it and
    evaluates again, every O(interval) (at least the rules' C(evaluation_interval)), until the
    rule trips or clears. A rule asked for in O(rules) whose severity never fails
    (C(consecutive_failures) 0, C(info) by default) makes the gate refuse to start.
  - No data (too few samples, too few targets up) is not a pass, it is C(inconclusive); see
    O(inconclusive). A rule whose transport no node in scope runs is C(skipped).
  - Prometheus unreachable or erroring after O(retries) retries fails the gate (fail closed) with
    the verdict C(unavailable), meaning the gate could not judge. With O(record) it halts the migration
    with cause C(no_verdict), like an inconclusive result with O(inconclusive=fail), and a wave freezes
    instead of rolling back, since only a verdict on the nodes rolls them back.
  - With the migration ledger (and O(check_ledger)), the gate fails at once when the migration is halted or paused,
    records its verdict as a C(gate_verdict) event, writes a halt mark when it fails and a pause
    when it is inconclusive with O(inconclusive=pause). A ledger that cannot be read or written
    fails the gate.
  - This is an action plugin; it runs on the controller. Use it with C(run_once) or on C(localhost).
requirements:
  - prometheus-api-client >= 0.7 (on the controller)
  - jsonschema >= 4.23 (on the controller; validates the alert rules)
  - psycopg >= 3.1 (on the controller; only for a PostgreSQL ledger)
author:
  - Autonomi network operations (@autonomi)
options:
  rules:
    description: Ids of the rules to evaluate, default every enabled rule. Mutually exclusive with O(rollback_rules).
    type: list
    elements: str
  probe:
    description:
      - Do not judge; say whether a gate B(could) judge O(hosts) now, before they are touched - Prometheus answers,
        and every host has a scrape target that is up with a sample no older than three evaluation intervals
        (at least 10 s). Fails (verdict V(unavailable)) otherwise, naming each host and why; nothing is recorded.
        The wave's batches and the canary ask it before they switch.
    type: bool
    default: false
  now:
    description:
      - Judge each rule on its current value, not on the worst over its C(for) window - whether its alert would
        resolve now (Prometheus resolves an alert at the first evaluation that finds its condition false). The
        gradual rollback asks it between batches, so that a host it just rolled back stops counting once its
        rate window has passed.
    type: bool
    default: false
  rollback_rules:
    description:
      - Evaluate the rules whose firing rolls migrated nodes back - the enabled rules of severity C(critical) in the
        rules file, with the operator's overrides (plugins/plugin_utils/services/alerts.py). The scheduled rollback
        guard asks this; no list of rule ids is kept anywhere else.
    type: bool
    default: false
  rules_file:
    description: Rules file, default the collection's C(rules/alert_rules.yml).
    type: path
  overrides:
    description:
      - 'Per-rule overrides: C({rule_id: {threshold, for, severity, cooldown, enabled}}).'
      - Defaults to the inventory variable C(migration_alert_overrides), the one the monitoring role uses.
    type: dict
  settings:
    description:
      - Rule settings overrides (C(rate_window), C(evaluation_interval), ...).
      - Defaults to the inventory variable C(migration_alert_settings).
    type: dict
  hosts:
    description:
      - Judge only these hosts (the C(host) label of the node targets, the inventory hostnames),
        for example the canaries or the current batch. Default the whole fleet.
    type: list
    elements: str
  evaluations:
    description: How many times to evaluate the rules; the gate stops early when it fails.
    type: int
    default: 1
  interval:
    description:
      - Time between two evaluations, seconds or a Prometheus duration (V(30s), V(1m)).
      - Default the rules' C(evaluation_interval) (C(migration_alert_settings)), so that each evaluation sees new data.
    type: str
  consecutive_failures:
    description:
      - Consecutive failed evaluations before a rule fails the gate, per severity
        (C({critical, warning, info})); an integer sets critical and warning. V(0) never fails.
      - 'Default: C({critical: 1, warning: 2, info: 0}).'
    type: raw
  min_samples:
    description:
      - Samples a rule's window must hold before the rule is judged (capped at what the window can
        hold); fewer is no data.
    type: int
    default: 3
  min_targets:
    description: Node targets up in scope before anything is judged; fewer is no data.
    type: int
    default: 1
  inconclusive:
    description:
      - What an inconclusive verdict does. V(pause) fails the task and pauses the migration in the
        ledger; V(fail) fails it and writes a halt with cause C(no_verdict) (a wave freezes); V(pass)
        lets the play go on (with the verdict in the result).
    type: str
    default: pause
    choices: [pause, fail, pass]
  ledger:
    description:
      - Ledger location (SQLite path or PostgreSQL DSN); see P(autonomi.network_migration.migration_ledger#module).
    type: str
  record:
    description: Record the verdict, the halt and the pause in the ledger.
    type: bool
    default: true
  check_ledger:
    description:
      - Fail at once, without querying Prometheus, when the ledger says the migration is halted or paused.
      - Defaults to O(record). Observers that want the figures whatever the ledger says (status
        reports, rollbacks of a halted migration) set O(record=false) and so skip the check.
    type: bool
  stop_on_pause:
    description:
      - With O(check_ledger), also fail at once on a pause.
      - A wave's batch gate sets V(false) because a pause requested while a batch runs takes effect
        before the next batch, so the running batch is still judged (and a halt still stops it).
    type: bool
    default: true
  unjudged:
    description:
      - Judge the hosts whose nodes were switched without a verdict instead of O(hosts), that is the nodes
        the ledger has in C(dual_stack_testing) (left by a run whose controller died), after the ledger
        learned from the C(transport_info) results of O(fleet_hosts) about switches it never recorded.
      - Nothing to judge passes at once without asking Prometheus. The result names the hosts in
        RV(unjudged_hosts); mark them stable after a pass.
    type: bool
    default: false
  fleet_hosts:
    description: With O(unjudged), the hosts whose registered C(transport_info) results (O(info_var)) to compare.
    type: list
    elements: str
  info_var:
    description: With O(unjudged), the variable holding each host's C(transport_info) result.
    type: str
    default: wave_transport_info
  min_soak:
    description:
      - With O(unjudged), the seconds the nodes must have spent in their mode before they are judged;
        the gate waits for what is left.
    type: str
    default: '0'
extends_documentation_fragment:
  - autonomi.network_migration._prometheus
  - autonomi.network_migration._attributes
  - autonomi.network_migration._attributes.ACTION
attributes:
  check_mode:
    support: full
    details: The gate evaluates as usual and checks the ledger's halt and pause, but writes nothing to the ledger.
  diff_mode:
    support: none
  action:
    support: full
notes:
  - Rules, formulas and semantics are described in C(docs/alerts-and-gates.md).
seealso:
  - module: autonomi.network_migration.canary_analysis
  - module: autonomi.network_migration.migration_ledger
"""

EXAMPLES = r"""
- name: Gate the batch just switched (two failed evaluations, 30 s apart, fail a warning rule)
  autonomi.network_migration.migration_gate:
    url: "{{ migration_prometheus_url }}"
    hosts: "{{ ansible_play_batch }}"
    evaluations: 3
    interval: 30s
  run_once: true
  any_errors_fatal: true

- name: Judge nodes an earlier run switched without a verdict (its controller died), after a soak
  autonomi.network_migration.migration_gate:
    unjudged: true
    fleet_hosts: "{{ groups['fleet'] }}"
    info_var: wave_transport_info
    min_soak: 60
  register: unjudged
  delegate_to: localhost
  run_once: true

- name: Only the error-rate rules, fleet-wide, an inconclusive result fails instead of pausing
  autonomi.network_migration.migration_gate:
    rules: [high_error_rate_libp2p, high_error_rate_iroh]
    inconclusive: fail
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
verdict:
  description:
    - V(pass), V(fail) (a verdict on the nodes), V(inconclusive) (not enough data) or
      V(unavailable) (Prometheus could not be asked). The last two are no verdict.
  returned: always
  type: str
msg:
  description: The verdict in words; a failure names the rule, its value, the threshold, by how much, and the hosts.
  returned: always
  type: str
rules:
  description: Every rule evaluated (last evaluation).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Rule id.
      type: str
    severity:
      description: V(critical), V(warning) or V(info).
      type: str
    verdict:
      description: V(pass), V(fail), V(no_data) or V(skipped).
      type: str
    value:
      description: The judged value (worst over the window), null for no data.
      type: float
    threshold:
      description: The threshold.
      type: float
    comparison:
      description: The comparison of value and threshold.
      type: str
    query:
      description: The PromQL judged.
      type: str
    window:
      description: The window judged (the rule's C(for)).
      type: str
    samples:
      description: Points in the window.
      type: int
    hosts:
      description: Hosts breaching the rule on their own, with their value (failed rules).
      type: dict
    consecutive_failures:
      description: Consecutive failed evaluations.
      type: int
    reason:
      description: Why no data, skipped or failed.
      type: str
failed_rules:
  description: Ids of the rules that failed the gate.
  returned: always
  type: list
  elements: str
inconclusive_rules:
  description: Ids of the rules without enough data when the verdict is inconclusive.
  returned: always
  type: list
  elements: str
scope:
  description: The scope (hosts or V(fleet)), node targets, targets up and nodes per transport.
  returned: always
  type: dict
evaluations:
  description: One entry per evaluation with every rule's verdict.
  returned: always
  type: list
  elements: dict
prometheus:
  description: URL and the number of queries made.
  returned: always
  type: dict
ledger:
  description: The ledger location and what the gate wrote (gate_verdict, halt, pause).
  returned: always
  type: dict
notes:
  description: Remarks on the options, e.g. severities confirmed by extra evaluations or that only report.
  returned: always
  type: list
  elements: str
confirmations:
  description: Evaluations added after the asked ones to confirm a breaching rule.
  returned: when Prometheus was asked
  type: int
unjudged_hosts:
  description: With O(unjudged), the hosts judged (empty when nothing was switched without a verdict).
  returned: when O(unjudged)
  type: list
  elements: str
unjudged_nodes:
  description: With O(unjudged), the nodes (C(host/service)) judged.
  returned: when O(unjudged) found some
  type: list
  elements: str
"""
