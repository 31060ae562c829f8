#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_ledger
short_description: Write to the migration ledger from a playbook
version_added: 0.1.0
description:
  - The ledger's writes that the rollout, rollback and control playbooks need - pause, resume (a halt needs
    O(ack=true)), halt, the run lock, node state marks, events, the canary verdict, reconcile. Reads are
    M(autonomi.network_migration.migration_ledger_info).
  - Each O(op) is one use case of C(plugins/plugin_utils/services/); this action plugin only adapts it.
  - This is an action plugin; it runs on the controller whatever host it is called for. Use it
    with C(run_once) or on C(localhost).
requirements:
  - psycopg >= 3.1 (on the controller; only for a PostgreSQL ledger)
author:
  - Autonomi network operations (@autonomi)
options:
  op:
    description:
      - V(pause) and V(resume) set and clear the pause; V(resume) also clears a halt when O(ack=true) and is
        refused (failed, C(refused=halted)) without it.
      - V(halt) writes a halt mark with O(reason).
      - V(stop_batch) - a wave's batch stopped on the failed task O(failed_result) - writes a halt with O(reason),
        unless the stop was the guard seeing a pause (C(refused=paused)) - a pause stays a pause.
      - V(lock) takes the run lock (refused while another run holds it; O(force=true) with a O(reason)
        overrides a dead holder's lock and logs it); V(unlock) releases it.
      - V(mark) moves every node of O(hosts) in one of O(from_states) to O(state).
      - V(judged) tells the ledger that a gate passed O(hosts) - their nodes switched forward without a
        verdict (at any stage, C(dual_stack_testing) becomes C(dual_stack_stable), a promote's
        C(iroh_primary)/C(iroh_only) nodes keep their state) are judged; a re-run's judge step gates
        the nodes still unjudged.
      - V(event) records an event of O(kind) with O(data); V(canary_verdict) records O(verdict).
      - V(canary_stopped) - the canary's soak stopped on a failure - records its verdict, V(failed) when a verdict
        on the nodes halted it (or nothing halted), V(frozen) when nothing could judge them or a pause froze them,
        and returns RV(roll_back).
      - V(reset_budget) resets the failure budget (failed nodes counted across waves) with O(reason) - a separate,
        recorded action; acknowledging a halt does not reset it.
      - V(contained) records what a halt did to a wave's nodes under O(rollback_policy) (rolled back or frozen).
      - V(reconcile) compares the ledger with the M(autonomi.network_migration.transport_info) results of
        O(fleet_hosts) (host variable O(info_var)) and reports drift (a node restarted by hand in another
        mode, a node the ledger does not know, a changed peer id, a node gone from its host); with
        O(fix=true) the ledger is corrected, each change with its reason. Check mode never fixes.
    type: str
    required: true
    choices: [pause, resume, halt, stop_batch, lock, unlock, mark, event, canary_verdict, canary_stopped, judged,
              reconcile, contained, reset_budget]
  ledger:
    description:
      - Ledger location, a SQLite path or a C(postgresql://) DSN. Defaults to the variable C(migration_ledger),
        then E(ANT_MIGRATION_LEDGER), then C(ledger) in the C([autonomi_network_migration]) section of C(ansible.cfg).
    type: str
  operator:
    description:
      - Who acts. Defaults to the run's operator (plugins/plugin_utils/identity.py) - the AWX user
        (C(awx_user_name)), else the C(operator) extra var, else E(ANT_MIGRATION_OPERATOR), else the OS user.
    type: str
  reason:
    description: Why (pause, halt, stop_batch, forced unlock, mark, event, verdicts).
    type: str
  ack:
    description: With O(op=resume), acknowledge and clear a halt.
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
    description:
      - Hosts whose nodes O(op=mark) moves or O(op=judged) marks, the canary hosts for O(op=canary_verdict) and
        O(op=canary_stopped), the wave's hosts for O(op=contained).
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
  verdict:
    description:
      - Canary verdict for O(op=canary_verdict).
      - V(frozen) - the canary could not be judged (monitoring down, no data); its hosts stay where they are and
        the next canary run judges the same hosts.
      - V(invalidated) - a rollback undid what the canary judged (set by the rollback's conclusion).
    type: str
    choices: [passed, failed, frozen, invalidated]
  failed_result:
    description:
      - With O(op=stop_batch) and O(op=canary_stopped), the result of the task that failed (C(ansible_failed_result)).
        A result without a verdict (V(unavailable), V(inconclusive)) halts without a verdict, or freezes the canary.
    type: dict
  rollback_policy:
    description: With O(op=contained), the wave's policy (plugins/plugin_utils/gate.py C(containment())).
    type: str
    choices: [rollback, freeze]
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
attributes:
  check_mode:
    description: Writes are skipped and reported as would-change; O(op=reconcile) reports and never fixes.
    support: partial
  diff_mode:
    description: No diff is returned.
    support: none
  action:
    description: Runs entirely on the controller as an action plugin.
    support: full
"""

EXAMPLES = r"""
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
moved:
  description: Nodes (host/service) moved by O(op=mark).
  returned: op is mark
  type: list
  elements: str
drift:
  description: With O(op=reconcile), each difference (node_id, kind, ledger_state, observed_mode, fixed).
  returned: op is reconcile
  type: list
  elements: dict
judged:
  description: Nodes (host/service) O(op=judged) marked judged.
  returned: op is judged
  type: list
  elements: str
verdict:
  description: The canary verdict recorded.
  returned: op is canary_verdict or canary_stopped
  type: str
roll_back:
  description: Whether the canary's nodes go back to libp2p_only (the verdict is V(failed)).
  returned: op is canary_stopped
  type: bool
refused:
  description: Why O(op=resume) or O(op=lock) refused (halted, locked).
  returned: when refused
  type: str
"""
