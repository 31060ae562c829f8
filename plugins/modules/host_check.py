#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_check
short_description: Check that the collection's modules can run on a fleet host, and say how to fix it
version_added: 0.3.0
description:
  - Runs one command on the host, with the task's privilege escalation (C(become)) - the Python interpreter the
    modules will use (the host's C(ansible_python_interpreter), else Ansible's interpreter discovery) prints its
    version.
  - Fails, naming the host and the fix, when the become method asks for a password that was not given (run
    with C(--ask-become-pass), set C(ansible_become_password) from a vault, or allow the account without a
    password), and when the interpreter is missing or older than the oldest Python the modules support
    (C(3.8)), naming the interpreter, its version and that minimum.
  - Runs first on every host in C(health.yml) and in the discover step of waves, the canary and gradual
    rollbacks (C(roles/wave/tasks/host_check.yml)).
  - An action plugin; runs on the controller and over the host's connection. Changes nothing.
author:
  - Autonomi network operations (@autonomi)
options: {}
attributes:
  check_mode:
    description: Read-only; runs the same in check mode.
    support: full
  diff_mode:
    description: No diff is returned.
    support: none
  action:
    description: Runs on the controller as an action plugin, over the host's connection.
    support: full
"""

EXAMPLES = r"""
- name: Check that the modules can run on the host (become, Python)
  become: "{{ migration_become | default(true) }}"
  autonomi.network_migration.host_check:
"""

RETURN = r"""
interpreter:
  description: The Python interpreter the modules use on the host.
  returned: always
  type: str
  sample: /usr/bin/python3
python_version:
  description: Its version, when it printed one.
  returned: always
  type: str
  sample: 3.11.2
become:
  description: Whether the check ran with privilege escalation (and so proved it works).
  returned: success
  type: bool
"""
