#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_ledger
short_description: Read and write the migration ledger from a playbook
version_added: 0.1.0
description:
  - Controller-side operations on the migration ledger (SQLite file or PostgreSQL DSN) that the
    rollout, rollback and control playbooks need - refuse when paused or halted, pause, resume
    (a halt needs O(ack=true)), take and release the run lock, mark nodes with a migration state,
    record events and the canary verdict, report status.
  - This is an action plugin; it runs on the controller whatever host it is called for. Use it
    with C(run_once) or on C(localhost).
requirements:
  - psycopg >= 3.1 (on the controller; only for a PostgreSQL ledger)
author:
  - Autonomi network operations (@autonomi)
options:
  op:
    description:
      - V(check) fails when the migration is halted or paused (see O(allow_paused), O(allow_halted)) or,
        with O(require_canary=true), when no passed canary verdict is recorded.
      - V(status) returns progress, flags, the canary verdict and recent events.
      - V(pause) and V(resume) set and clear the pause; V(resume) also clears a halt when O(ack=true).
      - V(halt) writes a halt mark with O(reason).
      - V(lock) takes the run lock (refused while another run holds it; O(force=true) with a O(reason)
        overrides a dead holder's lock and logs it); V(unlock) releases it.
      - V(mark) moves every node of O(hosts) in one of O(from_states) to O(state).
      - V(judged) tells the ledger that a gate passed O(hosts) - their nodes switched forward without a
        verdict (at any stage, C(dual_stack_testing) becomes C(dual_stack_stable), a promote's
        C(iroh_primary)/C(iroh_only) nodes keep their state) are judged; a re-run's judge step gates
        the nodes still unjudged.
      - V(event) records an event of O(kind) with O(data); V(canary_verdict) records O(verdict).
      - V(switch_times) returns measured node switch times (seconds to ready) for rollback projections.
      - V(reconcile) compares the ledger with the M(autonomi.network_migration.transport_info) results of
        O(fleet_hosts) (host variable O(info_var)) and reports drift (a node restarted by hand in another
        mode, a node the ledger does not know, a changed peer id, a node gone from its host); with
        O(fix=true) the ledger is corrected, each change with its reason. Check mode never fixes.
    type: str
    required: true
    choices: [check, status, pause, resume, halt, lock, unlock, mark, event, canary_verdict, switch_times, reconcile,
              judged]
  ledger:
    description:
      - Ledger location, a SQLite path or a C(postgresql://) DSN. Defaults to E(ANT_MIGRATION_LEDGER),
        then C(ledger) in the C([autonomi_network_migration]) section of C(ansible.cfg).
    type: str
  operator:
    description:
      - Who asks. Defaults to the run's operator (plugins/plugin_utils/identity.py) - the AWX user
        (C(awx_user_name)), else the C(operator) extra var, else E(ANT_MIGRATION_OPERATOR), else the OS user.
    type: str
  reason:
    description: Why (pause, halt, forced unlock, mark, event).
    type: str
  ack:
    description: With O(op=resume), acknowledge and clear a halt.
    type: bool
    default: false
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
  playbook:
    description: Playbook name recorded with the lock or halt.
    type: str
  force:
    description: With O(op=lock), override the lock of a holder known to be dead (logged with O(reason)).
    type: bool
    default: false
  stale_after:
    description: With O(op=lock), seconds after which a lock without heartbeat is recovered automatically.
    type: int
    default: 3600
  hosts:
    description: Hosts whose nodes O(op=mark) moves or O(op=judged) marks, or the canary hosts for O(op=canary_verdict).
    type: list
    elements: str
  state:
    description: Target migration state for O(op=mark).
    type: str
    choices: [libp2p_only, dual_stack_testing, dual_stack_stable, iroh_primary, iroh_only, rolled_back]
  from_states:
    description: With O(op=mark), only nodes in these states move.
    type: list
    elements: str
  kind:
    description: Event kind for O(op=event).
    type: str
  data:
    description: Event or verdict data.
    type: dict
    default: {}
  testing_deadline:
    description: With O(op=status), nodes in C(dual_stack_testing) for longer than this many seconds are overdue.
    type: int
    default: 3600
  fleet_hosts:
    description: With O(op=reconcile), the hosts whose nodes are compared.
    type: list
    elements: str
  info_var:
    description: With O(op=reconcile), the host variable holding each host's registered transport_info result.
    type: str
    default: wave_transport_info
  fix:
    description: With O(op=reconcile), correct the ledger to match the hosts.
    type: bool
    default: false
  verdict:
    description:
      - Canary verdict for O(op=canary_verdict).
      - V(frozen) - the canary could not be judged (monitoring down, no data); its hosts stay where they are and
        the next canary run judges the same hosts.
    type: str
    choices: [passed, failed, frozen]
  rollback_policy:
    description:
      - With O(op=check), also return RV(containment) - what a halt means for the nodes this run switched under
        this policy - V(rollback) (a verdict on the nodes), V(freeze) (halt without a verdict, the policy is
        freeze, or paused without a halt) or V(none) (neither halted nor paused). One decision,
        plugins/plugin_utils/gate.py C(containment()).
    type: str
    choices: [rollback, freeze]
attributes:
  check_mode:
    description: Read operations run in check mode; writes are skipped and reported as would-change.
    support: partial
  diff_mode:
    description: No diff is returned.
    support: none
  action:
    description: Runs entirely on the controller as an action plugin.
    support: full
"""

EXAMPLES = r"""
- name: Refuse to go on when paused or halted, or before the canary passed
  autonomi.network_migration.migration_ledger:
    op: check
    require_canary: true
  run_once: true

- name: Pause the migration
  autonomi.network_migration.migration_ledger:
    op: pause
    reason: "network maintenance window"
  run_once: true

- name: Mark the batch's nodes stable after their soak
  autonomi.network_migration.migration_ledger:
    op: mark
    hosts: "{{ ansible_play_batch }}"
    from_states: [dual_stack_testing]
    state: dual_stack_stable
  run_once: true
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
moved:
  description: Nodes (host/service) moved by O(op=mark).
  returned: op is mark
  type: list
  elements: str
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
drift:
  description: With O(op=reconcile), each difference (node_id, kind, ledger_state, observed_mode, fixed).
  returned: op is reconcile
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
judged:
  description: Nodes (host/service) O(op=judged) marked judged.
  returned: op is judged
  type: list
  elements: str
refused:
  description: Why O(op=check) or O(op=lock) refused (halted, paused, canary, locked).
  returned: when refused
  type: str
switch_seconds:
  description: Measured node switch times.
  returned: op is switch_times
  type: list
  elements: float
"""
