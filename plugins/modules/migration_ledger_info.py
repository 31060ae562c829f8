#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_ledger_info
short_description: Read the migration ledger from a playbook
version_added: 0.2.0
description:
  - What the ledger says, read-only - may this run go on (and what a halt means for its nodes), the status,
    measured switch times, and which hosts the scheduled rollback guard takes. Writes are
    M(autonomi.network_migration.migration_ledger).
  - Each O(op) is one use case of C(plugins/plugin_utils/services/); this action plugin only adapts it.
  - This is an action plugin; it runs on the controller whatever host it is called for.
requirements:
  - psycopg >= 3.1 (on the controller; only for a PostgreSQL ledger)
author:
  - Autonomi network operations (@autonomi)
options:
  op:
    description:
      - V(check) fails when the guard refuses this run now - halted or paused (see O(allow_paused), O(allow_halted)),
        the run lock held by another live run, this controller gone - or, with O(require_canary=true), when no
        passed canary verdict is recorded.
      - V(status) returns progress, flags, the lock, the canary verdict, recent events, migrated hosts and nodes
        overdue in C(dual_stack_testing).
      - V(switch_times) returns measured node switch times (seconds to ready) for rollback projections.
      - V(guard) returns the hosts the scheduled rollback guard rolls back (C(playbooks/rollback_guard.yml)) - the
        hosts a failing rollback rule in O(gate_result) names (every migrated host for a fleet-wide figure), and
        hosts with nodes overdue in C(dual_stack_testing).
    type: str
    required: true
    choices: [check, status, switch_times, guard]
  ledger:
    description:
      - Ledger location, a SQLite path or a C(postgresql://) DSN. Defaults to the variable C(migration_ledger),
        then E(ANT_MIGRATION_LEDGER), then C(ledger) in the C([autonomi_network_migration]) section of C(ansible.cfg).
    type: str
  require_canary:
    description: With O(op=check), also require a passed canary verdict.
    type: bool
    default: false
  allow_paused:
    description: With O(op=check), do not fail on a pause (rollbacks ignore pauses).
    type: bool
    default: false
  allow_halted:
    description: With O(op=check), do not fail on a halt (rollbacks must work when halted).
    type: bool
    default: false
  rollback_policy:
    description:
      - With O(op=check), also return RV(containment) - what a halt means for the nodes this run switched under
        this policy - V(rollback) (a verdict on the nodes), V(freeze) (halt without a verdict, the policy is
        freeze, or paused without a halt) or V(none) (neither halted nor paused). One decision,
        plugins/plugin_utils/gate.py C(containment()).
    type: str
    choices: [rollback, freeze]
  stage:
    description:
      - With O(op=check) and O(rollback_policy), the stage the run moved nodes to; RV(rollback_mode) is the mode
        before it.
    type: str
    choices: [dual_stack, iroh_primary, iroh_only]
  testing_deadline:
    description:
      - With O(op=status) and O(op=guard), nodes in C(dual_stack_testing) for longer than this many seconds are
        overdue.
    type: int
    default: 3600
  gate_result:
    description:
      - With O(op=guard), the M(autonomi.network_migration.migration_gate) result for the rollback rules on the
        migrated hosts.
    type: dict
attributes:
  check_mode:
    description: Reads only; runs the same in check mode.
    support: full
  diff_mode:
    description: No diff is returned.
    support: none
  action:
    description: Runs entirely on the controller as an action plugin.
    support: full
"""

EXAMPLES = r"""
- name: Refuse to go on when paused or halted, or before the canary passed
  autonomi.network_migration.migration_ledger_info:
    op: check
    require_canary: true
  run_once: true

- name: Read the status
  autonomi.network_migration.migration_ledger_info:
    op: status
  register: status
"""

RETURN = r"""
flags:
  description: Pause and halt flags (each null or a dict with reason, operator, at).
  returned: op is check or status
  type: dict
progress:
  description: Migration progress (total, migrated, dual_stack, progress_percent, phase, velocity, eta ...).
  returned: op is status
  type: dict
lock:
  description: The run lock (holder, host, pid, playbook, run_id, started_at, heartbeat_at) or null.
  returned: op is status
  type: dict
last_verdicts:
  description: The last gate, canary and canary analysis verdicts, newest first, one line each.
  returned: op is status
  type: list
  elements: str
migrated_hosts:
  description: Hosts with a node past C(libp2p_only) according to the ledger.
  returned: op is status
  type: list
  elements: str
nodes_overdue:
  description: Nodes in C(dual_stack_testing) past O(testing_deadline) (host, service_name, since).
  returned: op is status
  type: list
  elements: dict
canary:
  description: The last canary verdict (verdict passed, failed or frozen; hosts, reason, at), or null.
  returned: op is check or status
  type: dict
unjudged_hosts:
  description: Hosts with nodes switched forward without a verdict yet (any stage).
  returned: op is check
  type: list
  elements: str
containment:
  description: With O(rollback_policy), V(rollback), V(freeze) or V(none) (see O(rollback_policy)).
  returned: op is check and rollback_policy is set
  type: str
rollback_mode:
  description: With O(stage), the mode the stage's nodes go back to.
  returned: op is check and stage is set
  type: str
refused:
  description: Why O(op=check) refused (halted, paused, locked, controller_gone, canary).
  returned: when refused
  type: str
switch_seconds:
  description: Measured node switch times.
  returned: op is switch_times
  type: list
  elements: float
hosts:
  description: The hosts the guard rolls back.
  returned: op is guard
  type: list
  elements: str
reason:
  description: Why, one clause per cause (the rollback's recorded reason).
  returned: op is guard
  type: str
no_verdict:
  description: Why the gate could not judge the migrated hosts (empty when it could).
  returned: op is guard
  type: str
"""
