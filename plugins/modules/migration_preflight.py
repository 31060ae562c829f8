#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_preflight
short_description: Production readiness - the checklist as an executable preflight, and the gate on production waves
version_added: 0.3.0
description:
  - V(run) checks every item of the production checklist against the real fleet and monitoring stack and
    records the result in the ledger as one C(preflight) event - monitoring deployed (the collection's rules
    loaded in Prometheus, every fleet node an up and fresh scrape target, Alertmanager reachable with the
    collection's routing), alert recipients (a receiver for critical and for warning alerts, and a synthetic
    alert of each severity accepted by each of their integrations), runbooks (every alert's C(runbook_url)
    resolves), canary (the canary hosts are reachable, healthy and not excluded), backup (a ledger backup is
    taken, restored into a scratch database and compared), thresholds (each threshold against the fleet's
    observed baseline), rollback_tested (the newest rollback rehearsal passed within O(rehearsal_max_age)),
    load_tested (the newest rehearsal under load passed within O(load_test_max_age)) and communication (the
    migration_tracker callback announces the migration's events, Alertmanager routes them to its C(announce)
    receiver and a test announcement is accepted by each of its integrations).
  - V(gate) fails unless a preflight passed within O(max_age), or a waiver with a reason is given (recorded in
    the ledger as a C(preflight_waived) event).
  - The decisions are C(plugins/plugin_utils/services/preflight.py); this action plugin only adapts them.
    docs/preflight.md describes every item, its messages and its runbook.
  - This is an action plugin; it runs on the controller whatever host it is called for.
requirements:
  - psycopg >= 3.1 and pg_dump / pg_restore (on the controller; only for a PostgreSQL ledger)
author:
  - Autonomi network operations (@autonomi)
extends_documentation_fragment:
  - autonomi.network_migration._prometheus
options:
  op:
    description: V(run) the preflight, or V(gate) a production wave on its result.
    type: str
    required: true
    choices: [run, gate]
  ledger:
    description:
      - Ledger location.
      - Defaults to the variable C(migration_ledger), then E(ANT_MIGRATION_LEDGER), then C(ansible.cfg).
    type: str
  operator:
    description: Who runs the preflight or waives it; defaults to the run's operator.
    type: str
    default: ""
  rules_file:
    description: Alert rules file; defaults to the collection's C(rules/alert_rules.yml).
    type: path
  overrides:
    description: Rule overrides; defaults to the variable C(migration_alert_overrides).
    type: dict
  settings:
    description: Rule settings; defaults to the variable C(migration_alert_settings).
    type: dict
  runbook_base_url:
    description: The monitoring role's C(monitoring_runbook_base_url) (empty - the collection's runbooks).
    type: str
    default: ""
  alertmanager_url:
    description: Alertmanager base URL; empty fails the monitoring and alert recipients items.
    type: str
    default: ""
  fleet_hosts:
    description: The fleet's hosts; their C(transport_info) results (O(info_var)) name the nodes.
    type: list
    elements: str
    default: []
  info_var:
    description: The host variable holding each host's registered C(transport_info) result.
    type: str
    default: wave_transport_info
  canary_group:
    description: The canary group's name.
    type: str
    default: canary
  canary_group_hosts:
    description: The canary group's hosts (empty - the automatic choice).
    type: list
    elements: str
    default: []
  canary_count:
    description: Canary hosts of the automatic choice.
    type: int
    default: 1
  exclude_hosts:
    description: Hosts never taken (the C(migration_exclude) group).
    type: list
    elements: str
    default: []
  scrape_max_age:
    description: A target last scraped longer ago than this duration is stale.
    type: str
    default: 2m
  delivery_timeout:
    description: How long to wait for each test notification to be accepted (a duration).
    type: str
    default: 2m
  baseline_window:
    description: Window of the observed baseline the thresholds are compared with (a duration).
    type: str
    default: 1d
  far_factor:
    description: A threshold more than this many times the baseline's 99th percentile is reported as never firing.
    type: float
    default: 20.0
  backup_dir:
    description:
      - Where the ledger backup is written.
      - Defaults to C(backups/) beside a SQLite ledger, a temporary directory for PostgreSQL.
    type: path
  waivers:
    description:
      - Failed items to waive, each with its reason - C({item - reason}) or C({item - {reason, operator}}); the item
        becomes V(waived) and the reason and operator are recorded.
    type: dict
    default: {}
  max_age:
    description: With O(op=gate), the oldest passed preflight a production wave accepts (a duration).
    type: str
    default: 24h
  rehearsal_max_age:
    description:
      - With O(op=run), the item C(rollback_tested) passes when the newest rollback rehearsal (ledger event
        C(rehearsal), recorded by C(ant-network-migration rehearse)) passed and is at most this old (a duration).
    type: str
    default: 7d
  load_test_max_age:
    description:
      - With O(op=run), the item C(load_tested) passes when the newest rehearsal run under load
        (C(ant-network-migration rehearse --under-load)) kept the SLA and the load's limits and is at most this old
        (a duration).
    type: str
    default: 30d
  waiver:
    description:
      - With O(op=gate), a reason to start without a fresh passed preflight (recorded with the operator). Defaults
        to E(ANT_MIGRATION_PREFLIGHT_WAIVER).
    type: str
attributes:
  check_mode:
    description:
      - With O(op=run) nothing is checked or recorded in check mode.
      - O(op=gate) decides and records nothing.
    support: partial
  diff_mode:
    description: No diff is returned.
    support: none
  action:
    description: Runs entirely on the controller as an action plugin.
    support: full
"""

EXAMPLES = r"""
- name: Run the preflight
  autonomi.network_migration.migration_preflight:
    op: run
    alertmanager_url: http://alertmanager.example:9093
    fleet_hosts: "{{ groups['fleet'] }}"
    waivers:
      thresholds: "baseline window too short on a new fleet; reviewed by the on-call lead"

- name: Refuse a production wave without a fresh preflight
  autonomi.network_migration.migration_preflight:
    op: gate
    max_age: 24h
"""

RETURN = r"""
result:
  description: With O(op=run), V(passed) when every item passed or was waived, else V(failed).
  returned: op is run
  type: str
items:
  description: Each item - item, result (pass, fail, waived), message, problems, warnings, evidence, waiver.
  returned: op is run
  type: list
  elements: dict
failed_items:
  description: The items that failed.
  returned: always
  type: list
  elements: str
waived_items:
  description: The items waived.
  returned: op is run
  type: list
  elements: str
allowed:
  description: With O(op=gate), whether the production wave may start.
  returned: op is gate
  type: bool
waived:
  description: With O(op=gate), whether it starts on a waiver.
  returned: op is gate
  type: bool
"""
