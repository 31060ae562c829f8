#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_wave_plan
short_description: Choose the hosts and batches of a migration wave
version_added: 0.1.0
description:
  - Reads every fleet host's M(autonomi.network_migration.transport_info) result and plans the wave
    that brings O(wave) percent of the fleet's nodes to O(stage) or beyond.
  - Takes whole hosts in name order, never hosts already at O(stage), never excluded hosts; lays
    them out in batches of the O(batches) sizes (as Ansible's C(serial) would), moving a host to a
    later batch when it would put more than O(max_close_group_share) of one Kademlia close group in
    one batch, so that records stay readable while a batch restarts.
  - Refuses the wave when a fast rollback of every node past C(libp2p_only) would no longer fit in
    O(rollback_sla_seconds) (projected from measured switch times), and, for O(stage=iroh_only),
    while any node of the fleet still runs C(libp2p_only) or the projected partition risk exceeds
    O(max_partition_risk).
  - An action plugin; runs on the controller.
author:
  - Autonomi network operations (@autonomi)
options:
  wave:
    description:
      - Fleet percentage (1-100) that must be at O(stage) or beyond when the wave ends.
      - Exactly one of O(wave), O(canary_count) and O(rollback_to) is required.
    type: raw
  canary_count:
    description:
      - Instead of a wave, choose this many canary hosts - the first by name whose nodes all run
        C(libp2p_only), outside O(exclude_hosts). The plan also lists the baseline hosts.
    type: int
  rollback_to:
    description:
      - Instead of a wave, plan a rollback to this mode - every host (of O(only_hosts) when given)
        that has a node beyond it, by name, in one batch for O(strategy=fast) or in O(batches) for
        O(strategy=gradual).
    type: str
    choices: [libp2p_only, dual_stack]
  strategy:
    description: Rollback strategy for O(rollback_to).
    type: str
    default: fast
    choices: [fast, gradual]
  only_hosts:
    description:
      - With O(rollback_to), consider only these hosts. When not given, the whole fleet; an empty list
        means no host (a guard that found nothing rolls nothing back).
    type: list
    elements: str
  stage:
    description: The transport mode the wave moves hosts to.
    type: str
    default: dual_stack
    choices: [dual_stack, iroh_primary, iroh_only]
  fleet_hosts:
    description: Every host of the fleet (the wave is a share of all of them).
    type: list
    elements: str
    required: true
  info_var:
    description: Host variable that holds each host's registered transport_info result.
    type: str
    default: wave_transport_info
  batches:
    description: Serial-style batch sizes, integers or percentages of the wave's hosts; the last repeats.
    type: list
    elements: raw
    default: [1, "10%", "25%"]
  exclude_hosts:
    description: Hosts never taken.
    type: list
    elements: str
    default: []
  unjudged_hosts:
    description:
      - With O(canary_count), hosts with nodes switched to C(dual_stack) without a verdict (a canary frozen because
        monitoring was down, or one whose controller died). They are chosen first - judged again, never left
        behind - and the count is filled up with fresh hosts.
    type: list
    elements: str
    default: []
  canary_group:
    description: With O(canary_count), the name of the inventory group of canaries (named in the plan's message).
    type: str
  canary_group_hosts:
    description:
      - With O(canary_count), the hosts of that group. When it has hosts they are the canaries (sorted by name) and
        no fleet read is needed; when empty the canaries are chosen automatically (see O(unjudged_hosts)).
    type: list
    elements: str
    default: []
  max_close_group_share:
    description: Largest share of one close group (5 nodes) allowed in one batch.
    type: float
    default: 0.4
  switch_seconds:
    description: Measured node switch times (seconds to ready) from the ledger.
    type: list
    elements: float
    default: []
  default_switch_seconds:
    description: Switch time assumed when nothing has been measured yet.
    type: float
    default: 60.0
  rollback_sla_seconds:
    description: A fast rollback of the whole migrated fleet must fit in this time.
    type: float
    default: 300.0
  rollback_forks:
    description: Hosts a fast rollback handles in parallel (the rollback job's forks).
    type: int
    default: 50
  max_partition_risk:
    description: Largest projected partition risk accepted for an O(stage=iroh_only) wave.
    type: float
    default: 0.7
attributes:
  check_mode:
    description: Read-only; runs the same in check mode.
    support: full
  diff_mode:
    description: No diff is returned.
    support: none
  action:
    description: Runs entirely on the controller as an action plugin.
    support: full
"""

EXAMPLES = r"""
- name: Plan a wave to 25 %
  autonomi.network_migration.migration_wave_plan:
    wave: 25
    fleet_hosts: "{{ groups['fleet'] }}"
    batches: [1, "10%", "25%"]
  register: wave_plan
  run_once: true
"""

RETURN = r"""
plan:
  description: The wave.
  returned: always
  type: dict
  contains:
    hosts:
      description: Hosts in the order they are migrated.
      type: list
      elements: str
    batches:
      description: The hosts of each batch.
      type: list
      elements: list
    batch_sizes:
      description: Sizes to use as the play's C(serial).
      type: list
      elements: int
    current_percent:
      description: Fleet share at O(stage) or beyond now.
      type: float
    nodes_to_switch:
      description: Nodes the wave switches.
      type: int
    rollback_projection:
      description: Projected fast rollback time after the wave, with the figures it used.
      type: dict
refusals:
  description: Why the wave was refused.
  returned: when refused
  type: list
  elements: str
"""
