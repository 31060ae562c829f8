#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_conclude
short_description: End a canary, wave or rollback run - its outcome, the ledger told, the lock released
version_added: 0.2.0
description:
  - The last task of C(canary.yml), the wave playbooks and C(rollback.yml). It releases the run's lock, decides how
    the run ended (plugins/plugin_utils/services/ - canary, wave, rollback) and fails the task, with the message that
    says what happened and what to do next, when it did not end well.
  - V(canary) - passed, or failed (rolled back) or frozen (nothing could judge it), from the verdict this run recorded.
  - V(wave) - completed, or halted (with or without a verdict on the nodes) or paused, from the ledger's flags.
  - V(rollback) - the outcome from what the switch did on each host of O(plan) (the result registered as
    O(switch_var) on each host) - V(succeeded), V(degraded) (back in the target mode, some nodes not ready),
    V(stopped_early), V(incomplete) (hosts not attempted, or migrated hosts the inventory no longer has) or
    V(failed); recorded with its hosts, nodes and duration. Fails the task when a host was not rolled back.
  - This is an action plugin; it runs on the controller.
author:
  - Autonomi network operations (@autonomi)
options:
  stage:
    description: Which kind of run ends.
    type: str
    required: true
    choices: [canary, wave, rollback]
  ledger:
    description:
      - Ledger location; defaults to the variable C(migration_ledger), then E(ANT_MIGRATION_LEDGER), then
        C(ansible.cfg).
    type: str
  rollback_policy:
    description: With O(stage=wave), the policy applied to the wave's nodes after a halt (named in the message).
    type: str
    default: rollback
    choices: [rollback, freeze]
  plan:
    description:
      - With O(stage=rollback), the rollback's plan (M(autonomi.network_migration.migration_wave_plan) C(plan)).
    type: dict
  switch_var:
    description: With O(stage=rollback), the host variable holding each host's registered switch result.
    type: str
    default: rollback_switch
  stopped_early:
    description: With O(stage=rollback), the gradual rollback stopped because its gate passed.
    type: bool
    default: false
  started_at:
    description: With O(stage=rollback), when the rollback took the lock (epoch seconds).
    type: float
  reason:
    description: With O(stage=rollback), why it ran (recorded).
    type: str
    default: ''
  trigger:
    description: With O(stage=rollback), what triggered it (recorded).
    type: str
    default: manual
  ready_timeout:
    description: With O(stage=rollback), the readiness timeout of the switch (named in the message).
    type: int
  fleet_hosts:
    description:
      - With O(stage=rollback), the inventory's fleet. A whole-fleet rollback names hosts the ledger has beyond the
        target that are not among them, and ends V(incomplete).
    type: list
    elements: str
    default: []
  keep_canary:
    description:
      - With O(stage=rollback), keep the canary's passed verdict although the rollback moved nodes back to
        C(libp2p_only) (recorded as C(canary_kept)); by default it becomes V(invalidated) and the next rollout asks
        for a new canary.
    type: bool
    default: false
  hosts:
    description:
      - With O(stage=wave), the wave's hosts; a host whose containment switch (registered as C(wave_contained))
        failed or could not reach it is named, and the wave ends halted.
    type: list
    elements: str
    default: []
  degraded_fails:
    description:
      - With O(stage=rollback), fail the task when the outcome is V(degraded) (it always fails for V(failed) and
        V(incomplete)).
    type: bool
    default: true
attributes:
  check_mode:
    description: Nothing is recorded or released in check mode.
    support: partial
  diff_mode:
    description: No diff is returned.
    support: none
  action:
    description: Runs entirely on the controller as an action plugin.
    support: full
"""

EXAMPLES = r"""
- name: Conclude the wave
  autonomi.network_migration.migration_conclude:
    stage: wave
    rollback_policy: rollback
"""

RETURN = r"""
outcome:
  description:
    - How the run ended (canary - passed, failed, frozen; wave - completed, halted, frozen, paused; rollback - see
      O(stage)).
  returned: always
  type: str
msg:
  description: What happened and what to do next.
  returned: always
  type: str
rolled_back_hosts:
  description: Hosts the rollback brought back.
  returned: stage is rollback
  type: list
  elements: str
not_ready_nodes:
  description: Nodes back in the target mode but not ready (host, service_name, seconds_waited, mode).
  returned: stage is rollback
  type: list
  elements: dict
unknown_hosts:
  description: Hosts (with their services) the ledger has beyond the target that the inventory lacks.
  returned: stage is rollback
  type: dict
"""
