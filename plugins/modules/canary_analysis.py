#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: canary_analysis
short_description: Compare canary nodes with the libp2p-only baseline and with themselves
version_added: 0.1.0
description:
  - Reads per-node error rate and p95 latency over O(window) from Prometheus (one query per figure,
    grouped by instance, so five queries whatever the fleet size).
  - B(Canary vs baseline) - the canaries (nodes of O(canary_hosts) that run iroh) against the nodes
    still in C(libp2p_only), one-sided Mann-Whitney U test per figure.
  - B(iroh vs libp2p) - each canary's own iroh figure against its own libp2p figure over the same
    window, one-sided Wilcoxon signed-rank test (a sign test when there are too few pairs).
  - A comparison fails when the test is significant (p < O(alpha)) and the difference exceeds the
    tolerance. Score = share of comparisons that pass; V(pass) at O(pass_score), V(marginal) at
    O(marginal_score), else V(fail); a failed error-rate comparison fails the analysis whatever the
    score; no comparison with enough data is V(inconclusive).
  - Records the verdict as a C(canary_analysis) event in the migration ledger (when the ledger code
    is present). Prometheus unreachable fails the task (fail closed) with verdict V(unavailable); it and
    an V(inconclusive) verdict listed in O(fail_on) are no verdict on the canaries - the migration is halted
    with cause C(no_verdict), so the canary is frozen where it is instead of rolled back.
  - This is an action plugin; it runs on the controller. Use it with C(run_once) or on C(localhost).
requirements:
  - prometheus-api-client >= 0.7 (on the controller)
  - scipy >= 1.11 (on the controller; the statistical tests)
  - jsonschema >= 4.23 (on the controller; validates the alert rules)
  - psycopg >= 3.1 (on the controller; only for a PostgreSQL ledger)
author:
  - Autonomi network operations (@autonomi)
options:
  canary_hosts:
    description: Hosts of the canary nodes (the C(host) label of the node targets).
    type: list
    elements: str
    required: true
  baseline_hosts:
    description:
      - Hosts of the baseline; default every host that is not a canary host.
      - Only their C(libp2p_only) nodes count.
    type: list
    elements: str
  window:
    description: Window of the figures, a Prometheus duration; at least the canaries' soak after their switch.
    type: str
    default: 10m
  job:
    description: Prometheus job of the node targets.
    type: str
    default: ant_node
  alpha:
    description: Significance level of the tests.
    type: float
    default: 0.05
  error_rate_tolerance:
    description: Absolute error-rate difference (ratio) below which a significant difference still passes.
    type: float
    default: 0.01
  latency_tolerance:
    description: Relative p95 latency difference (share of the reference median) below which a difference passes.
    type: float
    default: 0.2
  pass_score:
    description: Score (0-100) at or above which the verdict is V(pass).
    type: float
    default: 95
  marginal_score:
    description: Score at or above which the verdict is V(marginal).
    type: float
    default: 75
  min_nodes:
    description: Nodes with data needed in each group (or pairs) before a comparison is judged.
    type: int
    default: 3
  fail_on:
    description: Verdicts that fail the task.
    type: list
    elements: str
    choices: [pass, marginal, fail, inconclusive]
    default: [fail, inconclusive]
  ledger:
    description: Ledger location (SQLite path or PostgreSQL DSN).
    type: str
  record:
    description: Record the verdict in the ledger.
    type: bool
    default: true
extends_documentation_fragment:
  - autonomi.network_migration._prometheus
  - autonomi.network_migration._attributes
  - autonomi.network_migration._attributes.ACTION
attributes:
  check_mode:
    support: full
    details: Analyses as usual but writes nothing to the ledger.
  diff_mode:
    support: none
  action:
    support: full
notes:
  - The statistics are described in C(docs/alerts-and-gates.md).
seealso:
  - module: autonomi.network_migration.migration_gate
"""

EXAMPLES = r"""
- name: Judge the canaries after their soak
  autonomi.network_migration.canary_analysis:
    canary_hosts: "{{ groups['canary'] }}"
    window: 15m
  run_once: true
  register: canary

- name: Accept a marginal verdict too
  autonomi.network_migration.canary_analysis:
    canary_hosts: [sim-host-01, sim-host-02]
    fail_on: [fail, inconclusive]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
verdict:
  description: V(pass), V(marginal), V(fail), V(inconclusive), or V(unavailable) (Prometheus could not be asked).
  returned: always
  type: str
score:
  description: Percentage of the judged comparisons that pass (null when none was judged).
  returned: success
  type: float
reason:
  description: The verdict's reasons (each failed comparison with its medians, difference, tolerance and p).
  returned: success
  type: str
comparisons:
  description:
    - Each comparison with its test, p-value, statistic, effect (median difference), tolerance,
      verdict and data.
  returned: success
  type: list
  elements: dict
canaries:
  description: The canary nodes (host/service).
  returned: success
  type: list
  elements: str
baseline:
  description: The baseline nodes.
  returned: success
  type: list
  elements: str
queries:
  description: Prometheus queries made.
  returned: always
  type: int
ledger:
  description: The ledger location and what was written.
  returned: when record
  type: dict
"""
