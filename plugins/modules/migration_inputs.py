#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_inputs
short_description: Validate the operator's inputs before anything is read or touched
version_added: 0.2.0
description:
  - Reads each variable named in O(inputs) exactly as the operator wrote it (an extra var, an AWX
    survey answer, an inventory variable), without templating it, and validates it with the
    collection's one validator for its kind (plugins/plugin_utils/validation.py).
  - "A refusal names the operator's variable and the accepted form, for example
    C(wave='1e2' is not accepted: use an integer from 1 to 100 written as such)."
  - Free text (inputs of kind C(text)) such as a pause reason is returned as plain data. Ansible
    never templates it afterwards, so C({{ lookup('pipe', ...) }}) in a reason runs nothing and is
    stored and shown verbatim.
  - The accepted values are set as the fact named O(fact), for the following plays to use.
  - An action plugin; runs on the controller.
author:
  - Autonomi network operations (@autonomi)
options:
  inputs:
    description:
      - The operator's variables, by name, each with its kind and options.
      - C(kind) is one of V(wave_percent), V(duration), V(boolean), V(count), V(choice), V(mode),
        V(strategy), V(group), V(hosts), V(text). Other keys are C(default), C(required),
        C(aliases) (other names the variable may be given under), C(choices), C(minimum),
        C(maximum), and for V(group) C(must_exist) (default true), C(within) (a group every host
        of it must belong to) and C(allow_empty).
    type: dict
    required: true
  fact:
    description: Name of the fact that receives the accepted values.
    type: str
    default: migration_inputs
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
- name: Check the wave's inputs before any host is read
  autonomi.network_migration.migration_inputs:
    inputs:
      wave: {kind: wave_percent, required: true}
      stage: {kind: mode, default: iroh_primary}
      reason: {kind: text, default: operator requested rollback}
"""

RETURN = r"""
inputs:
  description: The accepted values by the operator's variable name (also set as the fact O(fact)).
  returned: success
  type: dict
problems:
  description: One message per refused input, naming the variable and the accepted form.
  returned: when refused
  type: list
  elements: str
"""
